package testdcos

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/e2e-tool/e2e/internal/testdcos/internal/layout"
)

//go:embed templates
var templates embed.FS

// mtime is every archive entry's time, so that the same options give the
// same bytes.
var mtime = time.Date(2020, 10, 1, 0, 0, 0, 0, time.UTC)

const mib = 1 << 20

// writeBootstrap writes the bootstrap payload: the tree dcos_install.sh
// unpacks into /opt/mesosphere. It is a plain tar even though it keeps the
// real name (<id>.bootstrap.tar.xz): its bulk is incompressible anyway, and
// `tar -xf` reads it without needing xz on the node. It returns the file's
// sha256.
func writeBootstrap(ctx context.Context, path, bin string, m layout.Manifest) (string, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("testdcos: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	tw := tarWriter{tar.NewWriter(io.MultiWriter(f, h))}

	version, err := json.MarshalIndent(layout.VersionInfo{
		Version:     m.Version,
		Variant:     m.NodeVariant(),
		Commit:      m.Commit,
		BootstrapID: m.BootstrapID,
	}, "", "  ")
	if err != nil {
		return "", fmt.Errorf("testdcos: %w", err)
	}
	payloadPkg := "dcos-fixture-payload--" + m.BootstrapID
	pkginfo := fmt.Sprintf("{\n  \"package\": %q,\n  \"size_mib\": %d\n}\n", payloadPkg, m.PayloadMiB)

	steps := []func() error{
		func() error { return tw.dir("bin") },
		func() error { return tw.fromFile("bin/dcos-fixture", 0o755, bin) },
		func() error { return tw.file("bin/dcos-check-runner", 0o755, checkRunnerScript) },
		func() error { return tw.file("bin/dcos-shell", 0o755, dcosShellScript) },
		func() error { return tw.dir("etc") },
		func() error { return tw.file("etc/dcos-version.json", 0o644, string(version)+"\n") },
		func() error { return tw.dir("lib") },
		func() error { return tw.file("environment", 0o644, environment(m, false)) },
		func() error { return tw.file("environment.export", 0o644, environment(m, true)) },
		func() error { return tw.dir("packages") },
		func() error { return tw.dir("packages/" + payloadPkg) },
		func() error { return tw.file("packages/"+payloadPkg+"/pkginfo.json", 0o644, pkginfo) },
		func() error {
			return tw.stream("packages/"+payloadPkg+"/payload.bin", 0o644, int64(m.PayloadMiB)*mib, payloadReader(ctx, m))
		},
		func() error { return tw.dir("active") },
		func() error { return tw.symlink("active/dcos-fixture-payload", "../packages/"+payloadPkg) },
		func() error { return tw.dir("active/dcos-integration-test") },
		func() error { return tw.file("active/dcos-integration-test/README", 0o644, integrationTestReadme(m)) },
		tw.tw.Close,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return "", fmt.Errorf("testdcos: writing bootstrap payload: %w", err)
		}
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("testdcos: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// payloadReader yields the payload's bytes: a ChaCha8 stream seeded from the
// bootstrap id, so it is incompressible (distributing it costs its full
// size) yet the same for the same options.
func payloadReader(ctx context.Context, m layout.Manifest) io.Reader {
	seed := sha256.Sum256([]byte("dcos-fixture payload " + m.BootstrapID))
	return &ctxReader{ctx: ctx, r: rand.NewChaCha8(seed)}
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func environment(m layout.Manifest, export bool) string {
	// A few of the variables real DC/OS puts there; DC/OS E2E's
	// run_with_test_environment sources environment.export.
	vars := [][2]string{
		{"PATH", "/opt/mesosphere/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		{"LD_LIBRARY_PATH", "/opt/mesosphere/lib"},
		{"PYTHONUNBUFFERED", "true"},
		{"MESOS_IP_DISCOVERY_COMMAND", "/opt/mesosphere/bin/detect_ip"},
		{"DCOS_VERSION", m.Version},
		{"DCOS_VARIANT", m.NodeVariant()},
	}
	var b strings.Builder
	for _, kv := range vars {
		if export {
			v := kv[1]
			if kv[0] == "PATH" {
				v = "/opt/mesosphere/bin:$PATH"
			}
			fmt.Fprintf(&b, "export %s=\"%s\"\n", kv[0], v)
		} else {
			fmt.Fprintf(&b, "%s=%s\n", kv[0], kv[1])
		}
	}
	return b.String()
}

const checkRunnerScript = `#!/bin/bash
# Stands in for DC/OS's dcos-check-runner (e2e's DC/OS contract fixture).
# "dcos-check-runner check node-poststart" passes when this node's
# dcos-fixture unit is active and, on masters, the HTTP endpoints answer.
exec /opt/mesosphere/bin/dcos-fixture check-runner "$@"
`

const dcosShellScript = `#!/bin/bash
# Runs a command in the DC/OS environment, as DC/OS's dcos-shell does.
set -o allexport
. /opt/mesosphere/environment.export
set +o allexport
exec "$@"
`

func integrationTestReadme(m layout.Manifest) string {
	return fmt.Sprintf(`DC/OS %s (%s) installed by e2e's DC/OS contract fixture.

Real DC/OS keeps its integration tests here; DC/OS E2E's
run_with_test_environment sources /opt/mesosphere/environment.export and
runs commands in this directory.
`, m.Version, m.NodeVariant())
}

// writeInstaller writes the installer: the bash header, then a tar.gz of the
// manifest, the binary and the bootstrap payload. It writes to a temporary
// name and renames, so an interrupted Build leaves no half installer.
func writeInstaller(ctx context.Context, out string, m layout.Manifest, bin, bootstrap string) error {
	header, err := renderHeader(m)
	if err != nil {
		return err
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("testdcos: %w", err)
	}

	f, err := os.CreateTemp(filepath.Dir(out), ".dcos_generate_config-*.sh")
	if err != nil {
		return fmt.Errorf("testdcos: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()

	if _, err := f.Write(header); err != nil {
		return fmt.Errorf("testdcos: %w", err)
	}
	// BestSpeed: the bulk is random and does not compress; the binary
	// shrinks by half either way.
	zw, err := gzip.NewWriterLevel(f, gzip.BestSpeed)
	if err != nil {
		return fmt.Errorf("testdcos: %w", err)
	}
	tw := tarWriter{tar.NewWriter(zw)}
	steps := []func() error{
		func() error { return tw.file("fixture.json", 0o644, string(manifest)+"\n") },
		func() error { return tw.fromFile("dcos-fixture", 0o755, bin) },
		func() error { return tw.dir("bootstrap") },
		func() error {
			bf, err := os.Open(bootstrap)
			if err != nil {
				return err
			}
			defer bf.Close()
			st, err := bf.Stat()
			if err != nil {
				return err
			}
			return tw.stream("bootstrap/"+m.BootstrapFile(), 0o644, st.Size(), &ctxReader{ctx: ctx, r: bf})
		},
		tw.tw.Close,
		zw.Close,
		func() error { return f.Chmod(0o755) },
		f.Close,
		func() error { return os.Rename(f.Name(), out) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("testdcos: writing %s: %w", out, err)
		}
	}
	return nil
}

// renderHeader renders the bash header. It states its own length (where the
// payload starts), so it is rendered until that number is stable.
func renderHeader(m layout.Manifest) ([]byte, error) {
	t, err := template.ParseFS(templates, "templates/dcos_generate_config.sh.tmpl")
	if err != nil {
		return nil, fmt.Errorf("testdcos: %w", err)
	}
	data := struct {
		layout.Manifest
		InstallerVariant string
		Offset           int
	}{Manifest: m, InstallerVariant: m.InstallerVariant()}
	for range 5 {
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			return nil, fmt.Errorf("testdcos: %w", err)
		}
		if b.Len() == data.Offset {
			return b.Bytes(), nil
		}
		data.Offset = b.Len()
	}
	return nil, fmt.Errorf("testdcos: installer header length does not settle")
}

// tarWriter writes root-owned entries with a fixed time.
type tarWriter struct{ tw *tar.Writer }

func (t tarWriter) header(name string, typ byte, mode, size int64, link string) *tar.Header {
	return &tar.Header{
		Name: name, Typeflag: typ, Mode: mode, Size: size, Linkname: link,
		ModTime: mtime, Uname: "root", Gname: "root",
	}
}

func (t tarWriter) dir(name string) error {
	return t.tw.WriteHeader(t.header(name+"/", tar.TypeDir, 0o755, 0, ""))
}

func (t tarWriter) symlink(name, target string) error {
	return t.tw.WriteHeader(t.header(name, tar.TypeSymlink, 0o777, 0, target))
}

func (t tarWriter) file(name string, mode int64, content string) error {
	return t.stream(name, mode, int64(len(content)), strings.NewReader(content))
}

func (t tarWriter) fromFile(name string, mode int64, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return t.stream(name, mode, st.Size(), f)
}

func (t tarWriter) stream(name string, mode, size int64, r io.Reader) error {
	if err := t.tw.WriteHeader(t.header(name, tar.TypeReg, mode, size, "")); err != nil {
		return err
	}
	n, err := io.CopyN(t.tw, r, size)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("%s: wrote %d of %d bytes", name, n, size)
	}
	return nil
}
