package sdk

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/sdk/internal/backendv1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// TestToStatus: what a backend returns becomes the gRPC status the core's
// side (package host) turns back into the same kind of error; the message
// travels as the backend wrote it.
func TestToStatus(t *testing.T) {
	diags := []Diagnostic{
		{Severity: SeverityError, Option: "memory", Summary: `option "memory": expected an integer`, Detail: "memory in MiB"},
		{Severity: SeverityWarning, Option: "name", Summary: "name is long"},
		{Severity: SeverityError, Summary: "no option at fault"},
	}
	tests := []struct {
		name      string
		err       error
		wantCode  codes.Code
		wantMsg   string
		wantDiags []Diagnostic
	}{
		{"diagnostics", &DiagnosticsError{Diagnostics: diags}, codes.InvalidArgument,
			`option "memory": expected an integer; no option at fault`, diags},
		{"wrapped diagnostics", fmt.Errorf("create: %w", &DiagnosticsError{Diagnostics: diags[:1]}), codes.InvalidArgument,
			`option "memory": expected an integer`, diags[:1]},
		{"not found wrapped", fmt.Errorf("cluster %q: %w", "web", ErrNotFound), codes.NotFound, `cluster "web": cluster not found`, nil},
		{"not found bare", ErrNotFound, codes.NotFound, "cluster not found", nil},
		{"canceled", context.Canceled, codes.Canceled, "context canceled", nil},
		{"canceled wrapped", fmt.Errorf("making node 2: %w", context.Canceled), codes.Canceled, "making node 2: context canceled", nil},
		{"deadline exceeded", context.DeadlineExceeded, codes.DeadlineExceeded, "context deadline exceeded", nil},
		{"plain error", errors.New("docker: no space left on device"), codes.Unknown, "docker: no space left on device", nil},
		{"gRPC status passes through", status.Error(codes.FailedPrecondition, "the docker backend cannot do that"),
			codes.FailedPrecondition, "the docker backend cannot do that", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, ok := status.FromError(overTheWire(t, toStatus(tt.err)))
			if !ok {
				t.Fatalf("not a status")
			}
			if st.Code() != tt.wantCode || st.Message() != tt.wantMsg {
				t.Errorf("status %v %q, want %v %q", st.Code(), st.Message(), tt.wantCode, tt.wantMsg)
			}
			var got []Diagnostic
			for _, d := range st.Details() {
				pd, ok := d.(*backendv1.Diagnostic)
				if !ok {
					t.Fatalf("detail %T, want *backendv1.Diagnostic", d)
				}
				sev := SeverityError
				if pd.GetSeverity() == backendv1.Severity_SEVERITY_WARNING {
					sev = SeverityWarning
				}
				got = append(got, Diagnostic{Severity: sev, Option: pd.GetOption(), Summary: pd.GetSummary(), Detail: pd.GetDetail()})
			}
			if !reflect.DeepEqual(got, tt.wantDiags) {
				t.Errorf("diagnostics = %#v, want %#v", got, tt.wantDiags)
			}
		})
	}
	if err := toStatus(nil); err != nil {
		t.Errorf("toStatus(nil) = %v", err)
	}
}

// overTheWire sends a gRPC status error through its wire form, as it
// travels from the plugin to the core.
func overTheWire(t *testing.T, err error) error {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("toStatus returned %T %v, not a gRPC status", err, err)
	}
	b, merr := proto.Marshal(st.Proto())
	if merr != nil {
		t.Fatalf("marshal status: %v", merr)
	}
	back := st.Proto() // a fresh *spb.Status, emptied and refilled from b
	proto.Reset(back)
	if uerr := proto.Unmarshal(b, back); uerr != nil {
		t.Fatalf("unmarshal status: %v", uerr)
	}
	return status.FromProto(back).Err()
}

// Bounds for the lock tests: "quiet" is how long something must not
// happen, "soon" how long something may take to happen.
const (
	quiet = 50 * time.Millisecond
	soon  = 500 * time.Millisecond
)

func mustAcquire(t *testing.T, l *clusterLocks, id string) func() {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), soon)
	defer cancel()
	release, err := l.acquire(ctx, id)
	if err != nil {
		t.Fatalf("acquire(%q) of a free id: %v", id, err)
	}
	return release
}

