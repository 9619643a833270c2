package main

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/e2e-tool/e2e/sdk/sdktest"
)

// TestConformance runs the SDK's conformance suite against the test
// backend, built as the real executable e2e would start.
func TestConformance(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "e2e-backend-test")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	sdktest.Run(t, sdktest.Config{
		Binary: bin,
		// create_delay makes Create slow enough for the Cancel check to
		// cancel it half-way.
		Options: map[string]any{"dir": t.TempDir(), "create_delay": "50ms"},
		Agents:  2,
	})
}
