package sdktest

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/sdk"
	"github.com/e2e-tool/e2e/sdk/host"
	"github.com/e2e-tool/e2e/sdk/internal/wire"
	"google.golang.org/grpc/codes"
)

// cancelAfter is how long the Cancel check waits for a first event before
// it cancels Create anyway.
const cancelAfter = 100 * time.Millisecond

// testHandshake checks that the plugin starts and speaks the protocol major
// of this SDK.
func (s *suite) testHandshake(t *testing.T) {
	pc, _ := s.start(t)
	if v := pc.NegotiatedVersion(); v != sdk.ProtocolVersion {
		t.Errorf("negotiated protocol %d, want %d", v, sdk.ProtocolVersion)
	}
}

// describe calls Describe; the other checks need the capabilities.
func (s *suite) describe(t *testing.T, c *host.Client) host.Description {
	t.Helper()
	d, err := c.Describe(s.ctx(t))
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	return d
}

// testDescribe checks what `e2e plugin info` shows and what the core
// validates options with.
func (s *suite) testDescribe(t *testing.T) {
	_, c := s.start(t)
	d := s.describe(t, c)

	// e2e finds a backend by its executable name, so the two must agree.
	base := strings.TrimSuffix(filepath.Base(s.cfg.Binary), ".exe")
	name, named := strings.CutPrefix(base, binaryPrefix)
	switch {
	case d.Name == "":
		t.Error("Describe: the name is empty")
	case !named:
		t.Errorf("the executable is called %q, not %sNAME, so e2e would not find it", base, binaryPrefix)
	case d.Name != name:
		t.Errorf("Describe: name %q, but the executable is %q", d.Name, base)
	}
	if d.Version == "" {
		t.Error("Describe: the version is empty")
	}
	if d.Protocol != sdk.ProtocolVersion {
		t.Errorf("Describe: protocol %d, want %d", d.Protocol, sdk.ProtocolVersion)
	}
	if err := d.Options.Check(); err != nil {
		t.Errorf("Describe: the option schema is wrong: %v", err)
	}
	for _, o := range d.Options {
		if o.Secret && o.Env == "" {
			t.Errorf("Describe: secret option %q names no environment variable to come from", o.Name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.cfg.Options)) {
		if _, ok := d.Options.Lookup(name); !ok {
			t.Errorf("Config.Options has %q, which is not in the schema (options: %s)",
				name, strings.Join(d.Options.Names(), ", "))
		}
	}
}

// wrongValue returns a value of the wrong type for an option type, or
// false for types where every JSON value might reasonably be accepted.
func wrongValue(t sdk.OptionType) (any, bool) {
	switch t {
	case sdk.TypeInt:
		return "not-a-number", true
	case sdk.TypeBool:
		return "maybe", true
	case sdk.TypeDuration:
		return "forever", true
	case sdk.TypeList, sdk.TypeMap:
		return 5, true
	case sdk.TypeMounts:
		return "nocolon", true
	}
	return nil, false
}

// testValidate checks that option problems come back as diagnostics naming
// the option, which is how the core points the user at the mistake.
func (s *suite) testValidate(t *testing.T) {
	_, c := s.start(t)
	d := s.describe(t, c)

	validate := func(t *testing.T, options []byte) []sdk.Diagnostic {
		t.Helper()
		diags, err := c.Validate(s.ctx(t), options)
		if err != nil {
			t.Fatalf("Validate(%s): %v", options, err)
		}
		return diags
	}

	t.Run("GivenOptions", func(t *testing.T) {
		for _, dg := range validate(t, s.options) {
			if dg.Severity == sdk.SeverityWarning {
				t.Logf("warning on %q: %s", dg.Option, dg.Summary)
				continue
			}
			t.Errorf("Validate refuses Config.Options: %s on %q: %s", dg.Severity, dg.Option, dg.Summary)
		}
	})

	t.Run("UnknownOption", func(t *testing.T) {
		diags := validate(t, s.mustOptionsWith(t, unknownOption, "x"))
		requireDiagnostic(t, "Validate with an unknown option", diags, unknownOption)
	})

	t.Run("WrongType", func(t *testing.T) {
		tested := 0
		for _, o := range d.Options {
			bad, ok := wrongValue(o.Type)
			if !ok {
				continue
			}
			tested++
			t.Run(o.Name, func(t *testing.T) {
				diags := validate(t, s.mustOptionsWith(t, o.Name, bad))
				requireDiagnostic(t, "Validate with "+o.Name+" of the wrong type", diags, o.Name)
			})
		}
		if tested == 0 {
			t.Skip("the schema has no option of a type with a wrong value to try")
		}
	})

	// The core may send no options as nothing, as an empty object, or as
	// the JSON of a nil map.
	for _, none := range []struct {
		name    string
		options []byte
	}{
		{"NoOptions/Empty", nil},
		{"NoOptions/EmptyObject", []byte("{}")},
		{"NoOptions/Null", []byte("null")},
	} {
		t.Run(none.name, func(t *testing.T) {
			diags := validate(t, none.options)
			for _, o := range d.Options {
				// The plugin inherits this process's environment.
				if !o.Required || (o.Env != "" && os.Getenv(o.Env) != "") {
					continue
				}
				requireDiagnostic(t, "Validate without options", diags, o.Name)
			}
		})
	}
}

// destroyOnFailure removes the cluster *ref points at when t failed, so a
// check that stopped half-way leaves nothing behind. Destroy is idempotent,
// so it does not matter how far the check got. It must be called after
// start, so that it runs before the plugin is killed.
func (s *suite) destroyOnFailure(t *testing.T, c *host.Client, d host.Description, ref *host.ClusterRef) {
	if !d.Calls.Destroy {
		return
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		// t.Context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
		defer cancel()
		if err := c.Destroy(ctx, *ref, logEvents(t)); err != nil {
			t.Errorf("cleanup: Destroy %s: %v", ref.ClusterID, err)
		}
	})
}

