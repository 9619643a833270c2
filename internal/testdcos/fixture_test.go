package testdcos

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/e2e-tool/e2e/internal/testdcos/internal/layout"
)

// Installers built once for all tests (building compiles the node binary).
var (
	ossInstaller string // PayloadMiB 3, FailOnHost = this machine's hostname
	eeInstaller  string // defaults but enterprise: 32 MiB
	hostname     string
)

const ossPayloadMiB = 3

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "testdcos-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		hostname, _ = os.Hostname()
		ctx := context.Background()
		build := func(sub string, o Options) string {
			d := filepath.Join(dir, sub)
			if err := os.Mkdir(d, 0o755); err != nil {
				panic(err)
			}
			start := time.Now()
			p, err := Build(ctx, d, o)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return ""
			}
			st, _ := os.Stat(p)
			fmt.Fprintf(os.Stderr, "built %s (%+v): %.1f MiB in %s\n", p, o, float64(st.Size())/mib,
				time.Since(start).Round(time.Millisecond))
			return p
		}
		ossInstaller = build("oss", Options{PayloadMiB: ossPayloadMiB, FailOnHost: hostname})
		eeInstaller = build("ee", Options{Variant: "enterprise"})
		if ossInstaller == "" || eeInstaller == "" {
			return 1
		}
		return m.Run()
	}())
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs a command in dir and returns what it did.
func run(t *testing.T, dir string, env []string, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s %v: %v", name, args, err)
		}
		code = ee.ExitCode()
	}
	return result{stdout.String(), stderr.String(), code}
}

const goodConfig = `---
cluster_name: fixture-test
bootstrap_url: file:///opt/dcos_install_tmp
exhibitor_storage_backend: static
master_discovery: static
master_list:
- 172.17.0.2
agent_list:
- 172.17.0.3
- 172.17.0.4
public_agent_list:
- 172.17.0.5
resolvers:
- 8.8.8.8
process_timeout: 10000
check_time: false
user_override: from-extra-config
`

const ipDetect = "#!/bin/sh\nhostname -I | cut -d ' ' -f 1\n"

