package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/internal/testbin"
)

// bins are built once for every test of this package.
type bins struct {
	e2e       string // the e2e command, alone in its directory
	pluginDir string // e2e-backend-test and e2e-backend-future
	test      string
	future    string
}

var built bins

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "e2e-cli-test-")
	if err != nil {
		panic(err)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		built = bins{
			e2e:       filepath.Join(dir, "cli", "e2e"),
			pluginDir: filepath.Join(dir, "plugins"),
		}
		built.test = filepath.Join(built.pluginDir, "e2e-backend-test")
		built.future = filepath.Join(built.pluginDir, "e2e-backend-future")
		for _, b := range []struct{ pkg, out, version string }{
			{"./cmd/e2e", built.e2e, "9.9.9-test"},
			{"./internal/testbackend", built.test, "1.0.0-test"},
			{"./internal/testbackend/future", built.future, ""},
			{"./plugins/docker", filepath.Join(built.pluginDir, "e2e-backend-docker"), "1.0.0-test"},
		} {
			if err := testbin.Compile(b.pkg, b.out, b.version); err != nil {
				os.Stderr.WriteString(err.Error())
				return 1
			}
		}
		defer func() {
			if fixtures.dir != "" {
				os.RemoveAll(fixtures.dir)
			}
		}()
		return m.Run()
	}()
	os.Exit(code)
}

// sandbox is one test's world: its own state, data dir and backend dir.
type sandbox struct {
	t       *testing.T
	home    string // E2E_HOME
	data    string // XDG_DATA_HOME
	machine string // the test backend's "dir" option
	extra   []string
}

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	return &sandbox{t: t, home: t.TempDir(), data: t.TempDir(), machine: t.TempDir()}
}

func (s *sandbox) env() []string {
	return append([]string{
		"PATH=" + testPath(), "HOME=" + s.home, "E2E_HOME=" + s.home, "XDG_DATA_HOME=" + s.data,
	}, s.extra...)
}

// testPath is $PATH without the directories that hold e2e backend plugins
// (a developer's bin/, as the README advises), so that discovery in the
// tests sees only the plugins the tests put there.
func testPath() string {
	var keep []string
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if found, _ := filepath.Glob(filepath.Join(dir, "e2e-backend-*")); len(found) == 0 {
			keep = append(keep, dir)
		}
	}
	return strings.Join(keep, string(filepath.ListSeparator))
}

// e2e runs the e2e binary with --plugin-dir pointing at the test plugins.
func (s *sandbox) e2e(args ...string) testbin.Result {
	s.t.Helper()
	return testbin.Run(s.t, s.env(), built.e2e, append([]string{"--plugin-dir", built.pluginDir}, args...)...)
}

// start starts bin (e2e) with args in the sandbox's environment and
// returns at once, collecting its stderr; it is killed when the test ends,
// if it still runs.
func (s *sandbox) start(bin string, args ...string) (*exec.Cmd, *strings.Builder) {
	s.t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = s.env()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd, &stderr
}

// shortTempDir is a temporary directory short enough to hold go-plugin's
// unix sockets (their paths must stay under 108 bytes).
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "e2e-t-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (s *sandbox) dirOpt() string { return "dir=" + s.machine }

// clusterDirs lists the stand-in clusters the test backend holds.
func (s *sandbox) clusterDirs() []string {
	entries, _ := os.ReadDir(filepath.Join(s.machine, "clusters"))
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func (s *sandbox) records() []string {
	entries, _ := os.ReadDir(filepath.Join(s.home, "clusters"))
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func expectCode(t *testing.T, r testbin.Result, code int) {
	t.Helper()
	if r.Code != code {
		t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.Code, code, r.Stdout, r.Stderr)
	}
}

// oneErrorLine checks the user got exactly one error line, last, that
// contains every fragment; lines before it may only be progress lines
// ("[cluster] step") of work done before the error.
func oneErrorLine(t *testing.T, r testbin.Result, fragments ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "e2e: ") {
		t.Fatalf("want an error line last on stderr, got:\n%s", r.Stderr)
	}
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "[") {
			t.Fatalf("want one error line on stderr after progress lines, got:\n%s", r.Stderr)
		}
	}
	for _, f := range fragments {
		if !strings.Contains(last, f) {
			t.Errorf("error %q does not mention %q", last, f)
		}
	}
	if strings.Contains(r.Stderr, "goroutine ") || strings.Contains(r.Stderr, "panic(") {
		t.Errorf("stderr has a stack trace:\n%s", r.Stderr)
	}
}

