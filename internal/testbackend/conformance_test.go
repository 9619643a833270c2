package main

import (
	"path/filepath"
	"testing"

	"github.com/e2e-tool/e2e/internal/testbin"
	"github.com/e2e-tool/e2e/sdk/sdktest"
)

// TestConformance runs the SDK's conformance suite against the test
// backend, built as the real executable e2e would start.
func TestConformance(t *testing.T) {
	bin := testbin.Build(t, "./internal/testbackend", filepath.Join(t.TempDir(), "e2e-backend-test"), "")
	sdktest.Run(t, sdktest.Config{
		Binary: bin,
		// create_delay makes Create slow enough for the Cancel check to
		// cancel it half-way.
		Options: map[string]any{"dir": t.TempDir(), "create_delay": "50ms"},
		Agents:  2,
	})
}
