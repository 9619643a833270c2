package testdcos

import (
	"context"
	"strings"
	"testing"

	"github.com/e2e-tool/e2e/internal/proc"
	"github.com/e2e-tool/e2e/internal/testbin"
)

// TestOnlyTestsUseIt: the fixture stays out of production code. No
// package that `go build ./...` puts into e2e or a plugin depends on it
// (tests and benchmarks do, through their _test.go files).
func TestOnlyTestsUseIt(t *testing.T) {
	cmd := proc.Command(context.Background(), "go", "list", "-deps", "-f", "{{.ImportPath}}",
		"./cmd/...", "./cluster/...", "./plugins/...")
	cmd.Dir = testbin.Root()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const self = "github.com/e2e-tool/e2e/internal/testdcos"
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == self || strings.HasPrefix(pkg, self+"/") {
			t.Errorf("production code depends on %s", pkg)
		}
	}
}
