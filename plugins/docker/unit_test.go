package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/sdk"
	"github.com/e2e-tool/e2e/sdk/sdktest"
	"golang.org/x/crypto/ssh"
)

func sdkRef(id string) sdk.ClusterRef { return sdk.ClusterRef{ClusterID: id} }

func execRequest(node string, argv []string, env map[string]string, stdin io.Reader, stdout, stderr io.Writer) sdk.ExecRequest {
	return sdk.ExecRequest{Node: node, Argv: argv, Env: env, Stdin: stdin, Stdout: stdout, Stderr: stderr}
}

// parseOptions validates raw options as the SDK does before a call.
func parseOptions(t *testing.T, raw map[string]any) sdk.Options {
	t.Helper()
	b, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	opts, diags := backend{}.Info().Options.Parse(b, func(string) string { return "" })
	if sdk.HasErrors(diags) {
		t.Fatalf("options %v: %v", raw, diags)
	}
	return opts
}

func TestParsePortMap(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []portMapping
		err  string
	}{
		{in: "", want: nil},
		{in: "8080:80", want: []portMapping{{"127.0.0.1", 8080, 80, "tcp"}}},
		{in: "0.0.0.0:8443:443/tcp, 5353:53/udp", want: []portMapping{{"0.0.0.0", 8443, 443, "tcp"}, {"127.0.0.1", 5353, 53, "udp"}}},
		{in: "[::1]:8080:80", want: []portMapping{{"::1", 8080, 80, "tcp"}}},
		{in: "80", err: "not [IP:]HOST:CONTAINER"},
		{in: "8080:80/sctp", err: "neither tcp nor udp"},
		{in: "70000:80", err: "host port"},
		{in: "8080:x", err: "container port"},
		{in: "nowhere:8080:80", err: "not an IP address"},
	} {
		got, err := parsePortMap(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parsePortMap(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parsePortMap(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		opts   map[string]any
		option string // the option the error names; "" for none
	}{
		{"defaults", map[string]any{}, ""},
		{"good", map[string]any{"transport": "exec", "master_mounts": []string{dir + ":/mnt:ro"},
			"one_master_host_port_map": "8080:80", "memory": 512, "workspace_dir": dir, "labels": map[string]string{"a": "b"}, "ttl": "2h"}, ""},
		{"transport", map[string]any{"transport": "telnet"}, "transport"},
		{"missing mount source", map[string]any{"agent_mounts": []string{filepath.Join(dir, "nope") + ":/x"}}, "agent_mounts"},
		{"port map", map[string]any{"one_master_host_port_map": "80"}, "one_master_host_port_map"},
		{"memory", map[string]any{"memory": 8}, "memory"},
		{"reserved label", map[string]any{"public_agent_labels": map[string]string{"e2e.role": "x"}}, "public_agent_labels"},
		{"workspace", map[string]any{"workspace_dir": filepath.Join(dir, "nope")}, "workspace_dir"},
		{"negative ttl", map[string]any{"ttl": "-5m"}, "ttl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			diags := backend{}.Validate(context.Background(), parseOptions(t, tc.opts))
			if tc.option == "" {
				if len(diags) > 0 {
					t.Errorf("diagnostics: %+v", diags)
				}
				return
			}
			if len(diags) != 1 || diags[0].Option != tc.option || diags[0].Severity != sdk.SeverityError {
				t.Errorf("diagnostics %+v, want one error naming %s", diags, tc.option)
			}
		})
	}
}

func TestValidateNetwork(t *testing.T) {
	_ = needEngine(t)
	diags := backend{}.Validate(context.Background(), parseOptions(t, map[string]any{"network": "e2e-no-such-network-xyz"}))
	if len(diags) != 1 || diags[0].Option != "network" || !strings.Contains(diags[0].Summary, "no network") {
		t.Errorf("diagnostics %+v", diags)
	}
	if diags := (backend{}).Validate(context.Background(), parseOptions(t, map[string]any{"network": "bridge"})); len(diags) > 0 {
		t.Errorf("network bridge: %+v", diags)
	}
}

func TestHostKey(t *testing.T) {
	k, err := newHostKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(k.private)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k.public))
	if err != nil {
		t.Fatal(err)
	}
	if pub.Type() != ssh.KeyAlgoED25519 || string(pub.Marshal()) != string(signer.PublicKey().Marshal()) {
		t.Errorf("public key %q does not match the private key", k.public)
	}
}

