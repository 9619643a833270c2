// Package sdktest is the conformance suite of e2e backend plugins. It starts
// a plugin executable the way e2e does and checks, call by call, what the
// e2e core relies on:
//
//	func TestConformance(t *testing.T) {
//		sdktest.Run(t, sdktest.Config{
//			Binary:  "bin/e2e-backend-mine",
//			Options: map[string]any{"region": "test"},
//		})
//	}
//
// The suite makes real clusters through the backend (one node per role
// unless told otherwise) and destroys them again. When the backend's Info
// says NodesRunSSHD, it also logs in to every node with the key it gave
// Create, as the core does: each node must present the host keys the
// backend reported, run a command, serve the sftp subsystem, and stop
// accepting the key once the cluster is destroyed.
package sdktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/sdk"
	"github.com/e2e-tool/e2e/sdk/host"
)

// Config says which plugin to check and how to make clusters with it.
type Config struct {
	// Binary is the path of the plugin executable, e2e-backend-NAME.
	Binary string
	// Options are given to Validate, Create, Get, List and Destroy, as the
	// core would give them (for example {"dir": t.TempDir()}).
	Options map[string]any
	// Masters, Agents and PublicAgents are the node counts of the clusters
	// the suite creates; all zero means one of each.
	Masters, Agents, PublicAgents int
	// Timeout bounds each call to the plugin; zero means 5 minutes.
	Timeout time.Duration
	// SSHTimeout bounds how long the SSH checks wait for a node's sshd
	// after Create and Start, as `e2e create --ssh-timeout` does; zero
	// means 3 minutes.
	SSHTimeout time.Duration
	// SkipSSH, when not empty, says why the nodes' sshd cannot be reached
	// from this test (for example: the backend talks to an API emulator
	// that makes no machines), and the SSH checks are skipped with that
	// reason. Leave it empty for a backend whose Info says NodesRunSSHD.
	SkipSSH string
}

const (
	defaultTimeout = 5 * time.Minute
	// binaryPrefix is how e2e finds backends on disk.
	binaryPrefix = "e2e-backend-"
	// unknownOption is an option name no backend declares.
	unknownOption = "no_such_option_xyz"
)

// suite holds what every check needs; it is read-only once Run made it.
type suite struct {
	cfg Config
	// options is cfg.Options as the JSON the core sends.
	options []byte
	// key is the SSH key every Create gets; its private half never
	// leaves this process.
	key clientKey
}

// Run runs every conformance check as a subtest of t. Each subtest starts
// its own plugin process, so one that wedges or crashes the plugin does not
// spoil the others.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	if cfg.Binary == "" {
		t.Fatal("sdktest: Config.Binary is empty")
	}
	if cfg.Masters < 0 || cfg.Agents < 0 || cfg.PublicAgents < 0 {
		t.Fatalf("sdktest: negative node count in Config (%d masters, %d agents, %d public agents)",
			cfg.Masters, cfg.Agents, cfg.PublicAgents)
	}
	if cfg.Masters == 0 && cfg.Agents == 0 && cfg.PublicAgents == 0 {
		cfg.Masters, cfg.Agents, cfg.PublicAgents = 1, 1, 1
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.SSHTimeout <= 0 {
		cfg.SSHTimeout = defaultSSHTimeout
	}
	s := &suite{cfg: cfg}
	var err error
	if s.options, err = s.optionsWith("", nil); err != nil {
		t.Fatalf("sdktest: Config.Options: %v", err)
	}
	if s.key, err = newClientKey(); err != nil {
		t.Fatalf("sdktest: SSH key: %v", err)
	}

	t.Run("Handshake", s.testHandshake)
	t.Run("Describe", s.testDescribe)
	t.Run("Validate", s.testValidate)
	t.Run("CreateRejectsBadOptions", s.testCreateRejectsBadOptions)
	t.Run("Lifecycle", s.testLifecycle)
	t.Run("Cancel", s.testCancel)
	t.Run("IdempotentDestroy", s.testIdempotentDestroy)
	t.Run("StartStop", s.testStartStop)
}

