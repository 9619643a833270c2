package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/e2e-tool/e2e/internal/testbin"
)

// tarEntry is one entry of a test archive: a regular file unless link is
// set.
type tarEntry struct {
	name, link string
	body       []byte
}

// writeArchive writes a .tar.gz of entries to path and returns its sha256.
func writeArchive(t *testing.T, path string, entries ...tarEntry) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o755, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		if e.link != "" {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeSymlink, e.link, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:])
}

// release writes dir/NAME/VERSION/e2e-backend-NAME_VERSION_OS_ARCH.tar.gz
// for this machine, holding entries, and the SHA256SUMS beside it; it
// returns the archive's path.
func release(t *testing.T, dir, name, version string, entries ...tarEntry) string {
	t.Helper()
	file := fmt.Sprintf("e2e-backend-%s_%s_%s_%s.tar.gz", name, version, runtime.GOOS, runtime.GOARCH)
	path := filepath.Join(dir, name, version, file)
	sum := writeArchive(t, path, entries...)
	writeFile(t, filepath.Join(dir, name, version, "SHA256SUMS"), sum+"  "+file+"\n")
	return path
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// installedTest is the version of the test backend that `plugin list`
// shows as installed and used, and the one `plugin info` runs.
func installedTest(t *testing.T, env []string) string {
	t.Helper()
	listed := ""
	for _, p := range pluginList(t, env, built.e2e) {
		if p.Name == "test" && p.Source == "installed" && p.Used {
			listed = p.Version
		}
	}
	r := testbin.Run(t, env, built.e2e, "plugin", "info", "test", "--json")
	expectCode(t, r, 0)
	var info struct{ Version string }
	if err := json.Unmarshal([]byte(r.Stdout), &info); err != nil {
		t.Fatal(err)
	}
	if info.Version != listed {
		t.Fatalf("plugin list shows %q installed, plugin info runs %q", listed, info.Version)
	}
	return listed
}

// TestInstallFromRelease installs the test backend from release archives:
// NAME@VERSION from a mirror directory and from a mirror URL, a local
// archive, an http://127.0.0.1 URL; and refuses a damaged archive, one with
// an entry outside it, one that is not listed, and a second install without
// --force, each with exit 2 and one line, the installed version still
// working afterwards.
func TestInstallFromRelease(t *testing.T) {
	s := newSandbox(t)
	env := s.env()
	v1 := readFile(t, built.test)
	v2 := readFile(t, testbin.Build(t, "./internal/testbackend", filepath.Join(t.TempDir(), "e2e-backend-test"), "2.0.0-test"))
	plugin := func(b []byte) tarEntry { return tarEntry{name: "e2e-backend-test", body: b} }

	mirror := t.TempDir()
	v1Archive := release(t, mirror, "test", "1.0.0-test", plugin(v1), tarEntry{name: "LICENSE", body: []byte("MIT\n")})
	v2Archive := release(t, mirror, "test", "2.0.0-test", tarEntry{name: "./e2e-backend-test", body: v2})
	srv := httptest.NewServer(http.FileServer(http.Dir(mirror)))
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("the test server is not on 127.0.0.1: %s", srv.URL)
	}
	v2URL := srv.URL + "/test/2.0.0-test/" + filepath.Base(v2Archive)

	other := t.TempDir()
	// A damaged archive: SHA256SUMS lists the real one.
	damaged := filepath.Join(other, "damaged", filepath.Base(v2Archive))
	good := readFile(t, v2Archive)
	bad := append([]byte{}, good...)
	bad[len(bad)/2] ^= 0xff
	copyFile(t, filepath.Join(mirror, "test", "2.0.0-test", "SHA256SUMS"), filepath.Join(other, "damaged", "SHA256SUMS"), 0o644)
	if err := os.WriteFile(damaged, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	// Archives whose checksums match but whose content would be written
	// outside the plugin directory.
	escaping := release(t, filepath.Join(other, "escaping"), "test", "2.0.0-test", tarEntry{name: "../../escaped", body: []byte("x")}, plugin(v2))
	absolute := release(t, filepath.Join(other, "absolute"), "test", "2.0.0-test", plugin(v2), tarEntry{name: "/tmp/e2e-test-absolute", body: []byte("x")})
	linked := release(t, filepath.Join(other, "linked"), "test", "2.0.0-test", tarEntry{name: "e2e-backend-test", link: "/bin/sh"})
	noPlugin := release(t, filepath.Join(other, "empty"), "test", "2.0.0-test", tarEntry{name: "README", body: []byte("hi")})
	// An archive SHA256SUMS does not list.
	unlisted := filepath.Join(other, "unlisted", "e2e-backend-test.tar.gz")
	writeArchive(t, unlisted, plugin(v2))
	writeFile(t, filepath.Join(other, "unlisted", "SHA256SUMS"), strings.Repeat("0", 64)+"  other.tar.gz\n")
	noSums := filepath.Join(other, "nosums", "e2e-backend-test.tar.gz")
	writeArchive(t, noSums, plugin(v2))

	steps := []struct {
		name      string
		args      []string
		env       []string
		code      int
		fragments []string // of the one error line
		version   string   // installed afterwards
	}{
		{"NAME@VERSION from a mirror directory", []string{"--mirror", mirror, "test@1.0.0-test"}, nil, 0, nil, "1.0.0-test"},
		{"again without --force", []string{"--mirror", mirror, "test@2.0.0-test"}, nil, 2,
			[]string{`backend "test" is already installed (version 1.0.0-test)`, "use --force"}, "1.0.0-test"},
		{"a damaged archive", []string{"--force", damaged}, nil, 2,
			[]string{"refusing to install " + damaged, "its sha256 is", "SHA256SUMS lists", "nothing was changed"}, "1.0.0-test"},
		{"an entry outside the archive", []string{"--force", escaping}, nil, 2,
			[]string{"refusing to install " + escaping, `its entry "../../escaped" points outside the archive`}, "1.0.0-test"},
		{"an absolute entry", []string{"--force", absolute}, nil, 2,
			[]string{`its entry "/tmp/e2e-test-absolute" points outside the archive`}, "1.0.0-test"},
		{"a link", []string{"--force", linked}, nil, 2, []string{`its entry "e2e-backend-test" is a link`}, "1.0.0-test"},
		{"no plugin in it", []string{"--force", noPlugin}, nil, 2, []string{"it holds no plugin executable"}, "1.0.0-test"},
		{"not listed in SHA256SUMS", []string{"--force", unlisted}, nil, 2,
			[]string{"refusing to install e2e-backend-test.tar.gz", filepath.Join(other, "unlisted", "SHA256SUMS") + " does not list it"}, "1.0.0-test"},
		{"no SHA256SUMS", []string{"--force", noSums}, nil, 2,
			[]string{"no checksum list for e2e-backend-test.tar.gz", "--checksums FILE|URL"}, "1.0.0-test"},
		{"a missing archive", []string{"--force", filepath.Join(other, "e2e-backend-test.tar.gz")}, nil, 2,
			[]string{"no such file: " + filepath.Join(other, "e2e-backend-test.tar.gz")}, "1.0.0-test"},
		{"plain http elsewhere", []string{"--force", "http://192.0.2.1/e2e-backend-test.tar.gz"}, nil, 2,
			[]string{"plain http is accepted only from this machine", "use https"}, "1.0.0-test"},
		{"NAME@VERSION without a mirror", []string{"test@2.0.0-test"}, nil, 2,
			[]string{"installing test@2.0.0-test needs a mirror", "--mirror DIR|URL", "$E2E_PLUGIN_MIRROR"}, "1.0.0-test"},
		{"a URL on 127.0.0.1, --force", []string{"--force", v2URL}, nil, 0, nil, "2.0.0-test"},
		{"a local archive", []string{"--force", v1Archive}, nil, 0, nil, "1.0.0-test"},
		{"NAME@VERSION from a mirror URL in $E2E_PLUGIN_MIRROR", []string{"--force", "test@2.0.0-test"}, []string{"E2E_PLUGIN_MIRROR=" + srv.URL}, 0, nil, "2.0.0-test"},
		{"a version the mirror lacks", []string{"--force", "--mirror", mirror, "test@3.0.0"}, nil, 2,
			[]string{"the mirror " + mirror + " has no test 3.0.0 for " + runtime.GOOS + "/" + runtime.GOARCH}, "2.0.0-test"},
		{"a local archive with --checksums", []string{"--force", "--checksums", filepath.Join(mirror, "test", "2.0.0-test", "SHA256SUMS"), damaged}, nil, 2,
			[]string{"its sha256 is"}, "2.0.0-test"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			r := testbin.Run(t, append(append([]string{}, env...), st.env...), built.e2e, append([]string{"plugin", "install"}, st.args...)...)
			expectCode(t, r, st.code)
			if st.code != 0 {
				oneErrorLine(t, r, st.fragments...)
			} else if strings.TrimSpace(r.Stdout) != "test" {
				t.Errorf("install printed %q, want the backend name", r.Stdout)
			}
			if got := installedTest(t, env); got != st.version {
				t.Errorf("installed version %q, want %q", got, st.version)
			}
			// Nothing but the plugin and its manifest is left in the
			// plugin directory, and nothing escaped the archive.
			dir := filepath.Join(s.data, "e2e", "plugins")
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if n := e.Name(); n != "e2e-backend-test" && n != "manifest.json" && n != ".lock" {
					t.Errorf("left in the plugin directory: %s", n)
				}
			}
			for _, p := range []string{filepath.Join(s.data, "escaped"), filepath.Join(s.data, "e2e", "escaped"), filepath.Join(other, "escaped"), "/tmp/e2e-test-absolute"} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("an archive entry was written to %s", p)
				}
			}
		})
	}

	// The manifest records the executable's sha256 and the archive's.
	var m struct {
		Plugins map[string]struct {
			SHA256        string `json:"sha256"`
			ArchiveSHA256 string `json:"archive_sha256"`
			Source        string `json:"source"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(s.data, "e2e", "plugins", "manifest.json")), &m); err != nil {
		t.Fatal(err)
	}
	exe := sha256.Sum256(v2)
	archive := sha256.Sum256(good)
	if e := m.Plugins["test"]; e.SHA256 != hex.EncodeToString(exe[:]) || e.ArchiveSHA256 != hex.EncodeToString(archive[:]) || e.Source != "test@2.0.0-test from "+v2URL {
		t.Errorf("manifest entry %+v, want sha256 %x, archive_sha256 %x, source %s", e, exe, archive, v2URL)
	}
}

// TestDist builds the release archives with `make dist` for this machine,
// checks them with sha256sum, and installs a built-in backend from them as
// from a mirror. It builds e2e and the existing backend only: the others
// are built the same way, and the AWS SDK would double the time a static
// build takes.
func TestDist(t *testing.T) {
	_, err := exec.LookPath("make")
	testbin.Require(t, "make (apt-get install make)", err)
	_, err = exec.LookPath("sha256sum")
	testbin.Require(t, "sha256sum (apt-get install coreutils)", err)
	dist := t.TempDir()
	commit := strings.TrimSpace(mustOutput(t, "git", "-C", testbin.Root(), "rev-parse", "--short", "HEAD"))
	cmd := exec.Command("make", "dist", "DISTDIR="+dist, "DIST_PLATFORMS="+runtime.GOOS+"/"+runtime.GOARCH, "PLUGINS=existing")
	cmd.Dir = testbin.Root()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make dist: %v\n%s", err, out)
	}
	version := func(file string) string {
		return strings.TrimSpace(string(readFile(t, filepath.Join(testbin.Root(), file))))
	}
	platform := "_" + runtime.GOOS + "_" + runtime.GOARCH + ".tar.gz"
	dirs := map[string]string{dist: "e2e_" + version("VERSION") + platform}
	v := version("plugins/existing/VERSION")
	dirs[filepath.Join(dist, "existing", v)] = "e2e-backend-existing_" + v + platform
	for dir, archive := range dirs {
		sums := string(readFile(t, filepath.Join(dir, "SHA256SUMS")))
		if !strings.Contains(sums, "  "+archive+"\n") {
			t.Errorf("%s/SHA256SUMS does not list %s:\n%s", dir, archive, sums)
		}
		check := exec.Command("sha256sum", "--check", "--strict", "SHA256SUMS")
		check.Dir = dir
		if out, err := check.CombinedOutput(); err != nil {
			t.Errorf("sha256sum --check in %s: %v\n%s", dir, err, out)
		}
	}

	s := newSandbox(t)
	r := testbin.Run(t, s.env(), built.e2e, "plugin", "install", "--mirror", dist, "existing@"+v)
	expectCode(t, r, 0)
	r = testbin.Run(t, s.env(), built.e2e, "plugin", "info", "existing", "--json")
	expectCode(t, r, 0)
	var info struct{ Version, Commit, Source string }
	if err := json.Unmarshal([]byte(r.Stdout), &info); err != nil {
		t.Fatal(err)
	}
	if info.Version != v || info.Commit != commit || info.Source != "installed" {
		t.Errorf("installed from make dist: %+v, want version %s, commit %s, installed", info, v, commit)
	}
	// e2e's own archive holds e2e alone, with its version and commit.
	unpacked := t.TempDir()
	mustOutput(t, "tar", "-xzf", filepath.Join(dist, dirs[dist]), "-C", unpacked)
	if entries, _ := os.ReadDir(unpacked); len(entries) != 1 || entries[0].Name() != "e2e" {
		t.Errorf("%s holds %v, want e2e alone", dirs[dist], entries)
	}
	r = testbin.Run(t, s.env(), filepath.Join(unpacked, "e2e"), "version", "--json")
	expectCode(t, r, 0)
	var ver struct{ Version, Commit string }
	if err := json.Unmarshal([]byte(r.Stdout), &ver); err != nil || ver.Version != version("VERSION") || ver.Commit != commit {
		t.Errorf("e2e version from make dist: %s (%v), want %s, commit %s", r.Stdout, err, version("VERSION"), commit)
	}
}
