package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/internal/testbin"
)

func copyFile(t *testing.T, src, dst string, mode os.FileMode) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
	return dst
}

func pluginList(t *testing.T, env []string, bin string, args ...string) []cluster.PluginInfo {
	t.Helper()
	r := testbin.Run(t, env, bin, append(args, "plugin", "list", "--json")...)
	expectCode(t, r, 0)
	var infos []cluster.PluginInfo
	if err := json.Unmarshal([]byte(r.Stdout), &infos); err != nil {
		t.Fatalf("plugin list --json: %v\n%s", err, r.Stdout)
	}
	return infos
}

// usedPath returns the path of the test plugin that wins.
func usedPath(t *testing.T, infos []cluster.PluginInfo) string {
	t.Helper()
	for _, p := range infos {
		if p.Name == "test" && p.Used {
			return p.Path
		}
	}
	t.Fatalf("no test plugin is used: %+v", infos)
	return ""
}

func TestDiscoveryOrder(t *testing.T) {
	s := newSandbox(t)
	root := t.TempDir()
	flagDir, envDir, besideDir := filepath.Join(root, "flag"), filepath.Join(root, "env"), filepath.Join(root, "beside")
	pathDir := filepath.Join(root, "path")
	flagPlugin := copyFile(t, built.test, filepath.Join(flagDir, "e2e-backend-test"), 0o755)
	envPlugin := copyFile(t, built.test, filepath.Join(envDir, "e2e-backend-test"), 0o755)
	besidePlugin := copyFile(t, built.test, filepath.Join(besideDir, "e2e-backend-test"), 0o755)
	pathPlugin := copyFile(t, built.test, filepath.Join(pathDir, "e2e-backend-test"), 0o755)
	// $PATH comes last; the sandbox's PATH is the test's.
	s.extra = append(s.extra, "PATH="+pathDir+string(filepath.ListSeparator)+testPath())
	e2e := copyFile(t, built.e2e, filepath.Join(besideDir, "e2e"), 0o755)
	installSrc := copyFile(t, built.test, filepath.Join(root, "src", "e2e-backend-test"), 0o755)
	expectCode(t, testbin.Run(t, s.env(), e2e, "plugin", "install", installSrc), 0)
	installed := filepath.Join(s.data, "e2e", "plugins", "e2e-backend-test")

	withEnv := append(s.env(), "E2E_PLUGIN_PATH="+envDir)
	infos := pluginList(t, withEnv, e2e, "--plugin-dir", flagDir)
	var order []string
	for _, p := range infos {
		if p.Name == "test" {
			order = append(order, p.Source+"="+p.Path+"="+strconv.FormatBool(p.Used))
		}
	}
	want := []string{
		"--plugin-dir=" + flagPlugin + "=true",
		"E2E_PLUGIN_PATH=" + envPlugin + "=false",
		"installed=" + installed + "=false",
		"beside e2e=" + besidePlugin + "=false",
		"PATH=" + pathPlugin + "=false",
	}
	if strings.Join(order, "\n") != strings.Join(want, "\n") {
		t.Errorf("candidates:\n%s\nwant:\n%s", strings.Join(order, "\n"), strings.Join(want, "\n"))
	}
	for _, p := range infos {
		if p.Name == "test" && (p.Version != "1.0.0-test" || p.Protocol != 1 || len(p.SHA256) != 64) {
			t.Errorf("candidate %s: version %q protocol %d sha256 %q", p.Path, p.Version, p.Protocol, p.SHA256)
		}
	}

	steps := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"flag wins", withEnv, []string{"--plugin-dir", flagDir}, flagPlugin},
		{"then E2E_PLUGIN_PATH", withEnv, nil, envPlugin},
		{"then installed", s.env(), nil, installed},
	}
	for _, st := range steps {
		if got := usedPath(t, pluginList(t, st.env, e2e, st.args...)); got != st.want {
			t.Errorf("%s: used %s, want %s", st.name, got, st.want)
		}
	}
	expectCode(t, testbin.Run(t, s.env(), e2e, "plugin", "remove", "test"), 0)
	if got := usedPath(t, pluginList(t, s.env(), e2e)); got != besidePlugin {
		t.Errorf("then beside e2e: used %s, want %s", got, besidePlugin)
	}
	// An e2e (or a Go test binary) with no plugin beside it finds the one
	// on $PATH.
	if got := usedPath(t, pluginList(t, s.env(), built.e2e)); got != pathPlugin {
		t.Errorf("then $PATH: used %s, want %s", got, pathPlugin)
	}
	// Where nothing is found, the error says every place it looked.
	r := testbin.Run(t, s.env(), built.e2e, "plugin", "info", "nosuch")
	expectCode(t, r, 2)
	oneErrorLine(t, r, `no such backend "nosuch"`, "no e2e-backend-nosuch in", "$E2E_PLUGIN_PATH none",
		"installed "+filepath.Join(s.data, "e2e", "plugins"), "beside e2e "+filepath.Dir(built.e2e), "$PATH "+pathDir+":", "available: test")
	// The one used is the one that runs.
	r = testbin.Run(t, withEnv, e2e, "--plugin-dir", flagDir, "plugin", "info", "test", "--json")
	expectCode(t, r, 0)
	var info cluster.BackendInfo
	if err := json.Unmarshal([]byte(r.Stdout), &info); err != nil || info.Path != flagPlugin {
		t.Errorf("plugin info ran %q (err %v), want %s", info.Path, err, flagPlugin)
	}
}