func TestLifecycle(t *testing.T) {
	s := newSandbox(t)
	s.extra = append(s.extra, "E2E_TEST_TOKEN=supersecret-token-value")
	cfg := filepath.Join(t.TempDir(), "cluster.yaml")
	writeFile(t, cfg, "backend: test\ncluster_id: life\nmasters: 1\nagents: 3\npublic_agents: 1\noptions:\n  dir: "+s.machine+"\n  memory: 1024\n  tags: [a, b]\n")

	r := s.e2e("create", "--config", cfg, "--agents", "2", "-o", "memory=2048", "-o", "labels=team=qa")
	expectCode(t, r, 0)
	if strings.TrimSpace(r.Stdout) != "life" {
		t.Errorf("create printed %q on stdout, want the cluster id", r.Stdout)
	}

	r = s.e2e("inspect", "-c", "life", "--json")
	expectCode(t, r, 0)
	var c cluster.Cluster
	if err := json.Unmarshal([]byte(r.Stdout), &c); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, r.Stdout)
	}
	roles := map[cluster.Role]int{}
	for _, n := range c.Nodes {
		roles[n.Role]++
		if n.PrivateAddress == "" || n.SSH.Host == "" || n.SSH.Port == 0 {
			t.Errorf("node %s lacks an address or SSH endpoint: %+v", n.ID(), n)
		}
	}
	// The flag (--agents 2) wins over the file (agents: 3).
	if roles[cluster.RoleMaster] != 1 || roles[cluster.RoleAgent] != 2 || roles[cluster.RolePublicAgent] != 1 {
		t.Errorf("roles = %v, want 1 master, 2 agents, 1 public agent", roles)
	}
	// -o memory=2048 wins over the file's memory: 1024.
	if c.Details["memory"] != "2048" {
		t.Errorf("memory detail = %q, want 2048 (from -o)", c.Details["memory"])
	}
	if c.Backend != "test" || c.PluginVersion != "1.0.0-test" || c.UID == "" {
		t.Errorf("cluster = %+v", c)
	}

	// The private key is private, and the secret is nowhere in the state.
	st, err := os.Stat(c.SSHKeyPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("private key %s: mode %v, err %v; want 0600", c.SSHKeyPath, st.Mode().Perm(), err)
	}
	_ = filepath.Walk(s.home, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), "supersecret") {
				t.Errorf("state file %s contains the secret", p)
			}
		}
		return nil
	})

	r = s.e2e("list", "--json")
	expectCode(t, r, 0)
	var rows []cluster.Summary
	if err := json.Unmarshal([]byte(r.Stdout), &rows); err != nil || len(rows) != 1 || rows[0].ID != "life" || rows[0].Status != "running" {
		t.Fatalf("list --json = %s (err %v), want life running", r.Stdout, err)
	}

	r = s.e2e("destroy", "-c", "life")
	expectCode(t, r, 0)
	if got := s.clusterDirs(); len(got) != 0 {
		t.Errorf("backend still holds %v after destroy", got)
	}
	if got := s.records(); len(got) != 0 {
		t.Errorf("state still records %v after destroy", got)
	}
	r = s.e2e("list", "--json")
	expectCode(t, r, 0)
	if strings.TrimSpace(r.Stdout) != "[]" {
		t.Errorf("list after destroy = %s, want []", r.Stdout)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBadInput(t *testing.T) {
	s := newSandbox(t)
	expectCode(t, s.e2e("create", "--backend", "test", "-o", s.dirOpt(), "-c", "taken"), 0)
	files := t.TempDir()
	yamlFile := func(name, content string) string {
		p := filepath.Join(files, name)
		writeFile(t, p, content)
		return p
	}
	badYAML := yamlFile("bad.yaml", "backend: test\nagentz: 2\n")
	twoDocs := yamlFile("two.yaml", "backend: test\noptions:\n  dir: "+s.machine+"\n---\ncluster_id: second\n")
	wordCount := yamlFile("word.yaml", "backend: test\ncluster_id: words\nmasters: two\n")
	negative := yamlFile("negative.yaml", "backend: test\nagents: -1\n")
	empty := yamlFile("empty.yaml", "# nothing yet\n")
	list := yamlFile("list.yaml", "- backend: test\n")
	optsList := yamlFile("opts.yaml", "backend: test\noptions: [dir]\n")
	syntax := yamlFile("syntax.yaml", "backend: test\noptions: {dir: [x\n")
	dup := yamlFile("dup.yaml", "backend: test\nagents: 1\nagents: 2\n")
	nullKey := yamlFile("nullkey.yaml", "backend: test\nagentz:\n")
	optTypo := yamlFile("opttypo.yaml", "backend: test\noptions:\n  dir: "+s.machine+"\n  memroy: 5\n")
	optType := yamlFile("opttype.yaml", "backend: test\noptions: {dir: "+s.machine+", memory: lots}\n")
	// Aliases of aliases: nine levels of ten expand to 10^9 values.
	bombLines := []string{"backend: test", "options:", "  a0: &a0 [x, x, x, x, x, x, x, x, x, x]"}
	for i := 1; i < 9; i++ {
		bombLines = append(bombLines, fmt.Sprintf("  a%d: &a%d [%s]", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 10), ", ")))
	}
	bomb := yamlFile("bomb.yaml", strings.Join(bombLines, "\n")+"\n")
	huge := yamlFile("huge.yaml", "backend: test\n#"+strings.Repeat("x", 2<<20)+"\n")

	tests := []struct {
		name      string
		args      []string
		fragments []string
	}{
		{"unknown backend", []string{"create", "--backend", "nosuch"}, []string{`no such backend "nosuch"`, "test"}},
		{"unknown option", []string{"create", "--backend", "test", "-o", s.dirOpt(), "-o", "colour=red"}, []string{`unknown option "colour"`, "e2e plugin info test"}},
		{"wrong type", []string{"create", "--backend", "test", "-o", s.dirOpt(), "-o", "memory=lots"}, []string{`"memory"`, "integer"}},
		{"wrong type duration", []string{"create", "--backend", "test", "-o", s.dirOpt(), "-o", "create_delay=soon"}, []string{`"create_delay"`, "duration"}},
		{"bad mount", []string{"create", "--backend", "test", "-o", s.dirOpt(), "-o", "master_mounts=/a"}, []string{`"master_mounts"`}},
		{"missing required", []string{"create", "--backend", "test"}, []string{`"dir" is required`}},
		{"invalid id", []string{"create", "--backend", "test", "-o", s.dirOpt(), "-c", "no/slashes"}, []string{`invalid cluster id "no/slashes"`}},
		{"id too long", []string{"create", "--backend", "test", "-o", s.dirOpt(), "-c", strings.Repeat("a", 41)}, []string{"invalid cluster id"}},
		{"negative count", []string{"create", "--backend", "test", "-o", s.dirOpt(), "--agents=-1"}, []string{"negative"}},
		{"no nodes", []string{"create", "--backend", "test", "-o", s.dirOpt(), "--masters=0", "--agents=0", "--public-agents=0"}, []string{"at least one node"}},
		{"duplicate id", []string{"create", "--backend", "test", "-o", s.dirOpt(), "-c", "taken"}, []string{`"taken" exists already`}},
		{"secret on the command line", []string{"create", "--backend", "test", "-o", s.dirOpt(), "-o", "token=x"}, []string{`"token" is secret`, "E2E_TEST_TOKEN"}},
		{"option without value", []string{"create", "--backend", "test", "-o", "dir"}, []string{`"dir" is not NAME=VALUE`}},
		{"bad JSON value", []string{"create", "--backend", "test", "-o", s.dirOpt(), "-o", "labels={nope"}, []string{`"labels"`, "JSON"}},
		{"unknown key in cluster file", []string{"create", "--config", badYAML}, []string{badYAML, "line 2", `unknown key "agentz"`, "valid keys: backend, cluster_id, masters, agents, public_agents, options"}},
		{"unknown key without a value", []string{"create", "--config", nullKey}, []string{"line 2", `unknown key "agentz"`}},
		{"second YAML document", []string{"create", "--config", twoDocs}, []string{twoDocs, "line 5", "second YAML document"}},
		{"alias bomb in cluster file", []string{"create", "--config", bomb}, []string{bomb, "aliases", "more than 100000 values"}},
		{"cluster file too big", []string{"create", "--config", huge}, []string{huge, "at most 1048576"}},
		{"cluster file that never ends", []string{"create", "--config", "/dev/zero"}, []string{"/dev/zero", "more than 1048576 bytes"}},
		{"count of the wrong type", []string{"create", "--config", wordCount}, []string{wordCount + ": line 3: masters: want a whole number, got \"two\""}},
		{"negative count in the file", []string{"create", "--config", negative}, []string{"line 2", "agents", "negative"}},
		{"empty cluster file", []string{"create", "--config", empty}, []string{empty, "empty", "backend: NAME"}},
		{"cluster file is a list", []string{"create", "--config", list}, []string{"line 1", "want a mapping of keys", "got a list"}},
		{"options not a mapping", []string{"create", "--config", optsList}, []string{"line 2", "options: want a mapping", "got a list"}},
		{"YAML syntax error", []string{"create", "--config", syntax}, []string{syntax, "line "}},
		{"key given twice", []string{"create", "--config", dup}, []string{"line 3", `"agents" already defined`}},
		{"unknown option in cluster file", []string{"create", "--config", optTypo}, []string{"cluster file " + optTypo + ": line 4: unknown option \"memroy\" (see `e2e plugin info test`)"}},
		{"option of the wrong type in cluster file", []string{"create", "--config", optType}, []string{"cluster file " + optType + ": line 2: option \"memory\"", "integer"}},
		{"file option given again with -o", []string{"create", "--config", optTypo, "-o", "memroy=6"}, []string{`test: unknown option "memroy"`}},
		{"id ending in a dot", []string{"create", "--backend", "test", "-o", s.dirOpt(), "-c", "x."}, []string{`invalid cluster id "x."`, "ending with a letter or digit"}},
		{"id ending in a dash", []string{"create", "--backend", "test", "-o", s.dirOpt(), "-c", "x-"}, []string{`invalid cluster id "x-"`}},
		{"too many nodes of a role", []string{"create", "--backend", "test", "-o", s.dirOpt(), "--agents", "10001"}, []string{"at most 10000 nodes of a role"}},
		{"unknown flag", []string{"create", "--backend", "test", "--nodes", "3"}, []string{"--nodes"}},
		{"inspect unknown cluster", []string{"inspect", "-c", "ghost"}, []string{`no such cluster "ghost"`}},
		{"destroy unknown cluster", []string{"destroy", "-c", "ghost"}, []string{`no such cluster "ghost"`}},
		{"info of unknown backend", []string{"plugin", "info", "nosuch"}, []string{`no such backend "nosuch"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.e2e(tc.args...)
			expectCode(t, r, 2)
			oneErrorLine(t, r, tc.fragments...)
			for _, internal := range []string{"struct", "clusterFile", "main.", "*ast.", "yaml.MapSlice"} {
				if strings.Contains(r.Stderr, internal) {
					t.Errorf("stderr names Go internals (%q):\n%s", internal, r.Stderr)
				}
			}
			if r.Stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.Stdout)
			}
			if n := strings.Count(r.Stderr, "(see "); n > 1 {
				t.Errorf("%d hints in one error, want one at most:\n%s", n, r.Stderr)
			}
			if got := s.clusterDirs(); len(got) != 1 || got[0] != "taken" {
				t.Errorf("backend holds %v, want only the earlier cluster", got)
			}
			if got := s.records(); len(got) != 1 || got[0] != "taken" {
				t.Errorf("state records %v, want only the earlier cluster", got)
			}
		})
	}
}

func TestDefaultsAsDCOSE2E(t *testing.T) {
	s := newSandbox(t)
	r := s.e2e("create", "--backend", "test", "-o", s.dirOpt())
	expectCode(t, r, 0)
	if strings.TrimSpace(r.Stdout) != cluster.DefaultID {
		t.Fatalf("default cluster id = %q", r.Stdout)
	}
	r = s.e2e("inspect", "--json")
	expectCode(t, r, 0)
	var c cluster.Cluster
	if err := json.Unmarshal([]byte(r.Stdout), &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Masters()) != 1 || len(c.Agents()) != 1 || len(c.PublicAgents()) != 1 {
		t.Errorf("default counts: %d masters, %d agents, %d public agents; want one of each",
			len(c.Masters()), len(c.Agents()), len(c.PublicAgents()))
	}
	expectCode(t, s.e2e("destroy", "--all"), 0)
	if got := s.clusterDirs(); len(got) != 0 {
		t.Errorf("destroy --all left %v", got)
	}
	// Nothing left to destroy is not an error.
	expectCode(t, s.e2e("destroy", "--all"), 0)
}

func TestHelpAndVersion(t *testing.T) {
	s := newSandbox(t)
	r := s.e2e("version")
	expectCode(t, r, 0)
	if !strings.Contains(r.Stdout, "9.9.9-test") || !strings.Contains(r.Stdout, "protocol 1") {
		t.Errorf("version = %q", r.Stdout)
	}
	// --version says the same, with or without a command after it.
	for _, args := range [][]string{{"--version"}, {"--version", "list"}} {
		v := s.e2e(args...)
		expectCode(t, v, 0)
		if v.Stdout != r.Stdout || v.Stderr != "" {
			t.Errorf("e2e %v printed %q (stderr %q), want what e2e version prints: %q", args, v.Stdout, v.Stderr, r.Stdout)
		}
	}
	r = s.e2e("create", "--help")
	expectCode(t, r, 0)
	if !strings.Contains(r.Stdout, "e2e plugin info NAME") {
		t.Errorf("create --help does not say where backend options are described:\n%s", r.Stdout)
	}
	r = s.e2e()
	expectCode(t, r, 2)
}

// Commas belong to the value: JSON maps and lists with several elements
// arrive whole.
func TestOptionValuesWithCommas(t *testing.T) {
	s := newSandbox(t)
	r := s.e2e("create", "--backend", "test", "-o", s.dirOpt(), "-c", "commas",
		"-o", `labels={"a":"1","b":"2,3"}`, "-o", `tags=["x","y"]`, "-o", "tags=z,w")
	expectCode(t, r, 0)
	b, err := os.ReadFile(filepath.Join(s.home, "clusters", "commas", "cluster.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Options map[string]any `json:"options"`
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	labels, _ := json.Marshal(meta.Options["labels"])
	tags, _ := json.Marshal(meta.Options["tags"])
	if string(labels) != `{"a":"1","b":"2,3"}` || string(tags) != `["x","y","z,w"]` {
		t.Errorf("stored labels %s, tags %s", labels, tags)
	}
}