// testCreateRejectsBadOptions checks that Create refuses bad options before
// it makes anything, with diagnostics the core can show.
func (s *suite) testCreateRejectsBadOptions(t *testing.T) {
	_, c := s.start(t)
	d := s.describe(t, c)
	id := newClusterID()
	ref := host.ClusterRef{ClusterID: id, OptionsJSON: s.options}
	s.destroyOnFailure(t, c, d, &ref)

	cl, err := c.Create(s.ctx(t), s.createCall(id, s.mustOptionsWith(t, unknownOption, "x")), logEvents(t))
	var de *sdk.DiagnosticsError
	switch {
	case err == nil:
		ref = s.ref(d, cl)
		t.Errorf("Create with unknown option %q succeeded", unknownOption)
	case errors.As(err, &de):
		requireDiagnostic(t, "Create with an unknown option", de.Diagnostics, unknownOption)
	default:
		t.Errorf("Create with an unknown option: %v (%T), want a *sdk.DiagnosticsError", err, err)
	}
	s.checkListed(t, c, d, id, false)
}

// checkListed checks whether List shows the cluster id, for backends that
// list their clusters (sdk.Lister); for others there is nothing to check.
func (s *suite) checkListed(t *testing.T, c *host.Client, d host.Description, id string, want bool) *sdk.Cluster {
	t.Helper()
	if !d.Calls.List {
		return nil
	}
	clusters, err := c.List(s.ctx(t), s.options)
	if err != nil {
		t.Errorf("List: %v", err)
		return nil
	}
	for _, cl := range clusters {
		if cl.ID == id {
			if !want {
				t.Errorf("List shows cluster %q, which should not exist", id)
			}
			return cl
		}
	}
	if want {
		t.Errorf("List does not show cluster %q (it shows %d others)", id, len(clusters))
	}
	return nil
}

// checkGone checks that Get says the cluster does not exist, and List does
// not show it.
func (s *suite) checkGone(t *testing.T, c *host.Client, d host.Description, ref host.ClusterRef) {
	t.Helper()
	if cl, err := c.Get(s.ctx(t), ref); !errors.Is(err, sdk.ErrNotFound) {
		if err == nil {
			t.Errorf("Get %q after Destroy found it, with %d nodes; want an error wrapping sdk.ErrNotFound", ref.ClusterID, len(cl.Nodes))
		} else {
			t.Errorf("Get %q after Destroy: %v (%T); want an error wrapping sdk.ErrNotFound", ref.ClusterID, err, err)
		}
	}
	s.checkListed(t, c, d, ref.ClusterID, false)
}

// checkCluster checks a cluster as Create or Get returned it: the core
// relies on the id, a UID, and one node per requested index, each running
// and reachable.
func (s *suite) checkCluster(t *testing.T, call string, cl *sdk.Cluster, id string) {
	t.Helper()
	s.checkClusterIn(t, call, cl, id, sdk.NodeRunning)
}

