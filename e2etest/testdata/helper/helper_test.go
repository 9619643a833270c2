// Package helper holds tests that use e2etest the way a user's package
// does, for e2etest's own tests to run as a subprocess: one that fails (it
// must leave the cluster's logs), one that hangs until it is killed (its
// reaper must destroy the cluster), one whose cluster is kept (-e2e.retain).
// And one that uses a cluster shared through TestMain.
// They are never run by `go test ./...` (a testdata directory).
package helper

import (
	"os"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/e2etest"
)

// shared is the cluster of TestShared.
var shared = e2etest.NewShared(options())

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

// TestShared uses the shared cluster, which TestMain destroys.
func TestShared(t *testing.T) {
	record(t, shared.Cluster(t))
}

// options is a one-node Docker cluster.
func options() e2etest.Options {
	return e2etest.Options{Spec: cluster.Spec{Backend: "docker", Masters: 1, Agents: cluster.None, PublicAgents: cluster.None}}
}

// record writes the cluster's id where $HELPER_OUT says, for the caller.
func record(t *testing.T, c *cluster.Cluster) {
	if err := os.WriteFile(os.Getenv("HELPER_OUT"), []byte(c.ID+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFails writes $HELPER_MARKER into the journal of its node, then fails.
func TestFails(t *testing.T) {
	c := e2etest.New(t, options())
	record(t, c)
	if out, err := c.Masters()[0].Output(t.Context(), "logger", "-t", "helper", os.Getenv("HELPER_MARKER")); err != nil {
		t.Fatalf("logger: %v: %s", err, out)
	}
	t.Errorf("failing on purpose, with cluster %s", c.ID)
}

// TestHangs waits to be killed.
func TestHangs(t *testing.T) {
	c := e2etest.New(t, options())
	record(t, c)
	time.Sleep(10 * time.Minute)
}

// TestKeeps passes; run with -e2e.retain, its cluster stays.
func TestKeeps(t *testing.T) {
	c := e2etest.New(t, options())
	record(t, c)
}