func TestClusterLocks(t *testing.T) {
	t.Run("same id blocks until release", func(t *testing.T) {
		var l clusterLocks
		release := mustAcquire(t, &l, "web")
		got := make(chan func(), 1)
		go func() {
			r, err := l.acquire(context.Background(), "web")
			if err != nil {
				t.Errorf("second acquire: %v", err)
				close(got)
				return
			}
			got <- r
		}()
		select {
		case <-got:
			t.Fatal("second acquire of a held id returned before release")
		case <-time.After(quiet):
		}
		release()
		select {
		case r, ok := <-got:
			if ok {
				r()
			}
		case <-time.After(soon):
			t.Fatal("second acquire did not return after release")
		}
		mustAcquire(t, &l, "web")()
	})

	t.Run("different id does not block", func(t *testing.T) {
		var l clusterLocks
		release := mustAcquire(t, &l, "web")
		defer release()
		mustAcquire(t, &l, "db")()
	})

	t.Run("wait returns once released", func(t *testing.T) {
		var l clusterLocks
		release := mustAcquire(t, &l, "web")
		done := make(chan error, 1)
		go func() { done <- l.wait(context.Background(), "web") }()
		select {
		case err := <-done:
			t.Fatalf("wait returned %v while the id was held", err)
		case <-time.After(quiet):
		}
		release()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("wait: %v", err)
			}
		case <-time.After(soon):
			t.Fatal("wait did not return after release")
		}
		// wait does not keep the id.
		mustAcquire(t, &l, "web")()
	})

	t.Run("wait on a free id returns at once", func(t *testing.T) {
		var l clusterLocks
		ctx, cancel := context.WithTimeout(context.Background(), soon)
		defer cancel()
		if err := l.wait(ctx, "web"); err != nil {
			t.Fatalf("wait: %v", err)
		}
		mustAcquire(t, &l, "web")()
	})

	cancelTests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		call func(l *clusterLocks, ctx context.Context) error
		want error
	}{
		{
			name: "acquire, cancelled",
			ctx:  cancelSoon,
			call: acquireErr,
			want: context.Canceled,
		},
		{
			name: "acquire, already cancelled",
			ctx:  cancelled,
			call: acquireErr,
			want: context.Canceled,
		},
		{
			name: "acquire, deadline",
			ctx:  func() (context.Context, context.CancelFunc) { return context.WithTimeout(context.Background(), quiet) },
			call: acquireErr,
			want: context.DeadlineExceeded,
		},
		{
			name: "wait, cancelled",
			ctx:  cancelSoon,
			call: func(l *clusterLocks, ctx context.Context) error { return l.wait(ctx, "web") },
			want: context.Canceled,
		},
	}
	for _, tt := range cancelTests {
		t.Run(tt.name, func(t *testing.T) {
			var l clusterLocks
			release := mustAcquire(t, &l, "web")
			ctx, cancel := tt.ctx()
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- tt.call(&l, ctx) }()
			select {
			case err := <-done:
				if !errors.Is(err, tt.want) {
					t.Errorf("got %v, want %v", err, tt.want)
				}
			case <-time.After(soon):
				t.Fatal("did not return after its context ended")
			}
			// The holder still holds the id; a give-up left nothing behind.
			release()
			mustAcquire(t, &l, "web")()
		})
	}

	t.Run("one holder at a time", func(t *testing.T) {
		var (
			l             clusterLocks
			mu            sync.Mutex
			holders, most int
			wg            sync.WaitGroup
		)
		ctx, cancel := context.WithTimeout(context.Background(), soon)
		defer cancel()
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				release, err := l.acquire(ctx, "web")
				if err != nil {
					t.Errorf("acquire: %v", err)
					return
				}
				mu.Lock()
				holders++
				most = max(most, holders)
				mu.Unlock()
				time.Sleep(time.Millisecond)
				mu.Lock()
				holders--
				mu.Unlock()
				release()
			}()
		}
		wg.Wait()
		if most != 1 {
			t.Errorf("%d goroutines held the same id at once", most)
		}
	})
}

func cancelSoon() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	return ctx, cancel
}

func cancelled() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx, cancel
}

func acquireErr(l *clusterLocks, ctx context.Context) error {
	release, err := l.acquire(ctx, "web")
	if release != nil {
		release()
		if err == nil {
			return errors.New("acquired an id that was held")
		}
	}
	return err
}

func TestCheckID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"default", true},
		{"a.b-c_d", true},
		{strings.Repeat("a", 40), true},
		{"A", true},
		{"7", true},
		{"0.1.2", true},
		{"a..b", true},
		{"web..", false},
		{"x.", false},
		{"x-", false},
		{"x_", false},
		{"", false},
		{"-x", false},
		{".x", false},
		{"_x", false},
		{"a/b", false},
		{"..", false},
		{".", false},
		{"../etc", false},
		{strings.Repeat("a", 41), false},
		{"a b", false},
		{"web\n", false},
		{"a\\b", false},
		{"a:b", false},
		{"café", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.id), func(t *testing.T) {
			err := checkID(tt.id)
			if tt.ok {
				if err != nil {
					t.Errorf("checkID(%q) = %v, want nil", tt.id, err)
				}
				return
			}
			var de *DiagnosticsError
			if !errors.As(err, &de) {
				t.Fatalf("checkID(%q) = %v, want a *DiagnosticsError", tt.id, err)
			}
			if len(de.Diagnostics) != 1 || !strings.Contains(de.Diagnostics[0].Summary, fmt.Sprintf("%q", tt.id)) {
				t.Errorf("checkID(%q) diagnostics %#v do not quote the id", tt.id, de.Diagnostics)
			}
			if code := status.Code(toStatus(err)); code != codes.InvalidArgument {
				t.Errorf("checkID(%q) maps to %v, want InvalidArgument", tt.id, code)
			}
		})
	}
}