// checkClusterIn is checkCluster for a cluster whose every node should be
// in state want; only running nodes need an SSH endpoint.
func (s *suite) checkClusterIn(t *testing.T, call string, cl *sdk.Cluster, id string, want sdk.NodeState) {
	t.Helper()
	if cl.ID != id {
		t.Errorf("%s: cluster id %q, want %q", call, cl.ID, id)
	}
	if cl.UID == "" {
		t.Errorf("%s: the cluster UID is empty", call)
	}
	counts := s.counts()
	perRole := map[sdk.Role]int{}
	indices := map[sdk.Role]map[int]bool{}
	names := map[string]bool{}
	for _, n := range cl.Nodes {
		if !slices.Contains(sdk.Roles(), n.Role) {
			t.Errorf("%s: node %q has unknown role %q", call, n.Name, n.Role)
			continue
		}
		perRole[n.Role]++
		if indices[n.Role] == nil {
			indices[n.Role] = map[int]bool{}
		}
		switch {
		case n.Index < 0 || n.Index >= counts.Count(n.Role):
			t.Errorf("%s: node %q is %s %d, want an index in 0..%d", call, n.Name, n.Role, n.Index, counts.Count(n.Role)-1)
		case indices[n.Role][n.Index]:
			t.Errorf("%s: two nodes are %s %d", call, n.Role, n.Index)
		}
		indices[n.Role][n.Index] = true
		switch {
		case n.Name == "":
			t.Errorf("%s: %s %d has no name", call, n.Role, n.Index)
		case names[n.Name]:
			t.Errorf("%s: two nodes are called %q", call, n.Name)
		}
		names[n.Name] = true
		st := stateOf(n)
		if st != want {
			t.Errorf("%s: node %q is %s, want %s", call, n.Name, st, want)
		}
		if st != sdk.NodeRunning {
			continue // a stopped node may have no SSH endpoint
		}
		if n.SSH.Host == "" {
			t.Errorf("%s: node %q has no SSH host", call, n.Name)
		}
		if n.SSH.Port <= 0 {
			t.Errorf("%s: node %q has SSH port %d", call, n.Name, n.SSH.Port)
		}
	}
	for _, role := range sdk.Roles() {
		if got := perRole[role]; got != counts.Count(role) {
			t.Errorf("%s: %d nodes of role %s, want %d", call, got, role, counts.Count(role))
		}
	}
}

// create makes a cluster and checks it; the test stops if that fails.
func (s *suite) create(t *testing.T, c *host.Client, d host.Description, ref *host.ClusterRef) *sdk.Cluster {
	t.Helper()
	s.destroyOnFailure(t, c, d, ref)
	cl, err := c.Create(s.ctx(t), s.createCall(ref.ClusterID, s.options), logEvents(t))
	if err != nil {
		t.Fatalf("Create %q: %v", ref.ClusterID, err)
	}
	*ref = s.ref(d, cl)
	s.checkCluster(t, "Create", cl, ref.ClusterID)
	return cl
}

// testLifecycle creates, finds and destroys a cluster.
func (s *suite) testLifecycle(t *testing.T) {
	_, c := s.start(t)
	d := s.describe(t, c)
	ref := host.ClusterRef{ClusterID: newClusterID(), OptionsJSON: s.options}
	created := s.create(t, c, d, &ref)

	got, err := c.Get(s.ctx(t), ref)
	if err != nil {
		t.Fatalf("Get %q after Create: %v", ref.ClusterID, err)
	}
	s.checkCluster(t, "Get", got, ref.ClusterID)
	if got.UID != created.UID {
		t.Errorf("Get: UID %q, but Create returned %q", got.UID, created.UID)
	}
	if g, w := nodeNames(got), nodeNames(created); !slices.Equal(g, w) {
		t.Errorf("Get: nodes %v, but Create returned %v", g, w)
	}

	if d.Calls.List {
		if listed := s.checkListed(t, c, d, ref.ClusterID, true); listed != nil && listed.UID != created.UID {
			t.Errorf("List: cluster %q has UID %q, but Create returned %q", ref.ClusterID, listed.UID, created.UID)
		}
	}
	sshd := s.runsSSHD(t, d)
	if sshd {
		t.Run("SSH", func(t *testing.T) {
			s.checkSSH(t, "after Create", got.Nodes, hostKeysOf(created))
		})
	}

	if !d.Calls.Destroy {
		err := c.Destroy(s.ctx(t), ref, logEvents(t))
		var re *host.RemoteError
		switch {
		case err == nil:
			t.Error("Destroy succeeded, but the backend does not implement sdk.Destroyer")
		case errors.As(err, &re) && re.Code == codes.Internal:
			t.Errorf("Destroy failed as a bug in the plugin does (a panic?): %v", err)
		}
		return
	}
	if err := c.Destroy(s.ctx(t), ref, logEvents(t)); err != nil {
		t.Fatalf("Destroy %q: %v", ref.ClusterID, err)
	}
	s.checkGone(t, c, d, ref)
	if sshd {
		t.Run("NodesGoneAfterDestroy", func(t *testing.T) {
			s.checkNodesGone(t, got.Nodes)
		})
	}
}