// optionsWith returns the configured options as JSON, with name set to
// value when name is not empty. The configured map is never changed.
func (s *suite) optionsWith(name string, value any) ([]byte, error) {
	opts := maps.Clone(s.cfg.Options)
	if opts == nil {
		// A nil map would travel as JSON null.
		opts = map[string]any{}
	}
	if name != "" {
		opts[name] = value
	}
	return json.Marshal(opts)
}

// mustOptionsWith is optionsWith for values known to marshal.
func (s *suite) mustOptionsWith(t *testing.T, name string, value any) []byte {
	t.Helper()
	b, err := s.optionsWith(name, value)
	if err != nil {
		t.Fatalf("options with %s=%v: %v", name, value, err)
	}
	return b
}

// ctx returns the context of one call: bounded by Config.Timeout and
// cancelled when the test ends.
func (s *suite) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), s.cfg.Timeout)
	t.Cleanup(cancel)
	return ctx
}

// counts is the request whose Count method says how many nodes of each
// role the suite asks for.
func (s *suite) counts() sdk.CreateRequest {
	return sdk.CreateRequest{Masters: s.cfg.Masters, Agents: s.cfg.Agents, PublicAgents: s.cfg.PublicAgents}
}

// createCall is the Create request of the suite's clusters.
func (s *suite) createCall(id string, options []byte) host.CreateRequest {
	return host.CreateRequest{
		ClusterID: id, Masters: s.cfg.Masters, Agents: s.cfg.Agents, PublicAgents: s.cfg.PublicAgents,
		OptionsJSON: options, SSHPublicKey: s.key.authorized,
	}
}

// ref is how the core finds a created cluster again: the id, the UID and
// the options, plus the record for backends that do not track clusters.
func (s *suite) ref(d host.Description, c *sdk.Cluster) host.ClusterRef {
	ref := host.ClusterRef{ClusterID: c.ID, UID: c.UID, OptionsJSON: s.options}
	if !d.Calls.List {
		ref.Record = c.Record
	}
	return ref
}

// newClusterID returns a fresh cluster id, random so that runs against a
// shared account or engine do not collide.
func newClusterID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return "sdktest-" + hex.EncodeToString(b)
}

// logEvents returns an event callback that shows a call's events in the
// test log.
func logEvents(t *testing.T) func(host.Event) {
	return func(e host.Event) {
		if e.Level != "" {
			t.Logf("event: %s: %s", e.Level, e.Message)
			return
		}
		t.Logf("event: progress %s %d/%d: %s", e.Step, e.Current, e.Total, e.Message)
	}
}

func formatDiagnostics(diags []sdk.Diagnostic) string {
	if len(diags) == 0 {
		return "no diagnostics"
	}
	parts := make([]string, 0, len(diags))
	for _, d := range diags {
		parts = append(parts, fmt.Sprintf("%s on %q: %s", d.Severity, d.Option, d.Summary))
	}
	return strings.Join(parts, "; ")
}

// requireDiagnostic checks that an error diagnostic names option: the core
// shows it next to the option the user has to fix.
func requireDiagnostic(t *testing.T, what string, diags []sdk.Diagnostic, option string) {
	t.Helper()
	for _, d := range diags {
		if d.Option == option && d.Severity != sdk.SeverityWarning {
			return
		}
	}
	t.Errorf("%s: no error diagnostic names option %q (got %s)", what, option, formatDiagnostics(diags))
}

// stateOf is a node's state, with the empty state read as running, as the
// core reads it.
func stateOf(n sdk.Node) sdk.NodeState {
	if n.State == "" {
		return sdk.NodeRunning
	}
	return n.State
}

// nodeNames returns the sorted node names of a cluster.
func nodeNames(c *sdk.Cluster) []string {
	names := make([]string, 0, len(c.Nodes))
	for _, n := range c.Nodes {
		names = append(names, n.Name)
	}
	slices.Sort(names)
	return names
}