func TestBaseConfig(t *testing.T) {
	bc, err := backend{}.BaseConfig(context.Background(), sdk.ClusterRef{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"platform: docker", "check_time: false", "bootstrap_url: file:///opt/dcos_install_tmp"} {
		if !strings.Contains(bc.ConfigYAML, want) {
			t.Errorf("base config lacks %q:\n%s", want, bc.ConfigYAML)
		}
	}
	if !strings.HasPrefix(bc.IPDetectScript, "#!") || !strings.Contains(bc.IPDetectScript, "eth0") {
		t.Errorf("ip-detect:\n%s", bc.IPDetectScript)
	}
}

func TestContainerName(t *testing.T) {
	if got := containerName("a.b_C", sdk.RolePublicAgent, 3); got != "e2e-a.b_C-public-agent-3" {
		t.Errorf("containerName = %q", got)
	}
	long := strings.Repeat("x", 40)
	if n := containerName(long, sdk.RolePublicAgent, 99); len(n) > 63 {
		t.Errorf("%q is longer than a hostname may be", n)
	}
}

// TestConformance runs the SDK's conformance suite against the built
// e2e-backend-docker.
func TestConformance(t *testing.T) {
	cli := needEngine(t)
	// sdktest names its clusters sdktest-*: remove those this test made.
	before := map[string]bool{}
	cs, err := listNodes(context.Background(), cli, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		before[c.Labels[labelUID]] = true
	}
	t.Cleanup(func() {
		cs, _ := listNodes(context.Background(), cli, "")
		for _, c := range cs {
			if id := c.Labels[labelClusterID]; strings.HasPrefix(id, "sdktest-") && !before[c.Labels[labelUID]] {
				t.Errorf("sdktest left cluster %s", id)
				removeByIDPrefix(t, id)
			}
		}
	})
	t.Setenv("TMPDIR", t.TempDir())
	sdktest.Run(t, sdktest.Config{Binary: pluginBin, Timeout: 2 * time.Minute})
	if ws, _ := filepath.Glob(filepath.Join(os.Getenv("TMPDIR"), "e2e-sdktest-*")); len(ws) > 0 {
		t.Errorf("workspaces left: %v", ws)
	}
}

// TestImageLock: a second image build waits for the first one's lock, and
// gives up with its context.
func TestImageLock(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	unlock, err := imageLock(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := imageLock(ctx); err != context.DeadlineExceeded {
		t.Fatalf("second lock while held: err = %v, want DeadlineExceeded", err)
	}
	got := make(chan error, 1)
	go func() {
		unlock2, err := imageLock(t.Context())
		if err == nil {
			unlock2()
		}
		got <- err
	}()
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("lock after release: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the lock was not taken after its release")
	}
}

func TestHostPortMap(t *testing.T) {
	for _, tc := range []struct {
		name    string
		agents  int
		master  string
		perNode map[string]string
		want    map[string][]portMapping // by container name suffix
		err     string
	}{
		{name: "node", agents: 2, perNode: map[string]string{"agent_1": "9000:90"},
			want: map[string][]portMapping{"agent-1": {{"127.0.0.1", 9000, 90, "tcp"}}}},
		{name: "role of one node, and master_0's own option", agents: 2, master: "8080:80",
			perNode: map[string]string{"public_agent": "0.0.0.0:8443:443/tcp", "agent-0": "9001:91/udp"},
			want: map[string][]portMapping{"master-0": {{"127.0.0.1", 8080, 80, "tcp"}}, "agent-0": {{"127.0.0.1", 9001, 91, "udp"}},
				"public-agent-0": {{"0.0.0.0", 8443, 443, "tcp"}}}},
		{name: "role of two nodes", agents: 2, perNode: map[string]string{"agent": "9000:90"}, err: "agent has 2 nodes"},
		{name: "node the cluster lacks", agents: 1, perNode: map[string]string{"agent_3": "9000:90"}, err: "no node agent_3"},
		{name: "port published twice", agents: 2, master: "9000:80", perNode: map[string]string{"agent_0": "9000:90"},
			err: "127.0.0.1:9000/tcp is published twice (master_0 and agent_0)"},
		{name: "unknown key", perNode: map[string]string{"worker": "9000:90"}, err: `"worker" is neither a role`},
		{name: "bad map", perNode: map[string]string{"agent_0": "90"}, err: "agent_0: \"90\" is not [IP:]HOST:CONTAINER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var perNode map[string]any
			if tc.perNode != nil {
				perNode = map[string]any{}
				for k, v := range tc.perNode {
					perNode[k] = v
				}
			}
			raw := map[string]any{"host_port_map": perNode}
			if tc.master != "" {
				raw["one_master_host_port_map"] = tc.master
			}
			b, _ := json.Marshal(raw)
			opts, diags := backend{}.Info().Options.Parse(b, func(string) string { return "" })
			if sdk.HasErrors(diags) {
				t.Fatalf("parse: %v", diags)
			}
			p, err := newPlan(sdk.CreateRequest{ClusterID: "x", Masters: 1, Agents: tc.agents, PublicAgents: 1, Options: opts})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("newPlan error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range p.nodes {
				want := tc.want[strings.TrimPrefix(n.name, "e2e-x-")]
				if !slices.Equal(n.ports, want) {
					t.Errorf("%s publishes %v, want %v", n.name, n.ports, want)
				}
			}
		})
	}
}

