package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/e2e-tool/e2e/internal/testbin"
)

// TestLibraryExample builds the test package of docs/library.md as a user
// would, in a module of its own with the go.mod lines the page gives (with
// the path of this checkout), and runs it against the Docker backend,
// found on PATH as the page says: a cluster made in TestMain and one made
// per test with t.Cleanup, commands, files both ways, a script install.
// Everything it made is gone afterwards.
func TestLibraryExample(t *testing.T) {
	testbin.RequireDocker(t, "")
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the library example: %v", err)
	}
	root := testbin.Root()
	page, err := os.ReadFile(filepath.Join(root, "docs", "library.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := regexp.MustCompile("(?s)```go.mod\n(.*?)```").FindStringSubmatch(string(page))
	if lines == nil {
		t.Fatal("docs/library.md has no go.mod block")
	}
	mod := t.TempDir()
	writeFile(t, filepath.Join(mod, "go.mod"), "module example.com/library\n\ngo 1.26.0\n\n"+
		strings.ReplaceAll(lines[1], readmePath, root))
	sums, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(mod, "go.sum"), string(sums))
	files := regexp.MustCompile("(?s)File `([^`]+)`:\n\n```go\n(.*?)```").FindAllStringSubmatch(string(page), -1)
	if len(files) < 2 {
		t.Fatalf("docs/library.md has %d file blocks, want the package's test files", len(files))
	}
	for _, f := range files {
		writeFile(t, filepath.Join(mod, f[1]), f[2])
	}

	// The plugins on PATH, as the page says; a state directory of its own.
	bin := t.TempDir()
	copyFile(t, filepath.Join(built.pluginDir, "e2e-backend-docker"), filepath.Join(bin, "e2e-backend-docker"), 0o755)
	home, data := t.TempDir(), t.TempDir()
	env := append(os.Environ(), "PATH="+bin+string(filepath.ListSeparator)+testPath(),
		"E2E_HOME="+home, "XDG_DATA_HOME="+data, "E2E_PLUGIN_PATH=", "GOWORK=off", "GOFLAGS=-mod=mod")
	t.Cleanup(func() {
		// Only what this run made carries its state directory's label.
		_ = exec.Command("sh", "-c", "docker rm -f -v $(docker ps -aq --filter label=e2e.state-home="+home+") 2>/dev/null; "+
			"docker network rm $(docker network ls -q --filter label=e2e.state-home="+home+") 2>/dev/null").Run()
	})
	goCmd := func(args ...string) (string, error) {
		cmd := exec.Command(goTool, args...)
		cmd.Dir, cmd.Env = mod, env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := goCmd("mod", "tidy"); err != nil {
		t.Fatalf("go mod tidy in the example's module: %v\n%s", err, out)
	}
	out, err := goCmd("test", "-count=1", "-v", "./...")
	if err != nil {
		t.Fatalf("the library example failed: %v\n%s", err, out)
	}
	for _, want := range []string{"--- PASS: TestCommandsAndFiles", "--- PASS: TestInstall", "master_0 runs PRETTY_NAME="} {
		if !strings.Contains(out, want) {
			t.Errorf("the example's output lacks %q:\n%s", want, out)
		}
	}
	if left := strings.TrimSpace(mustOutput(t, "docker", "ps", "-aq", "--filter", "label=e2e.state-home="+home)); left != "" {
		t.Errorf("the example left containers: %s", left)
	}
	if entries, _ := os.ReadDir(filepath.Join(home, "clusters")); len(entries) != 0 {
		t.Errorf("the example left %d cluster records", len(entries))
	}
}
