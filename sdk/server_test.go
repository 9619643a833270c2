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

// overTheWire sends a gRPC status error through its wire form, as it
// travels from the plugin to the core, and returns what the client sees.
func overTheWire(t *testing.T, err error) error {
	t.Helper()
	if err == nil {
		return nil
	}
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

func TestErrorMappingRoundTrip(t *testing.T) {
	diags := []Diagnostic{
		{Severity: SeverityError, Option: "memory", Summary: `option "memory": expected an integer`, Detail: "memory in MiB"},
		{Severity: SeverityWarning, Option: "name", Summary: "name is long"},
		{Severity: SeverityError, Summary: "no option at fault"},
	}
	tests := []struct {
		name     string
		err      error
		wantCode codes.Code
		check    func(t *testing.T, got error)
	}{
		{
			name:     "diagnostics",
			err:      &DiagnosticsError{Diagnostics: diags},
			wantCode: codes.InvalidArgument,
			check: func(t *testing.T, got error) {
				var de *DiagnosticsError
				if !errors.As(got, &de) {
					t.Fatalf("got %T %v, want *DiagnosticsError", got, got)
				}
				if !reflect.DeepEqual(de.Diagnostics, diags) {
					t.Errorf("diagnostics = %#v, want %#v", de.Diagnostics, diags)
				}
			},
		},
		{
			name:     "wrapped diagnostics",
			err:      fmt.Errorf("create: %w", &DiagnosticsError{Diagnostics: diags[:1]}),
			wantCode: codes.InvalidArgument,
			check: func(t *testing.T, got error) {
				var de *DiagnosticsError
				if !errors.As(got, &de) {
					t.Fatalf("got %T %v, want *DiagnosticsError", got, got)
				}
				if !reflect.DeepEqual(de.Diagnostics, diags[:1]) {
					t.Errorf("diagnostics = %#v, want %#v", de.Diagnostics, diags[:1])
				}
			},
		},
		{
			name:     "not found wrapped",
			err:      fmt.Errorf("cluster %q: %w", "web", ErrNotFound),
			wantCode: codes.NotFound,
			check: func(t *testing.T, got error) {
				if !errors.Is(got, ErrNotFound) {
					t.Errorf("errors.Is(%v, ErrNotFound) = false", got)
				}
				if !strings.Contains(got.Error(), `cluster "web"`) {
					t.Errorf("message %q lost the backend's text", got)
				}
			},
		},
		{
			name:     "not found bare",
			err:      ErrNotFound,
			wantCode: codes.NotFound,
			check: func(t *testing.T, got error) {
				if !errors.Is(got, ErrNotFound) {
					t.Errorf("errors.Is(%v, ErrNotFound) = false", got)
				}
			},
		},
		{
			name:     "canceled",
			err:      context.Canceled,
			wantCode: codes.Canceled,
			check: func(t *testing.T, got error) {
				if !errors.Is(got, context.Canceled) {
					t.Errorf("errors.Is(%v, context.Canceled) = false", got)
				}
			},
		},
		{
			name:     "canceled wrapped",
			err:      fmt.Errorf("making node 2: %w", context.Canceled),
			wantCode: codes.Canceled,
			check: func(t *testing.T, got error) {
				if !errors.Is(got, context.Canceled) {
					t.Errorf("errors.Is(%v, context.Canceled) = false", got)
				}
			},
		},
		{
			name:     "deadline exceeded",
			err:      context.DeadlineExceeded,
			wantCode: codes.DeadlineExceeded,
			check: func(t *testing.T, got error) {
				if !errors.Is(got, context.DeadlineExceeded) {
					t.Errorf("errors.Is(%v, context.DeadlineExceeded) = false", got)
				}
			},
		},
		{
			name:     "plain error",
			err:      errors.New("docker: no space left on device"),
			wantCode: codes.Unknown,
			check: func(t *testing.T, got error) {
				var re *RemoteError
				if !errors.As(got, &re) {
					t.Fatalf("got %T %v, want *RemoteError", got, got)
				}
				if re.Message != "docker: no space left on device" || got.Error() != re.Message {
					t.Errorf("message = %q (Error() %q), want the backend's message unchanged", re.Message, got.Error())
				}
				if re.Code != codes.Unknown {
					t.Errorf("code = %v, want Unknown", re.Code)
				}
			},
		},
		{
			name:     "gRPC status passes through",
			err:      status.Error(codes.FailedPrecondition, "the docker backend cannot destroy clusters"),
			wantCode: codes.FailedPrecondition,
			check: func(t *testing.T, got error) {
				var re *RemoteError
				if !errors.As(got, &re) {
					t.Fatalf("got %T %v, want *RemoteError", got, got)
				}
				if re.Code != codes.FailedPrecondition || re.Message != "the docker backend cannot destroy clusters" {
					t.Errorf("got %#v", re)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := toStatus(tt.err)
			if code := status.Code(st); code != tt.wantCode {
				t.Errorf("toStatus code = %v, want %v", code, tt.wantCode)
			}
			t.Run("in process", func(t *testing.T) { tt.check(t, fromStatus(st)) })
			t.Run("over the wire", func(t *testing.T) { tt.check(t, fromStatus(overTheWire(t, st))) })
		})
	}
}

func TestErrorMappingEdges(t *testing.T) {
	if err := toStatus(nil); err != nil {
		t.Errorf("toStatus(nil) = %v", err)
	}
	if err := fromStatus(nil); err != nil {
		t.Errorf("fromStatus(nil) = %v", err)
	}
	plain := errors.New("not a status")
	if got := fromStatus(plain); got != plain {
		t.Errorf("fromStatus of a non-status error = %v, want it unchanged", got)
	}
	// The SDK's own InvalidArgument statuses carry no diagnostics; they still
	// come back as a DiagnosticsError with the message.
	got := fromStatus(status.Error(codes.InvalidArgument, "node counts cannot be negative"))
	var de *DiagnosticsError
	if !errors.As(got, &de) {
		t.Fatalf("got %T %v, want *DiagnosticsError", got, got)
	}
	want := []Diagnostic{{Severity: SeverityError, Summary: "node counts cannot be negative"}}
	if !reflect.DeepEqual(de.Diagnostics, want) {
		t.Errorf("diagnostics = %#v, want %#v", de.Diagnostics, want)
	}
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

func TestClusterProtoRoundTrip(t *testing.T) {
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
				PrivateAddress: "10.0.0.3", PublicAddress: "203.0.113.3",
				SSH:      SSHEndpoint{Host: "203.0.113.3", Port: 22, User: "centos"},
				HostKeys: []string{"ssh-ed25519 AAAAC3Nzb agent-1"},
				State:    NodeStopped,
			},
			{
				Role: RolePublicAgent, Index: 2, Name: "e2e-web-public-agent-2", Hostname: "public-agent-2",
				PrivateAddress: "10.0.0.4", PublicAddress: "203.0.113.4",
				SSH:      SSHEndpoint{Host: "203.0.113.4", Port: 2222, User: "core"},
				HostKeys: []string{"ssh-ed25519 AAAAC3Nzc public-agent-2"},
				State:    NodeMissing,
			},
			{Role: RoleAgent, Index: 0, Name: "e2e-web-agent-0", State: NodeRunning},
		},
		Record:    []byte("{\"network\":\"e2e-web\"}\x00\xff"),
		Details:   map[string]string{"network": "e2e-web", "image": "centos:7"},
		CreatedAt: time.Date(2024, 3, 1, 12, 30, 45, 123456789, zone),
	}
	tests := []struct {
		name string
		in   *Cluster
	}{
		{"every field set", full},
		{"only an id", &Cluster{ID: "default"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc := clusterToProto(tt.in)
			b, err := proto.Marshal(pc)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			var wire backendv1.Cluster
			if err := proto.Unmarshal(b, &wire); err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			for how, got := range map[string]*Cluster{
				"in process":    clusterFromProto(pc),
				"over the wire": clusterFromProto(&wire),
			} {
				if !got.CreatedAt.Equal(tt.in.CreatedAt) {
					t.Errorf("%s: CreatedAt = %v, want %v", how, got.CreatedAt, tt.in.CreatedAt)
				}
				if tt.in.CreatedAt.IsZero() != got.CreatedAt.IsZero() {
					t.Errorf("%s: CreatedAt.IsZero() = %v, want %v", how, got.CreatedAt.IsZero(), tt.in.CreatedAt.IsZero())
				}
				// Times are compared with Equal above; the rest exactly.
				c := *got
				c.CreatedAt = tt.in.CreatedAt
				if !reflect.DeepEqual(&c, tt.in) {
					t.Errorf("%s: round trip\n got  %#v\n want %#v", how, &c, tt.in)
				}
			}
		})
	}

	if got := clusterToProto(nil); got != nil {
		t.Errorf("clusterToProto(nil) = %v, want nil", got)
	}
	if got := clusterFromProto(nil); got != nil {
		t.Errorf("clusterFromProto(nil) = %v, want nil", got)
	}
}

// The plugin's message reaches the user once, not prefixed by the sentinel.
func TestRemoteSentinelMessage(t *testing.T) {
	for _, tc := range []struct {
		err    error
		target error
	}{
		{ErrNotFound, ErrNotFound},
		{context.Canceled, context.Canceled},
		{fmt.Errorf("cluster x: %w", ErrNotFound), ErrNotFound},
	} {
		got := fromStatus(toStatus(tc.err))
		if got.Error() != tc.err.Error() || !errors.Is(got, tc.target) {
			t.Errorf("round trip of %q = %q (is target: %v)", tc.err, got, errors.Is(got, tc.target))
		}
	}
}
