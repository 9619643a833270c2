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

// guideFiles returns the files of the sample backend of
// docs/plugin-authoring.md: every code block labelled "File `NAME`:".
func guideFiles(t *testing.T) map[string]string {
	t.Helper()
	guide, err := os.ReadFile(filepath.Join(testbin.Root(), "docs", "plugin-authoring.md"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, m := range regexp.MustCompile("(?s)File `([^`]+)`:\n\n```[a-z]*\n(.*?)```").FindAllStringSubmatch(string(guide), -1) {
		if _, dup := files[m[1]]; dup {
			t.Fatalf("the guide has two blocks for file %s", m[1])
		}
		files[m[1]] = m[2]
	}
	return files
}

// TestGuideExample builds the guide's sample backend as a vendor would: in
// a module of its own whose go.mod is the guide's (one require, one
// replace pointing at the SDK), runs its tests (its Validator's unit test
// and sdktest against the built executable), and uses it through e2e as
// the guide shows.
func TestGuideExample(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the guide's example: %v", err)
	}
	files := guideFiles(t)
	for _, name := range []string{"go.mod", "main.go", "machines.go", "create.go", "find.go", "validate.go",
		"startstop.go", "validate_test.go", "conformance_test.go"} {
		if _, ok := files[name]; !ok {
			t.Errorf("the guide has no block for file %s (section 2 lists it)", name)
		}
	}
	gomod := files["go.mod"]
	if n := strings.Count(gomod, "github.com/e2e-tool/e2e/"); n != 2 || !strings.Contains(gomod, "require github.com/e2e-tool/e2e/sdk ") ||
		!strings.Contains(gomod, "replace github.com/e2e-tool/e2e/sdk => ../e2e/sdk\n") {
		t.Fatalf("the guide's go.mod should need one require and one replace of the SDK, and nothing else of e2e:\n%s", gomod)
	}
	// The guide's module sits beside a checkout of e2e; here the checkout
	// is this repository.
	files["go.mod"] = strings.Replace(gomod, "../e2e/sdk", filepath.Join(testbin.Root(), "sdk"), 1)

	mod := t.TempDir()
	for name, content := range files {
		writeFile(t, filepath.Join(mod, name), content)
	}
	sums, err := os.ReadFile(filepath.Join(testbin.Root(), "sdk", "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(mod, "go.sum"), string(sums))
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(goTool, args...)
		cmd.Dir, cmd.Env = mod, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s in the guide's module: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("mod", "tidy")
	run("vet", "./...")
	// Section 2: nothing heavy comes with the SDK.
	for _, dep := range strings.Fields(run("list", "-deps", ".")) {
		if strings.Contains(dep, "docker") || strings.Contains(dep, "aws") || dep == "github.com/e2e-tool/e2e/cluster" {
			t.Errorf("the example depends on %s", dep)
		}
	}
	out := run("test", "-count=1", "-v", "./...")
	for _, want := range []string{"--- PASS: TestValidate", "--- PASS: TestConformance", "--- PASS: TestConformance/Lifecycle",
		"--- PASS: TestConformance/StartStop", "--- PASS: TestConformance/Cancel"} {
		if !strings.Contains(out, want) {
			t.Errorf("the example's tests did not report %q:\n%s", want, out)
		}
	}

	// Section 3.8: build it and use it through e2e.
	bin := filepath.Join(mod, "bin")
	run("build", "-ldflags", "-X main.version=1.2.3", "-o", filepath.Join(bin, "e2e-backend-example"), ".")
	s := newSandbox(t)
	e2e := func(args ...string) testbin.Result {
		t.Helper()
		return testbin.Run(t, s.env(), built.e2e, append([]string{"--plugin-dir", bin}, args...)...)
	}
	r := e2e("plugin", "info", "example")
	expectCode(t, r, 0)
	if want := "capabilities: destroy=true install=path tracks-clusters=true exec=false verify-ssh=false clean=false start-stop=true"; !strings.Contains(r.Stdout, want) {
		t.Errorf("plugin info shows\n%s\nwant %q (the interfaces the example implements)", r.Stdout, want)
	}
	account := t.TempDir()
	expectCode(t, e2e("create", "--backend", "example", "-c", "demo", "-o", "dir="+account), 0)
	r = e2e("inspect", "-c", "demo")
	expectCode(t, r, 0)
	if !strings.Contains(r.Stdout, "agent_0") || !strings.Contains(r.Stdout, "e2e-demo-public-agent-0") {
		t.Errorf("inspect:\n%s", r.Stdout)
	}
	// Section 3.4: from a fresh E2E_HOME, e2e list asks no backend; named
	// with --backend, the backend lists the cluster as untracked.
	fresh := newSandbox(t)
	fresh.extra = append(fresh.extra, "E2E_EXAMPLE_DIR="+account)
	r = testbin.Run(t, fresh.env(), built.e2e, "--plugin-dir", bin, "list")
	expectCode(t, r, 0)
	if !strings.Contains(r.Stdout+r.Stderr, "no clusters") || strings.Contains(r.Stdout, "demo") {
		t.Errorf("list from a fresh E2E_HOME:\n%s%s", r.Stdout, r.Stderr)
	}
	r = testbin.Run(t, fresh.env(), built.e2e, "--plugin-dir", bin, "list", "--backend", "example")
	expectCode(t, r, 0)
	if !regexp.MustCompile(`(?m)^demo\s.*untracked`).MatchString(r.Stdout) {
		t.Errorf("list --backend example from a fresh E2E_HOME does not show demo as untracked:\n%s", r.Stdout)
	}
	expectCode(t, e2e("stop", "-c", "demo"), 0)
	if r := e2e("list"); !strings.Contains(r.Stdout, "stopped") {
		t.Errorf("list after stop:\n%s", r.Stdout)
	}
	expectCode(t, e2e("start", "-c", "demo"), 0)
	expectCode(t, e2e("destroy", "-c", "demo"), 0)
	if left, _ := filepath.Glob(filepath.Join(account, "*.json")); len(left) != 0 {
		t.Errorf("destroy left machines: %v", left)
	}
}

// TestInstallingDocCapabilities: the capabilities docs/installing.md shows
// for each built-in backend are what e2e plugin info prints for it.
func TestInstallingDocCapabilities(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(testbin.Root(), "docs", "installing.md"))
	if err != nil {
		t.Fatal(err)
	}
	shown := regexp.MustCompile(`(?m)^\$ e2e plugin info (\w+) \| grep capabilities\n(capabilities: .*)$`).FindAllStringSubmatch(string(doc), -1)
	if len(shown) != 3 {
		t.Fatalf("docs/installing.md shows the capabilities of %d backends, want docker, aws and existing", len(shown))
	}
	dir := t.TempDir()
	s := newSandbox(t)
	for _, m := range shown {
		bin := filepath.Join(dir, "e2e-backend-"+m[1])
		if err := testbin.Compile("./plugins/"+m[1], bin, "9.9.9-test"); err != nil {
			t.Fatal(err)
		}
		r := testbin.Run(t, s.env(), built.e2e, "--plugin-dir", dir, "plugin", "info", m[1])
		expectCode(t, r, 0)
		got := regexp.MustCompile(`(?m)^capabilities: .*$`).FindString(r.Stdout)
		if got != m[2] {
			t.Errorf("docs/installing.md shows for %s\n%s\nbut e2e plugin info prints\n%s", m[1], m[2], got)
		}
	}
}