// TestHostPortsFree: a host port something on this machine already holds
// is refused before anything is made, naming the port, the node and the
// option it was given with; free ports pass.
func TestHostPortsFree(t *testing.T) {
	t.Setenv("DOCKER_HOST", "")
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	busy := strconv.Itoa(held.Addr().(*net.TCPAddr).Port)
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freePort := strconv.Itoa(free.Addr().(*net.TCPAddr).Port)
	free.Close()
	for _, tc := range []struct {
		name, master, perNode string
		want                  []string
	}{
		{name: "host_port_map", perNode: "agent_0=" + busy + ":80",
			want: []string{`option "host_port_map"`, "127.0.0.1:" + busy + "/tcp for agent_0", "address already in use", "publish another host port"}},
		{name: "one_master_host_port_map", master: busy + ":80",
			want: []string{`option "one_master_host_port_map"`, "127.0.0.1:" + busy + "/tcp for master_0", "address already in use"}},
		{name: "free", master: freePort + ":80"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := map[string]any{}
			if tc.master != "" {
				raw["one_master_host_port_map"] = tc.master
			}
			if k, v, ok := strings.Cut(tc.perNode, "="); ok {
				raw["host_port_map"] = map[string]any{k: v}
			}
			b, _ := json.Marshal(raw)
			opts, diags := backend{}.Info().Options.Parse(b, func(string) string { return "" })
			if sdk.HasErrors(diags) {
				t.Fatalf("parse: %v", diags)
			}
			p, err := newPlan(sdk.CreateRequest{ClusterID: "x", Masters: 1, Agents: 1, Options: opts})
			if err != nil {
				t.Fatal(err)
			}
			got := hostPortsFree(p)
			if len(tc.want) == 0 {
				if len(got) != 0 {
					t.Errorf("a free port was refused: %v", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("diagnostics %v, want one", got)
			}
			msg := (&sdk.DiagnosticsError{Diagnostics: got}).Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q lacks %q", msg, w)
				}
			}
		})
	}
}