func TestPluginInfo(t *testing.T) {
	s := newSandbox(t)
	r := s.e2e("plugin", "info", "test", "--json")
	expectCode(t, r, 0)
	var info cluster.BackendInfo
	if err := json.Unmarshal([]byte(r.Stdout), &info); err != nil {
		t.Fatal(err)
	}
	byName := map[string]cluster.OptionInfo{}
	for _, o := range info.Options {
		byName[o.Name] = o
	}
	if o := byName["dir"]; !o.Required || o.Type != "string" || o.Help == "" {
		t.Errorf("dir = %+v", o)
	}
	if o := byName["token"]; !o.Secret || o.Env != "E2E_TEST_TOKEN" {
		t.Errorf("token = %+v", o)
	}
	if o := byName["memory"]; o.Type != "int" || o.Default != float64(512) {
		t.Errorf("memory = %+v", o)
	}
	if !info.Capabilities.Destroy || !info.Capabilities.TracksClusters || len(info.Capabilities.InstallMethods) != 1 {
		t.Errorf("capabilities = %+v", info.Capabilities)
	}
	r = s.e2e("plugin", "info", "test")
	expectCode(t, r, 0)
	for _, want := range []string{"NAME", "TYPE", "DEFAULT", "REQUIRED", "SECRET", "create_delay", "duration", "yes, from $E2E_TEST_TOKEN"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("plugin info does not show %q:\n%s", want, r.Stdout)
		}
	}
}

