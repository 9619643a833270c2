package host

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/sdk"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
)

// roundtrip is the test backend's executable, built once by TestMain.
var roundtrip string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "e2e-host-test-")
	if err != nil {
		panic(err)
	}
	roundtrip = filepath.Join(dir, "e2e-backend-roundtrip")
	code := 1
	if out, err := exec.Command("go", "build", "-o", roundtrip, "./testdata/roundtrip").CombinedOutput(); err != nil {
		os.Stderr.WriteString("go build ./testdata/roundtrip: " + err.Error() + "\n" + string(out))
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// start launches the test backend as the core does (handshake, gRPC only,
// AutoMTLS) and returns its Client; the plugin is killed when t ends.
func start(t *testing.T) *Client {
	t.Helper()
	sockDir, err := os.MkdirTemp("", "e2e") // t.TempDir is too long for a socket
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	cfg := ClientConfig(exec.Command(roundtrip), sockDir)
	cfg.Logger = hclog.NewNullLogger()
	pc := plugin.NewClient(cfg)
	t.Cleanup(pc.Kill)
	rpc, err := pc.Client()
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	// The plugin listens in sockDir, not in the system's temporary
	// directory, where a killed plugin's socket would stay.
	if socks, _ := filepath.Glob(filepath.Join(sockDir, "plugin*")); len(socks) != 1 {
		t.Errorf("sockets of the plugin in %s: %v, want one", sockDir, socks)
	}
	raw, err := rpc.Dispense(PluginName)
	if err != nil {
		t.Fatalf("dispense: %v", err)
	}
	c, ok := raw.(*Client)
	if !ok {
		t.Fatalf("dispensed %T, want *Client", raw)
	}
	return c
}

// want is the cluster the test backend returns for id (its full()).
func want(id string) *sdk.Cluster {
	return &sdk.Cluster{
		ID: id, UID: "3f2a9c",
		Nodes: []sdk.Node{
			{Role: sdk.RoleMaster, Index: 0, Name: "m0", Hostname: "master-0", PrivateAddress: "10.0.0.2",
				PublicAddress: "203.0.113.2", SSH: sdk.SSHEndpoint{Host: "127.0.0.1", Port: 32768, User: "root"},
				HostKeys: []string{"ssh-ed25519 AAAAC3Nza m0"}, State: sdk.NodeRunning},
			{Role: sdk.RoleAgent, Index: 0, Name: "a0", State: sdk.NodeStopped},
			{Role: sdk.RolePublicAgent, Index: 0, Name: "p0", State: sdk.NodeMissing},
		},
		Record:    []byte{0, 1, 0xff},
		Details:   map[string]string{"network": "e2e-net"},
		CreatedAt: time.Date(2024, 3, 1, 12, 30, 45, 123456789, time.UTC),
		Transport: sdk.TransportExec,
	}
}

// TestOverThePlugin: what a backend written with package sdk returns
// reaches the core's Client intact, through a real plugin process.
func TestOverThePlugin(t *testing.T) {
	c := start(t)
	ctx := t.Context()

	t.Run("Describe", func(t *testing.T) {
		d, err := c.Describe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d.Name != "roundtrip" || d.Version != "1.2.3" || d.Commit != "abc1234" || d.Protocol != sdk.ProtocolVersion {
			t.Errorf("who: %q %q %q protocol %d", d.Name, d.Version, d.Commit, d.Protocol)
		}
		if want := (Calls{Destroy: true, List: true, Exec: true, Clean: true, StartStop: true}); d.Calls != want {
			t.Errorf("calls = %+v, want %+v", d.Calls, want)
		}
		if !d.NodesRunSSHD || !reflect.DeepEqual(d.InstallMethods, []sdk.InstallMethod{sdk.InstallFromURL}) {
			t.Errorf("facts: NodesRunSSHD %v, install methods %v", d.NodesRunSSHD, d.InstallMethods)
		}
		if len(d.Options) != 3 || d.Options[0].Type != sdk.TypeDuration || d.Options[0].Default != "10m" ||
			!d.Options[2].Secret || d.Options[2].Env != "E2E_ROUNDTRIP_TOKEN" {
			t.Errorf("options = %+v", d.Options)
		}
		if err := d.Options.Check(); err != nil {
			t.Errorf("the described schema does not check: %v", err)
		}
	})

	t.Run("Validate", func(t *testing.T) {
		diags, err := c.Validate(ctx, []byte(`{"memory": 1, "colour": "red"}`))
		if err != nil {
			t.Fatal(err)
		}
		if len(diags) != 1 || diags[0].Option != "colour" {
			t.Errorf("unknown option: %+v", diags)
		}
		diags, err = c.Validate(ctx, []byte(`{"memory": 1}`))
		if err != nil || len(diags) != 1 || diags[0].Summary != `option "memory": at least 64` {
			t.Errorf("the Validator's diagnostics: %+v, %v", diags, err)
		}
	})

	t.Run("Create", func(t *testing.T) {
		var events []Event
		got, err := c.Create(ctx, CreateRequest{ClusterID: "web", Masters: 2, Agents: -1, PublicAgents: 0,
			OptionsJSON: []byte(`{"memory": "1024"}`), SSHPublicKey: "ssh-ed25519 AAAA k", SSHUser: "core", Retain: true},
			func(e Event) { events = append(events, e) })
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want("web")) {
			t.Errorf("Create returned\n %#v\nwant\n %#v", got, want("web"))
		}
		wantEvents := []Event{
			{Step: "launch nodes", Message: "m0", Current: 1, Total: 3},
			{Level: "info", Message: "given: masters=true agents=false user=core key=ssh-ed25519 AAAA k retain=true memory=1024"},
			{Level: "warn", Message: "counts 2 1 0"},
		}
		if !reflect.DeepEqual(events, wantEvents) {
			t.Errorf("events\n %+v\nwant\n %+v", events, wantEvents)
		}
	})

	t.Run("Get", func(t *testing.T) {
		got, err := c.Get(ctx, ClusterRef{ClusterID: "web", UID: "u1", OptionsJSON: []byte(`{"memory": 2048}`), Record: []byte("r")})
		if err != nil {
			t.Fatal(err)
		}
		w := want("web")
		w.UID, w.Record, w.Details["memory"] = "u1", []byte("r"), "2048"
		if !reflect.DeepEqual(got, w) {
			t.Errorf("Get returned\n %#v\nwant\n %#v", got, w)
		}
	})

	t.Run("List", func(t *testing.T) {
		got, err := c.List(ctx, nil)
		if err != nil || len(got) != 2 || !reflect.DeepEqual(got[1], want("b")) {
			t.Errorf("List: %v, %v", got, err)
		}
	})

	t.Run("streams", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			call func(func(Event)) error
			want string
		}{
			{"Destroy", func(f func(Event)) error { return c.Destroy(ctx, ClusterRef{ClusterID: "web"}, f) }, "destroyed web"},
			{"Start", func(f func(Event)) error { return c.Start(ctx, ClusterRef{ClusterID: "web"}, f) }, "started web"},
			{"Stop", func(f func(Event)) error { return c.Stop(ctx, ClusterRef{ClusterID: "web"}, f) }, "stopped web"},
			{"Clean", func(f func(Event)) error {
				return c.Clean(ctx, []ClusterRef{{ClusterID: "a"}, {ClusterID: "b"}}, true, f)
			}, "keep 2, dry run true"},
		} {
			var got []Event
			if err := tt.call(func(e Event) { got = append(got, e) }); err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			if len(got) != 1 || got[0] != (Event{Level: "info", Message: tt.want}) {
				t.Errorf("%s: events %+v, want one info event %q", tt.name, got, tt.want)
			}
		}
	})

	t.Run("BaseConfig", func(t *testing.T) {
		got, err := c.BaseConfig(ctx, ClusterRef{ClusterID: "web"})
		if err != nil || got.ConfigYAML != "platform: roundtrip\n" || got.IPDetectScript != "#!/bin/sh\necho 10.0.0.2\n" {
			t.Errorf("BaseConfig: %+v, %v", got, err)
		}
	})

	t.Run("Exec", func(t *testing.T) {
		var stdout, stderr strings.Builder
		code, err := c.Exec(ctx, ClusterRef{ClusterID: "web"}, sdk.ExecRequest{Node: "m0", Argv: []string{"7"},
			Env: map[string]string{"K": "v"}, User: "root", Stdin: strings.NewReader("in\nput"), Stdout: &stdout, Stderr: &stderr})
		if err != nil || code != 7 {
			t.Fatalf("Exec: code %d, %v", code, err)
		}
		if stdout.String() != "in\nput" || stderr.String() != "m0 as root tty=false env=v" {
			t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
		}
	})

	// Each kind of error a backend returns comes back as the same kind, with
	// the backend's message.
	t.Run("errors", func(t *testing.T) {
		for _, tt := range []struct {
			id    string
			check func(error) bool
			msg   string
		}{
			{"notfound", func(err error) bool { return errors.Is(err, sdk.ErrNotFound) }, `cluster "notfound": cluster not found`},
			{"canceled", func(err error) bool { return errors.Is(err, context.Canceled) }, "making node 2: context canceled"},
			{"diags", func(err error) bool {
				var de *sdk.DiagnosticsError
				return errors.As(err, &de) && reflect.DeepEqual(de.Diagnostics, []sdk.Diagnostic{
					sdk.Errorf("memory", `option "memory": too much`),
					{Severity: sdk.SeverityWarning, Option: "timeout", Summary: "long", Detail: "in minutes"}})
			}, `option "memory": too much`},
			{"plain", func(err error) bool {
				var re *RemoteError
				return errors.As(err, &re) && re.Code == codes.Unknown
			}, "docker: no space left on device"},
			{"panic", func(err error) bool {
				var re *RemoteError
				return errors.As(err, &re) && re.Code == codes.Internal
			}, "the roundtrip backend failed (a bug in the plugin): boom"},
		} {
			_, err := c.Get(ctx, ClusterRef{ClusterID: tt.id})
			if err == nil || !tt.check(err) || err.Error() != tt.msg {
				t.Errorf("Get %s: %v (%T), want %q", tt.id, err, err, tt.msg)
			}
			if err := c.Destroy(ctx, ClusterRef{ClusterID: tt.id}, nil); err == nil || !tt.check(err) || err.Error() != tt.msg {
				t.Errorf("Destroy %s: %v (%T), want %q", tt.id, err, err, tt.msg)
			}
		}
	})
}
