package install

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/sdk"
	"github.com/goccy/go-yaml"
)

// fakeNode is a unit-test stand-in; real nodes are tested end to end.
type fakeNode struct {
	ref, addr string
	role      sdk.Role
	exec      func(shell string) (int, string)
}

func (f fakeNode) ID() string      { return f.ref }
func (f fakeNode) Role() sdk.Role  { return f.role }
func (f fakeNode) Address() string { return f.addr }

// Exec writes the output as SSH does: stdout and stderr are copied at
// once, each with io.Copy (which uses a writer's ReadFrom); here stderr's
// copy is reading, and ends only after stdout's is done.
func (f fakeNode) Exec(_ context.Context, shell string, _ map[string]string, stdout, stderr io.Writer) (int, error) {
	code, out := f.exec(shell)
	reading, stdoutDone := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = io.Copy(stderr, &emptyAfter{reading: reading, done: stdoutDone}) })
	wg.Go(func() {
		<-reading
		_, _ = io.Copy(stdout, strings.NewReader(out))
		close(stdoutDone)
	})
	wg.Wait()
	return code, nil
}

// emptyAfter is a stream with nothing in it that ends once done is closed;
// reading is closed at its first Read.
type emptyAfter struct {
	reading, done chan struct{}
	once          sync.Once
}

func (r *emptyAfter) Read([]byte) (int, error) {
	r.once.Do(func() { close(r.reading) })
	<-r.done
	return 0, io.EOF
}
func (f fakeNode) Upload(context.Context, string, string) error   { return nil }
func (f fakeNode) Download(context.Context, string, string) error { return nil }
func (f fakeNode) DialContext(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("no network in unit tests")
}

func nodes() []Target {
	ok := func(string) (int, string) { return 0, "" }
	return []Target{
		fakeNode{"master_0", "10.0.0.1", sdk.RoleMaster, ok},
		fakeNode{"agent_0", "10.0.0.2", sdk.RoleAgent, ok},
		fakeNode{"agent_1", "10.0.0.3", sdk.RoleAgent, ok},
		fakeNode{"public_agent_0", "10.0.0.4", sdk.RolePublicAgent, ok},
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name, base, extra string
		want              map[string]any
		err               string
	}{
		{"lists and bootstrap", "platform: docker\n", "", map[string]any{
			"platform": "docker", "master_list": []any{"10.0.0.1"}, "agent_list": []any{"10.0.0.2", "10.0.0.3"},
			"public_agent_list": []any{"10.0.0.4"}, "bootstrap_url": "file:///opt/dcos_install_tmp", "cluster_name": "e2e",
		}, ""},
		{"user wins", "platform: docker\ncheck_time: true\n", "check_time: false\ncluster_name: mine\nmaster_list: [1.2.3.4]\n", map[string]any{
			"platform": "docker", "check_time": false, "cluster_name": "mine", "master_list": []any{"1.2.3.4"},
		}, ""},
		{"bad extra", "", "a: [", nil, "--extra-config is not a YAML map"},
		{"extra not a map", "", "- a\n- b\n", nil, "--extra-config is not a YAML map"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Config(tc.base, nodes(), []byte(tc.extra))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]any{}
			if err := yaml.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if gs, ws := toYAML(t, got[k]), toYAML(t, v); gs != ws {
					t.Errorf("%s = %s, want %s", k, gs, ws)
				}
			}
		})
	}
}

func toYAML(t *testing.T, v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestScriptEnv(t *testing.T) {
	ns := nodes()
	env := Script{ClusterID: "c1"}.Env(ns, ns[2])
	want := map[string]string{"E2E_ROLE": "agent", "E2E_NODE": "agent_1", "E2E_NODE_IP": "10.0.0.3",
		"E2E_MASTER_IPS": "10.0.0.1", "E2E_AGENT_IPS": "10.0.0.2 10.0.0.3", "E2E_PUBLIC_AGENT_IPS": "10.0.0.4",
		"E2E_CLUSTER_ID": "c1"}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
}

// TestWaitCommandTimesOutNamingTheNode: the timeout names the node and
// what the last check printed, or says it printed nothing.
func TestWaitCommandTimesOutNamingTheNode(t *testing.T) {
	for _, tc := range []struct {
		name   string
		code   int
		output string
		want   string
	}{
		{"output", 3, "not yet\nstill starting\n", `last result: exited 3; last output line: "still starting"`},
		{"no output", 1, "", "last result: exited 1 with no output"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := nodes()
			ns[1] = fakeNode{"agent_0", "10.0.0.2", sdk.RoleAgent, func(string) (int, string) { return tc.code, tc.output }}
			err := Wait{Timeout: 300 * time.Millisecond, Interval: 50 * time.Millisecond}.Command(context.Background(), ns, "check")
			var te *TimeoutError
			if !errors.As(err, &te) || te.Node != "agent_0" || !strings.HasSuffix(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a timeout on agent_0 ending %q", err, tc.want)
			}
		})
	}
}

func TestDCOSWaitNeedsCheckRunner(t *testing.T) {
	ns := nodes()
	ns[0] = fakeNode{"master_0", "10.0.0.1", sdk.RoleMaster, func(shell string) (int, string) {
		if !strings.Contains(shell, "dcos-check-runner check node-poststart") {
			t.Errorf("unexpected command %q", shell)
		}
		return 1, "no DC/OS check runner in /opt/mesosphere/bin: is DC/OS installed?"
	}}
	err := Wait{Timeout: 200 * time.Millisecond, Interval: 50 * time.Millisecond}.DCOS(context.Background(), ns)
	if err == nil || !strings.Contains(err.Error(), "dcos-check-runner check node-poststart on master_0") || !strings.Contains(err.Error(), "is DC/OS installed?") {
		t.Fatalf("err = %v", err)
	}
}

func TestHTTPCheckBodies(t *testing.T) {
	if err := exhibitorServing([]byte(`[{"hostname":"a","description":"serving"}]`)); err != nil {
		t.Error(err)
	}
	if err := exhibitorServing([]byte(`[{"hostname":"a","description":"down"}]`)); err == nil || !strings.Contains(err.Error(), `"down"`) {
		t.Errorf("down exhibitor: %v", err)
	}
	if err := agentsRegistered(2)([]byte(`{"slaves":[{}]}`)); err == nil || !strings.Contains(err.Error(), "1 of 2 agents") {
		t.Errorf("missing agent: %v", err)
	}
	if err := agentsRegistered(1)([]byte(`{"slaves":[{}]}`)); err != nil {
		t.Error(err)
	}
}

func TestStepErrorNamesNodeAndStep(t *testing.T) {
	e := &StepError{Node: "agent_1", Step: "dcos_install.sh slave", Code: 1, Tail: []string{"a", "b"}, Log: "/s/agent_1.log"}
	want := "agent_1: dcos_install.sh slave exited 1; last output: a | b (full log: /s/agent_1.log)"
	if e.Error() != want {
		t.Errorf("%q\nwant %q", e.Error(), want)
	}
}
