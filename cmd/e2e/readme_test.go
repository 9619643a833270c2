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

// goBlock is the first Go code block after a heading.
func goBlock(t *testing.T, markdown, heading string) string {
	t.Helper()
	_, after, ok := strings.Cut(markdown, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no heading %q", heading)
	}
	m := regexp.MustCompile("(?s)```go\n(.*?)```").FindStringSubmatch(after)
	if m == nil {
		t.Fatalf("README.md has no Go block under %q", heading)
	}
	return m[1]
}

// TestREADMEGoExample compiles the README's Go example as a user would, in
// a module of its own that requires this one, and runs it with go test
// against the Docker backend, found on PATH as the README says.
func TestREADMEGoExample(t *testing.T) {
	dockerReady(t)
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the README's example: %v", err)
	}
	root := testbin.Root()
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	src := goBlock(t, string(readme), "## Using the Go API")

	mod := t.TempDir()
	writeFile(t, filepath.Join(mod, "go.mod"), "module example.com/readme\n\ngo 1.26.0\n\n"+
		"require github.com/e2e-tool/e2e v0.0.0\n\nreplace (\n"+
		"\tgithub.com/e2e-tool/e2e => "+root+"\n"+
		"\tgithub.com/e2e-tool/e2e/sdk => "+filepath.Join(root, "sdk")+"\n)\n")
	sums, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(mod, "go.sum"), string(sums))
	writeFile(t, filepath.Join(mod, "example_test.go"), src)
	if err := os.Mkdir(filepath.Join(mod, "testdata"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(mod, "testdata", "hello-from-the-readme.txt"), "hello\n")

	// The plugins on PATH, as after `make build` and PATH=$PWD/bin:$PATH.
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

	tidy := exec.Command(goTool, "mod", "tidy")
	tidy.Dir, tidy.Env = mod, env
	if out, err := tidy.CombinedOutput(); err != nil {
		t.Fatalf("go mod tidy in the example's module: %v\n%s", err, out)
	}
	cmd := exec.Command(goTool, "test", "-count=1", "-v", "./...")
	cmd.Dir, cmd.Env = mod, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's Go example failed: %v\n%s", err, out)
	}
	for _, want := range []string{"--- PASS: TestOnACluster", "agent_1 runs PRETTY_NAME=", "hello-from-the-readme.txt"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the example's output lacks %q:\n%s", want, out)
		}
	}
	// It destroyed what it made.
	if left := strings.TrimSpace(mustOutput(t, "docker", "ps", "-aq", "--filter", "label=e2e.state-home="+home)); left != "" {
		t.Errorf("the example left containers: %s", left)
	}
	if entries, _ := os.ReadDir(filepath.Join(home, "clusters")); len(entries) != 0 {
		t.Errorf("the example left %d cluster records", len(entries))
	}
}