// genconfDir makes a directory with genconf/config.yaml and
// genconf/ip-detect (skipped when empty).
func genconfDir(t *testing.T, config, ipDetectScript string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "genconf"), 0o755); err != nil {
		t.Fatal(err)
	}
	if config != "" {
		if err := os.WriteFile(filepath.Join(dir, "genconf", "config.yaml"), []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if ipDetectScript != "" {
		if err := os.WriteFile(filepath.Join(dir, "genconf", "ip-detect"), []byte(ipDetectScript), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestVersion(t *testing.T) {
	for _, tc := range []struct {
		name, installer, variant string
		args                     []string
	}{
		{"oss", ossInstaller, "", []string{"--version"}},
		{"enterprise", eeInstaller, "ee", []string{"--version"}},
		// Through the unpacked installer rather than the shortcut.
		{"oss verbose", ossInstaller, "", []string{"-v", "--version"}},
		{"enterprise verbose", eeInstaller, "ee", []string{"--version", "-v"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			r := run(t, dir, nil, "bash", append([]string{tc.installer}, tc.args...)...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			// DC/OS E2E reads exactly these keys from stdout.
			var v map[string]string
			if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
			}
			if len(v) != 2 || v["version"] != DefaultVersion || v["variant"] != tc.variant {
				t.Errorf("--version = %v, want version %q and variant %q", v, DefaultVersion, tc.variant)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("--version left files behind: %v", entries)
			}
		})
	}
}

func TestGenconf(t *testing.T) {
	dir := genconfDir(t, goodConfig, ipDetect)
	start := time.Now()
	r := run(t, dir, nil, "bash", ossInstaller, "--genconf", "-v")
	t.Logf("genconf took %s", time.Since(start).Round(time.Millisecond))
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"====> EXECUTING CONFIGURATION GENERATION", "Generating configuration files"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	serve := filepath.Join(dir, "genconf", "serve")

	id, err := os.ReadFile(filepath.Join(serve, "bootstrap.latest"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{40}$`).Match(id) {
		t.Fatalf("bootstrap.latest = %q, want a 40-hex bootstrap id", id)
	}
	bootstrap := filepath.Join(serve, "bootstrap", string(id)+".bootstrap.tar.xz")
	entries := readTar(t, bootstrap)
	payload := entries["packages/dcos-fixture-payload--"+string(id)+"/payload.bin"]
	if len(payload) != ossPayloadMiB*mib {
		t.Errorf("payload is %d bytes, want %d MiB", len(payload), ossPayloadMiB)
	}
	if ratio := compressedRatio(payload[:mib]); ratio < 0.99 {
		t.Errorf("payload compresses to %.2f of its size; want incompressible", ratio)
	}
	for _, name := range []string{"bin/dcos-fixture", "bin/dcos-check-runner", "bin/dcos-shell",
		"environment.export", "active/dcos-integration-test/README"} {
		if _, ok := entries[name]; !ok {
			t.Errorf("bootstrap payload lacks %s", name)
		}
	}
	var vi layout.VersionInfo
	if err := json.Unmarshal(entries["etc/dcos-version.json"], &vi); err != nil {
		t.Fatalf("etc/dcos-version.json: %v", err)
	}
	if vi.Version != DefaultVersion || vi.Variant != "open" || vi.BootstrapID != string(id) || len(vi.Commit) != 40 {
		t.Errorf("dcos-version.json = %+v", vi)
	}
	if !strings.Contains(string(entries["environment.export"]), `export PATH="/opt/mesosphere/bin:$PATH"`) {
		t.Errorf("environment.export:\n%s", entries["environment.export"])
	}

	// The config genconf saw, byte for byte, with the node lists and the
	// user's own keys.
	seen, err := os.ReadFile(filepath.Join(serve, "config.yaml.seen"))
	if err != nil {
		t.Fatal(err)
	}
	if string(seen) != goodConfig {
		t.Errorf("config.yaml.seen differs from genconf/config.yaml:\n%s", seen)
	}
	var cfg struct {
		MasterList   []string `yaml:"master_list"`
		AgentList    []string `yaml:"agent_list"`
		UserOverride string   `yaml:"user_override"`
	}
	if err := yaml.Unmarshal(seen, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.MasterList) != 1 || len(cfg.AgentList) != 2 || cfg.UserOverride != "from-extra-config" {
		t.Errorf("config.yaml.seen parsed as %+v", cfg)
	}

	install := filepath.Join(serve, "dcos_install.sh")
	if st, err := os.Stat(install); err != nil || st.Mode()&0o111 == 0 {
		t.Fatalf("dcos_install.sh: %v (mode %v)", err, st.Mode())
	}
	if r := run(t, dir, nil, "bash", "-n", install); r.code != 0 {
		t.Fatalf("bash -n dcos_install.sh: %s", r.stderr)
	}
	script, _ := os.ReadFile(install)
	for _, want := range []string{
		"BOOTSTRAP_URL='file:///opt/dcos_install_tmp'",
		"BOOTSTRAP_ID='" + string(id) + "'",
		"FAIL_ON_HOST='" + hostname + "'",
		`"agent_list": [`, "user_override: from-extra-config", "hostname -I",
	} {
		if !bytes.Contains(script, []byte(want)) {
			t.Errorf("dcos_install.sh lacks %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "genconf", "cluster_packages.json")); err != nil {
		t.Error(err)
	}
	// The unpacked installer is gone.
	if left, _ := filepath.Glob(filepath.Join(dir, ".dcos-genconf.*")); len(left) != 0 {
		t.Errorf("genconf left %v behind", left)
	}
}

func TestGenconfBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name     string
		config   string // "" means no config.yaml
		noDetect bool
		want     []string // each must appear on stderr
	}{
		{"no config.yaml", "", false, []string{"No config file found at genconf/config.yaml"}},
		{"missing master_list", "bootstrap_url: file:///opt/x\n", false,
			[]string{"master_list: Must set master_list, no way to calculate value."}},
		{"master_list a string", "bootstrap_url: file:///opt/x\nmaster_list: 10.0.0.1\n", false,
			[]string{"master_list: Must be a JSON formatted list", "`10.0.0.1`"}},
		{"master_list a map", "bootstrap_url: file:///opt/x\nmaster_list: {a: 10.0.0.1}\n", false,
			[]string{"master_list: Must be a JSON list. Got a dict"}},
		{"master_list empty", "bootstrap_url: file:///opt/x\nmaster_list: []\n", false,
			[]string{"master_list: Must contain at least one master"}},
		{"master_list numbers", "bootstrap_url: file:///opt/x\nmaster_list: [10, 11]\n", false,
			[]string{"master_list: Items in list must be strings, got invalid values: 10 type int, 11 type int"}},
		{"master_list bad address", "bootstrap_url: file:///opt/x\nmaster_list: [10.0.0.300]\n", false,
			[]string{"master_list: Invalid IPv4 addresses in list: 10.0.0.300"}},
		{"two masters", "bootstrap_url: file:///opt/x\nmaster_list: [10.0.0.1, 10.0.0.2]\n", false,
			[]string{"num_masters: Must have 1, 3, 5, 7, or 9 masters. Found 2"}},
		{"agent_list a string", "bootstrap_url: file:///opt/x\nmaster_list: [10.0.0.1]\nagent_list: 10.0.0.2\n", false,
			[]string{"agent_list: Must be a JSON formatted list"}},
		{"duplicate agents", "bootstrap_url: file:///opt/x\nmaster_list: [10.0.0.1]\npublic_agent_list: [10.0.0.2, 10.0.0.2]\n", false,
			[]string{"public_agent_list: List cannot contain duplicates: 10.0.0.2 appears 2 times"}},
		{"null value", "bootstrap_url: file:///opt/x\nmaster_list: [10.0.0.1]\nagent_list:\n", false,
			[]string{"agent_list: Invalid type for value of agent_list in config. Got NoneType"}},
		{"missing bootstrap_url", "master_list: [10.0.0.1]\n", false,
			[]string{"bootstrap_url: Must set bootstrap_url, no way to calculate value."}},
		{"bootstrap_url trailing slash", "bootstrap_url: file:///opt/x/\nmaster_list: [10.0.0.1]\n", false,
			[]string{"bootstrap_url: Must not end in a '/'"}},
		{"malformed YAML", "bootstrap_url: file:///opt/x\nmaster_list: [10.0.0.1\n", false,
			[]string{"Unable to load configuration file. genconf/config.yaml is not valid YAML"}},
		{"top-level list", "- master_list\n", false,
			[]string{"genconf/config.yaml must be a YAML mapping", "not a list"}},
		{"missing ip-detect", goodConfig, true,
			[]string{"ip_detect_contents: ip-detect script `genconf/ip-detect` must exist"}},
		{"several problems at once", "bootstrap_url: /\nmaster_list: x\n", true,
			[]string{"bootstrap_url: Should be a url", "master_list: Must be a JSON formatted list", "ip_detect_contents:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			detect := ipDetect
			if tc.noDetect {
				detect = ""
			}
			dir := genconfDir(t, tc.config, detect)
			r := run(t, dir, nil, "bash", ossInstaller, "--genconf")
			if r.code != 1 {
				t.Errorf("exit %d, want 1\nstderr: %s", r.code, r.stderr)
			}
			for _, want := range tc.want {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
				}
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
			if _, err := os.Stat(filepath.Join(dir, "genconf", "serve")); !os.IsNotExist(err) {
				t.Errorf("genconf/serve exists after a failed genconf (%v)", err)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	dir := genconfDir(t, goodConfig, ipDetect)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--genconf", "--version"}, 2, "not allowed with argument"},
		{[]string{"--bogus"}, 2, "unrecognized arguments: --bogus"},
		{[]string{"--generate-node-upgrade-script"}, 1, "Must provide the version of the cluster upgrading from"},
	} {
		r := run(t, dir, nil, "bash", append([]string{ossInstaller}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}
}

func TestGenerateNodeUpgradeScript(t *testing.T) {
	dir := genconfDir(t, goodConfig, ipDetect)
	r := run(t, dir, nil, "bash", eeInstaller, "-v", "--generate-node-upgrade-script", "2.1.0")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	// DC/OS E2E takes the last word of stdout and strips file://.
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	last := lines[len(lines)-1]
	m := regexp.MustCompile(`^Node upgrade script URL: file:///opt/dcos_install_tmp/(upgrade/[0-9a-f]{32}/dcos_node_upgrade\.sh)$`).
		FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("last stdout line = %q", last)
	}
	script := filepath.Join(dir, "genconf", "serve", filepath.FromSlash(m[1]))
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"INSTALLED_CLUSTER_VERSION='2.1.0'", "DCOS_VERSION='" + DefaultVersion + "'",
		"DCOS_VARIANT='enterprise'", "systemctl start"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("upgrade script lacks %q", want)
		}
	}
	if r := run(t, dir, nil, "bash", "-n", script); r.code != 0 {
		t.Fatalf("bash -n: %s", r.stderr)
	}
	// The new version's payload is served too.
	if _, err := os.Stat(filepath.Join(dir, "genconf", "serve", "dcos_install.sh")); err != nil {
		t.Error(err)
	}
}

func TestBuild(t *testing.T) {
	ctx := context.Background()
	for _, o := range []Options{{Variant: "dcos"}, {Version: "2.2 beta"}, {PayloadMiB: -1}, {FailOnHost: "a b"}} {
		if _, err := Build(ctx, t.TempDir(), o); err == nil {
			t.Errorf("Build(%+v) succeeded", o)
		}
	}
	// The same options give the same installer; another version another
	// bootstrap id.
	a, err := Build(ctx, t.TempDir(), Options{PayloadMiB: ossPayloadMiB, FailOnHost: hostname})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(ctx, t.TempDir(), Options{PayloadMiB: ossPayloadMiB, FailOnHost: hostname, Version: "2.3.0-fixture"})
	if err != nil {
		t.Fatal(err)
	}
	same, _ := os.ReadFile(a)
	orig, _ := os.ReadFile(ossInstaller)
	if !bytes.Equal(same, orig) {
		t.Error("two builds with the same options differ")
	}
	other, _ := os.ReadFile(b)
	id := regexp.MustCompile(`bootstrap id ([0-9a-f]{40})`)
	if id.FindSubmatch(same) == nil || bytes.Equal(id.FindSubmatch(same)[1], id.FindSubmatch(other)[1]) {
		t.Error("another version has the same bootstrap id")
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	dir := t.TempDir()
	if _, err := Build(cancelled, dir, Options{}); err == nil {
		t.Error("Build with a cancelled context succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a cancelled Build left %v", entries)
	}
}

// readTar reads a (plain) tar file into memory: name → content.
func readTar(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = b
	}
}

func compressedRatio(b []byte) float64 {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return float64(buf.Len()) / float64(len(b))
}
