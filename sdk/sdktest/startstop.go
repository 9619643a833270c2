package sdktest

import (
	"errors"
	"slices"
	"testing"

	"github.com/e2e-tool/e2e/sdk"
	"github.com/e2e-tool/e2e/sdk/host"
)

// testStartStop stops a cluster and starts it again, as `e2e stop` and
// `e2e start` do: Get must show every node stopped, then running with an
// SSH endpoint, the same nodes throughout; both calls are idempotent, and
// an unknown cluster is sdk.ErrNotFound.
func (s *suite) testStartStop(t *testing.T) {
	_, c := s.start(t)
	d := s.describe(t, c)
	if !d.Calls.StartStop {
		t.Skip("the backend cannot stop and start clusters (it does not implement sdk.StartStopper)")
	}
	ref := host.ClusterRef{ClusterID: newClusterID(), OptionsJSON: s.options}
	created := s.create(t, c, d, &ref)

	// get returns the cluster and checks that it is still the same one,
	// with every node in state want.
	get := func(t *testing.T, call string, want sdk.NodeState) *sdk.Cluster {
		t.Helper()
		got, err := c.Get(s.ctx(t), ref)
		if err != nil {
			t.Fatalf("Get %q after %s: %v", ref.ClusterID, call, err)
		}
		s.checkClusterIn(t, "Get after "+call, got, ref.ClusterID, want)
		if got.UID != created.UID {
			t.Errorf("Get after %s: UID %q, but Create returned %q", call, got.UID, created.UID)
		}
		if g, w := nodeNames(got), nodeNames(created); !slices.Equal(g, w) {
			t.Errorf("Get after %s: nodes %v, but Create returned %v", call, g, w)
		}
		return got
	}

	for i := 1; i <= 2; i++ {
		if err := c.Stop(s.ctx(t), ref, logEvents(t)); err != nil {
			t.Fatalf("Stop %q (call %d): %v", ref.ClusterID, i, err)
		}
		get(t, "Stop", sdk.NodeStopped)
	}
	if d.Calls.List {
		// A stopped cluster still exists: e2e list shows it as stopped.
		s.checkListed(t, c, d, ref.ClusterID, true)
	}
	var started *sdk.Cluster
	for i := 1; i <= 2; i++ {
		if err := c.Start(s.ctx(t), ref, logEvents(t)); err != nil {
			t.Fatalf("Start %q (call %d): %v", ref.ClusterID, i, err)
		}
		started = get(t, "Start", sdk.NodeRunning)
	}
	if s.runsSSHD(t, d) && started != nil {
		// The core logs in after Start, and refuses a host key that
		// changed since Create: the keys must survive a restart.
		t.Run("SSH", func(t *testing.T) {
			s.checkSSH(t, "after Start", started.Nodes, hostKeysOf(created))
		})
	}

	never := host.ClusterRef{ClusterID: newClusterID(), OptionsJSON: s.options}
	if err := c.Stop(s.ctx(t), never, logEvents(t)); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("Stop of %q, which never existed: %v; want an error wrapping sdk.ErrNotFound", never.ClusterID, err)
	}
	if err := c.Start(s.ctx(t), never, logEvents(t)); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("Start of %q, which never existed: %v; want an error wrapping sdk.ErrNotFound", never.ClusterID, err)
	}

	if d.Calls.Destroy {
		if err := c.Destroy(s.ctx(t), ref, logEvents(t)); err != nil {
			t.Fatalf("Destroy %q: %v", ref.ClusterID, err)
		}
		s.checkGone(t, c, d, ref)
	}
}