// runsSSHD reports whether the SSH checks apply: the backend says its
// nodes run sshd and Config.SkipSSH does not say why they cannot be
// reached.
func (s *suite) runsSSHD(t *testing.T, d host.Description) bool {
	t.Helper()
	if !d.NodesRunSSHD {
		return false
	}
	if s.cfg.SkipSSH != "" {
		t.Logf("SSH checks skipped: %s", s.cfg.SkipSSH)
		return false
	}
	return true
}

// testCancel cancels a Create half-way, as Ctrl-C does, then destroys the
// cluster as the core does afterwards: the plugin must clean up and the
// Destroy must not race with that cleanup. The plugin runs with
// wire.HoldCreateEnv, so its SDK holds Create's first event until the
// cancellation arrived: the Create is certainly half-way when it is
// cancelled, however fast the backend. (A plugin built with an SDK from
// before the hold is cancelled at its first event, or after cancelAfter.)
func (s *suite) testCancel(t *testing.T) {
	_, c := s.start(t, wire.HoldCreateEnv+"=1")
	d := s.describe(t, c)
	if !d.Calls.Destroy {
		t.Skip("the backend cannot destroy clusters (it does not implement sdk.Destroyer)")
	}
	ref := host.ClusterRef{ClusterID: newClusterID(), OptionsJSON: s.options}
	s.destroyOnFailure(t, c, d, &ref)

	ctx, cancel := context.WithCancel(s.ctx(t))
	defer cancel()
	firstEvent := make(chan struct{})
	var once sync.Once
	type result struct {
		cluster *sdk.Cluster
		err     error
	}
	done := make(chan result, 1)
	go func() {
		onEvent := logEvents(t)
		cl, err := c.Create(ctx, s.createCall(ref.ClusterID, s.options), func(e host.Event) {
			onEvent(e)
			once.Do(func() { close(firstEvent) })
		})
		done <- result{cl, err}
	}()
	select {
	case <-firstEvent:
	case <-time.After(cancelAfter):
		t.Logf("no event within %v; cancelling Create anyway", cancelAfter)
	}
	cancel()
	res := <-done

	switch {
	case res.err == nil:
		ref = s.ref(d, res.cluster)
		t.Error("Create finished before it was cancelled: report progress (sdk.Reporter) before the slow part of Create, and return an error wrapping ctx.Err() once ctx is done")
	case !errors.Is(res.err, context.Canceled):
		t.Errorf("cancelled Create: %v (%T), want an error wrapping context.Canceled", res.err, res.err)
	}

	start := time.Now()
	if err := c.Destroy(s.ctx(t), ref, logEvents(t)); err != nil {
		t.Fatalf("Destroy %q after a cancelled Create: %v", ref.ClusterID, err)
	}
	t.Logf("Destroy after the cancelled Create took %v", time.Since(start).Round(time.Millisecond))
	s.checkGone(t, c, d, ref)
}

// testIdempotentDestroy checks that Destroy succeeds for what is already
// gone: the core destroys after failures without knowing how far they got.
func (s *suite) testIdempotentDestroy(t *testing.T) {
	_, c := s.start(t)
	d := s.describe(t, c)
	if !d.Calls.Destroy {
		t.Skip("the backend cannot destroy clusters (it does not implement sdk.Destroyer)")
	}
	ref := host.ClusterRef{ClusterID: newClusterID(), OptionsJSON: s.options}
	s.create(t, c, d, &ref)
	for i := 1; i <= 2; i++ {
		if err := c.Destroy(s.ctx(t), ref, logEvents(t)); err != nil {
			t.Fatalf("Destroy %q (call %d): %v", ref.ClusterID, i, err)
		}
	}
	s.checkGone(t, c, d, ref)

	never := host.ClusterRef{ClusterID: newClusterID(), OptionsJSON: s.options}
	if err := c.Destroy(s.ctx(t), never, logEvents(t)); err != nil {
		t.Errorf("Destroy of %q, which never existed: %v", never.ClusterID, err)
	}
}
