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

// codeBlock is the first code block of a language ("go", "go.mod") after
// a heading.
func codeBlock(t *testing.T, markdown, heading, lang string) string {
	t.Helper()
	_, after, ok := strings.Cut(markdown, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no heading %q", heading)
	}
	m := regexp.MustCompile("(?s)```" + regexp.QuoteMeta(lang) + "\n(.*?)```").FindStringSubmatch(after)
	if m == nil {
		t.Fatalf("README.md has no %s block under %q", lang, heading)
	}
	return m[1]
}

// readmePath is where the README's go.mod lines put the checkout of e2e.
const readmePath = "/path/to/e2e"

// TestREADMEGoExample compiles the README's Go examples (the Go API's and
// the e2etest helper's) as a user would, in
// a module of its own whose go.mod has the lines the README gives (with the
// path of this checkout), and runs it with go test against the Docker
// backend, found on PATH as the README says. The example's cluster has an
// id of its own, not the shared default.
func TestREADMEGoExample(t *testing.T) {
	testbin.RequireDocker(t, "")
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the README's example: %v", err)
	}
	root := testbin.Root()
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	src := codeBlock(t, string(readme), "## Using the Go API", "go")
	lines := codeBlock(t, string(readme), "## Using the Go API", "go.mod")
	if !strings.Contains(lines, "require github.com/e2e-tool/e2e ") {
		t.Errorf("the README's go.mod lines do not require github.com/e2e-tool/e2e:\n%s", lines)
	}
	// Every replace points at a module of the checkout: nothing more is
	// needed (shared/proto is no module), and go would ignore a replace of
	// a module nothing requires.
	replaces := regexp.MustCompile(`(?m)^\s*(?:replace\s+)?(\S+)\s+=>\s+(\S+)\s*$`).FindAllStringSubmatch(lines, -1)
	if len(replaces) == 0 {
		t.Errorf("the README's go.mod lines replace nothing:\n%s", lines)
	}
	for _, r := range replaces {
		dir, ok := strings.CutPrefix(r[2], readmePath)
		if !ok {
			t.Errorf("the README replaces %s with %s, not a path in the checkout (%s)", r[1], r[2], readmePath)
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, dir, "go.mod"))
		if err != nil || !strings.HasPrefix(string(b), "module "+r[1]+"\n") {
			t.Errorf("the README replaces %s with %s, which is not that module here (%v)", r[1], r[2], err)
		}
	}

	mod := t.TempDir()
	writeFile(t, filepath.Join(mod, "go.mod"), "module example.com/readme\n\ngo 1.26.0\n\n"+
		strings.ReplaceAll(lines, readmePath, root))
	sums, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(mod, "go.sum"), string(sums))
	writeFile(t, filepath.Join(mod, "example_test.go"), src)
	// The e2etest example, in the same package: its TestMain runs both.
	writeFile(t, filepath.Join(mod, "helper_test.go"), codeBlock(t, string(readme), "## Go tests: the e2etest helper", "go"))
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
	for _, want := range []string{"--- PASS: TestOnACluster", "agent_1 of cluster example-", " runs PRETTY_NAME=", "hello-from-the-readme.txt",
		"--- PASS: TestWithItsOwnCluster", "master_0 of testwithitsowncluster-", "--- PASS: TestOnTheSharedCluster"} {
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