func TestChecksumRefusal(t *testing.T) {
	s := newSandbox(t)
	src := copyFile(t, built.test, filepath.Join(t.TempDir(), "e2e-backend-test"), 0o755)
	env := s.env()
	r := testbin.Run(t, env, built.e2e, "plugin", "install", src)
	expectCode(t, r, 0)
	installed := filepath.Join(s.data, "e2e", "plugins", "e2e-backend-test")
	expectCode(t, testbin.Run(t, env, built.e2e, "plugin", "info", "test"), 0)

	// Someone changes the installed binary.
	f, err := os.OpenFile(installed, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write([]byte("tampered"))
	f.Close()

	for _, args := range [][]string{
		{"plugin", "info", "test"},
		{"create", "--backend", "test", "-o", s.dirOpt()},
	} {
		r := testbin.Run(t, env, built.e2e, args...)
		expectCode(t, r, 1)
		oneErrorLine(t, r, "changed since it was installed", "sha256", "e2e plugin install --force")
	}
	if got := s.clusterDirs(); len(got) != 0 {
		t.Errorf("a modified plugin created %v", got)
	}
	if pids := testbin.Processes(installed); len(pids) != 0 {
		t.Errorf("the modified plugin ran: %v", pids)
	}
	// Reinstalling makes it usable again.
	expectCode(t, testbin.Run(t, env, built.e2e, "plugin", "install", "--force", src), 0)
	expectCode(t, testbin.Run(t, env, built.e2e, "plugin", "info", "test"), 0)
}

func TestInstallAndRemove(t *testing.T) {
	s := newSandbox(t)
	env := s.env()
	src := copyFile(t, built.test, filepath.Join(t.TempDir(), "e2e-backend-test"), 0o755)
	r := testbin.Run(t, env, built.e2e, "plugin", "install", src)
	expectCode(t, r, 0)
	if strings.TrimSpace(r.Stdout) != "test" {
		t.Errorf("install printed %q, want the backend name", r.Stdout)
	}
	manifest, err := os.ReadFile(filepath.Join(s.data, "e2e", "plugins", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Plugins map[string]struct {
			SHA256  string `json:"sha256"`
			Version string `json:"version"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		t.Fatal(err)
	}
	infos := pluginList(t, env, built.e2e)
	if len(infos) != 1 || infos[0].SHA256 != m.Plugins["test"].SHA256 || m.Plugins["test"].Version != "1.0.0-test" {
		t.Errorf("manifest %s does not match plugin list %+v", manifest, infos)
	}

	r = testbin.Run(t, env, built.e2e, "plugin", "install", src)
	expectCode(t, r, 2)
	oneErrorLine(t, r, "already installed", "--force")
	expectCode(t, testbin.Run(t, env, built.e2e, "plugin", "install", "--force", src), 0)

	expectCode(t, testbin.Run(t, env, built.e2e, "plugin", "remove", "test"), 0)
	if infos := pluginList(t, env, built.e2e); len(infos) != 0 {
		t.Errorf("after remove: %+v", infos)
	}
	r = testbin.Run(t, env, built.e2e, "plugin", "remove", "test")
	expectCode(t, r, 2)
	oneErrorLine(t, r, `"test" is not installed`)
}

func TestInstallRefusesNonPlugin(t *testing.T) {
	s := newSandbox(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "e2e-backend-fake")
	writeFile(t, script, "#!/bin/sh\necho hello from a script\n")
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	notExec := copyFile(t, built.test, filepath.Join(dir, "e2e-backend-plain"), 0o644)
	text := filepath.Join(dir, "e2e-backend-text")
	writeFile(t, text, "backend: test\n")
	subdir := filepath.Join(dir, "e2e-backend-dir")
	if err := os.Mkdir(subdir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A real plugin whose file names another backend than it reports
	// would be found, and used, under the wrong name.
	misnamed := copyFile(t, built.test, filepath.Join(dir, "e2e-backend-test2"), 0o755)
	tool, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		path      string
		fragments []string
	}{
		{"system file", "/etc/passwd", []string{"refusing to install /etc/passwd", "/etc/passwd is not an e2e backend plugin", "named e2e-backend-NAME"}},
		{"system program", tool, []string{tool + " is not an e2e backend plugin", "named e2e-backend-NAME"}},
		{"script that is no plugin", script, []string{"refusing to install", script + " is not an e2e backend plugin", "hello from a script"}},
		{"plugin that is not executable", notExec, []string{notExec + " is not an e2e backend plugin", "not executable"}},
		{"text file", text, []string{text + " is not an e2e backend plugin", "not a program"}},
		{"directory", subdir, []string{subdir + " is not an e2e backend plugin", "directory"}},
		{"missing file", filepath.Join(dir, "e2e-backend-nothing"), []string{"e2e: no such file: " + filepath.Join(dir, "e2e-backend-nothing")}},
		{"file named for another backend", misnamed, []string{"refusing to install " + misnamed, `named for backend "test2"`,
			`the plugin in it is backend "test"`, "rename the file to e2e-backend-test"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := testbin.Run(t, s.env(), built.e2e, "plugin", "install", tc.path)
			expectCode(t, r, 2)
			oneErrorLine(t, r, tc.fragments...)
			// Never advice to make a file executable that is no plugin.
			if strings.Contains(r.Stderr, "chmod") {
				t.Errorf("stderr advises chmod:\n%s", r.Stderr)
			}
			if strings.Contains(r.Stderr, "stat ") {
				t.Errorf("stderr names the system call:\n%s", r.Stderr)
			}
			entries, _ := os.ReadDir(filepath.Join(s.data, "e2e", "plugins"))
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), "e2e-backend-") || e.Name() == "manifest.json" {
					t.Errorf("a non-plugin was installed: %s", e.Name())
				}
			}
		})
	}
}

// TestPluginByHand: a plugin executable started by a person says what it
// is; --help is asked for (exit 0, on stdout), and the install command it
// advises names the executable wherever it is run from.
func TestPluginByHand(t *testing.T) {
	s := newSandbox(t)
	for _, tc := range []struct {
		args   []string
		code   int
		stdout bool
	}{
		{[]string{"--help"}, 0, true},
		{[]string{"-h"}, 0, true},
		{nil, 1, false},
		{[]string{"--bogus"}, 2, false},
	} {
		cmd := exec.Command("./e2e-backend-test", tc.args...)
		cmd.Dir, cmd.Env = built.pluginDir, s.env()
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		out := stderr.String()
		if tc.stdout {
			out = stdout.String()
		}
		if code != tc.code || !strings.Contains(out, "Install it with: e2e plugin install "+built.test+"\n") {
			t.Errorf("e2e-backend-test %v: exit %d, stdout %q, stderr %q; want exit %d and the install command with %s",
				tc.args, code, stdout.String(), stderr.String(), tc.code, built.test)
		}
	}
	// The advice works as printed.
	r := testbin.Run(t, s.env(), built.e2e, "plugin", "install", built.test)
	expectCode(t, r, 0)
}

func TestNotExecutable(t *testing.T) {
	s := newSandbox(t)
	dir := t.TempDir()
	plain := copyFile(t, built.test, filepath.Join(dir, "e2e-backend-plain"), 0o644)
	r := testbin.Run(t, s.env(), built.e2e, "--plugin-dir", dir, "plugin", "info", "plain")
	expectCode(t, r, 1)
	oneErrorLine(t, r, plain+" is not executable", "chmod +x")
}

func TestStartTimeout(t *testing.T) {
	s := newSandbox(t)
	dir := t.TempDir()
	pidPath := filepath.Join(dir, "pid")
	slow := filepath.Join(dir, "e2e-backend-slow")
	writeFile(t, slow, "#!/bin/sh\necho $$ > "+pidPath+"\nexec sleep 30\n")
	if err := os.Chmod(slow, 0o755); err != nil {
		t.Fatal(err)
	}
	s.extra = append(s.extra, "E2E_PLUGIN_START_TIMEOUT=1s")
	r := testbin.Run(t, s.env(), built.e2e, "--plugin-dir", dir, "plugin", "info", "slow")
	expectCode(t, r, 1)
	oneErrorLine(t, r, `plugin "slow"`, "did not start within 1s")
	b, err := os.ReadFile(pidPath)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if !testbin.Gone(pid, 5*time.Second) {
		t.Errorf("the plugin that did not start (pid %d) was left running", pid)
	}
}

func TestProtocolMismatch(t *testing.T) {
	s := newSandbox(t)
	for _, args := range [][]string{
		{"plugin", "info", "future"},
		{"create", "--backend", "future"},
	} {
		r := s.e2e(args...)
		expectCode(t, r, 1)
		oneErrorLine(t, r, `plugin "future"`, "speaks protocol 2", "this e2e speaks protocol 1")
	}
	time.Sleep(100 * time.Millisecond)
	if pids := testbin.Processes(built.future); len(pids) != 0 {
		t.Errorf("future-protocol plugin processes left: %v", pids)
	}
	// plugin list still lists it, with the reason it cannot be used.
	infos := pluginList(t, s.env(), built.e2e, "--plugin-dir", built.pluginDir)
	for _, p := range infos {
		if p.Name == "future" && !strings.Contains(p.Error, "speaks protocol 2") {
			t.Errorf("plugin list entry for future: %+v", p)
		}
	}
}

// TestBuiltInPlugins builds with the Makefile, as a user does, and checks
// that e2e finds the three built-in backends beside itself, each with the
// version from its own VERSION file.
func TestBuiltInPlugins(t *testing.T) {
	_, err := exec.LookPath("make")
	testbin.Require(t, "make (apt-get install make)", err)
	bin := t.TempDir()
	cmd := exec.Command("make", "build", "BINDIR="+bin)
	cmd.Dir = testbin.Root()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	s := newSandbox(t)
	infos := pluginList(t, s.env(), filepath.Join(bin, "e2e"))
	got := map[string]cluster.PluginInfo{}
	for _, p := range infos {
		got[p.Name] = p
	}
	for _, name := range []string{"docker", "aws", "existing"} {
		v, err := os.ReadFile(filepath.Join(testbin.Root(), "plugins", name, "VERSION"))
		if err != nil {
			t.Fatal(err)
		}
		p, ok := got[name]
		switch {
		case !ok:
			t.Errorf("plugin list does not show %s: %+v", name, infos)
		case p.Version != strings.TrimSpace(string(v)) || p.Protocol != 1 || p.Source != "beside e2e" || !p.Used:
			t.Errorf("%s: %+v, want version %s beside e2e", name, p, v)
		}
	}
	// The Quick start's main job with these binaries: a Docker cluster, a
	// command on it, gone.
	testbin.RequireDocker(t, "")
	e2e := filepath.Join(bin, "e2e")
	id := "quick-" + randomSuffix(t)
	t.Cleanup(func() { testbin.Run(t, s.env(), e2e, "destroy", "-c", id) })
	expectCode(t, testbin.Run(t, s.env(), e2e, "create", "--backend", "docker", "-c", id), 0)
	r := testbin.Run(t, s.env(), e2e, "run", "-c", id, "--", "uname", "-s")
	expectCode(t, r, 0)
	if strings.TrimSpace(r.Stdout) != "Linux" {
		t.Errorf("uname on master_0: %q", r.Stdout)
	}
	expectCode(t, testbin.Run(t, s.env(), e2e, "destroy", "-c", id), 0)
	if out := mustOutput(t, "docker", "ps", "-aq", "--filter", "label=e2e.cluster-id="+id); strings.TrimSpace(out) != "" {
		t.Errorf("destroy left containers: %s", out)
	}
}