// TestClusterToProto: every field of a cluster reaches the wire (package
// host's tests read the same message back).
func TestClusterToProto(t *testing.T) {
	zone := time.FixedZone("UTC+2", 2*60*60)
	full := &Cluster{
		ID:  "web",
		UID: "3f2a9c",
		Nodes: []Node{
			{
				Role: RoleMaster, Index: 0, Name: "e2e-web-master-0", Hostname: "master-0",
				PrivateAddress: "10.0.0.2", PublicAddress: "203.0.113.2",
				SSH:      SSHEndpoint{Host: "127.0.0.1", Port: 32768, User: "root"},
				HostKeys: []string{"ssh-ed25519 AAAAC3Nza master-0", "ssh-rsa AAAAB3Nza master-0"},
			},
			{
				Role: RoleAgent, Index: 1, Name: "e2e-web-agent-1", Hostname: "agent-1",
				SSH: SSHEndpoint{Host: "203.0.113.3", Port: 22, User: "centos"}, State: NodeStopped,
			},
			{Role: RolePublicAgent, Index: 2, Name: "e2e-web-public-agent-2", State: NodeMissing},
			{Role: RoleAgent, Index: 0, Name: "e2e-web-agent-0", State: NodeRunning},
		},
		Record:    []byte("{\"network\":\"e2e-web\"}\x00\xff"),
		Details:   map[string]string{"network": "e2e-web", "image": "centos:7"},
		CreatedAt: time.Date(2024, 3, 1, 12, 30, 45, 123456789, zone),
		Transport: TransportExec,
		ExpiresAt: time.Date(2024, 3, 1, 13, 30, 45, 0, zone),
	}
	want := &backendv1.Cluster{
		Id: "web", Uid: "3f2a9c",
		Nodes: []*backendv1.Node{
			{Role: backendv1.Role_ROLE_MASTER, Index: 0, Name: "e2e-web-master-0", Hostname: "master-0",
				PrivateAddress: "10.0.0.2", PublicAddress: "203.0.113.2",
				Ssh:      &backendv1.SSHEndpoint{Host: "127.0.0.1", Port: 32768, User: "root"},
				HostKeys: []string{"ssh-ed25519 AAAAC3Nza master-0", "ssh-rsa AAAAB3Nza master-0"}},
			{Role: backendv1.Role_ROLE_AGENT, Index: 1, Name: "e2e-web-agent-1", Hostname: "agent-1",
				Ssh: &backendv1.SSHEndpoint{Host: "203.0.113.3", Port: 22, User: "centos"}, State: backendv1.NodeState_NODE_STATE_STOPPED},
			{Role: backendv1.Role_ROLE_PUBLIC_AGENT, Index: 2, Name: "e2e-web-public-agent-2", Ssh: &backendv1.SSHEndpoint{},
				State: backendv1.NodeState_NODE_STATE_MISSING},
			{Role: backendv1.Role_ROLE_AGENT, Index: 0, Name: "e2e-web-agent-0", Ssh: &backendv1.SSHEndpoint{},
				State: backendv1.NodeState_NODE_STATE_RUNNING},
		},
		Record:    []byte("{\"network\":\"e2e-web\"}\x00\xff"),
		Details:   map[string]string{"network": "e2e-web", "image": "centos:7"},
		CreatedAt: "2024-03-01T10:30:45.123456789Z",
		Transport: backendv1.Transport_TRANSPORT_EXEC,
		ExpiresAt: "2024-03-01T11:30:45Z",
	}
	if got := clusterToProto(full); !proto.Equal(got, want) {
		t.Errorf("clusterToProto\n got  %v\n want %v", got, want)
	}
	// Empty transport, state and time travel as unspecified and absent.
	if got, want := clusterToProto(&Cluster{ID: "default", Nodes: []Node{{Name: "n"}}}),
		(&backendv1.Cluster{Id: "default", Nodes: []*backendv1.Node{{Name: "n", Ssh: &backendv1.SSHEndpoint{}}}}); !proto.Equal(got, want) {
		t.Errorf("clusterToProto of a bare cluster\n got  %v\n want %v", got, want)
	}
	if got := clusterToProto(nil); got != nil {
		t.Errorf("clusterToProto(nil) = %v, want nil", got)
	}
}
