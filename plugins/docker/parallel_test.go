package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/docker/docker/client"
)

// TestParallelReportsTheRealError: when one node fails, the others'
// requests cut short by the cancellation that follows (as the Docker
// client says them: "error during connect: Post ...: context canceled", or
// words without the context error) are not reported; the real cause is
// said once, without an "is Docker running?" hint.
func TestParallelReportsTheRealError(t *testing.T) {
	cause := errors.New("driver failed programming external connectivity: bind: address already in use")
	for _, tc := range []struct {
		name string
		cut  func(ctx context.Context) error // what a node whose request was cut short returns
	}{
		{"context canceled", func(ctx context.Context) error {
			return fmt.Errorf("starting e2e-x-agent-0: %w", ctx.Err())
		}},
		{"error during connect", func(ctx context.Context) error {
			return engineError(fmt.Errorf("starting e2e-x-agent-0: error during connect: Post \"http://%%2Fvar%%2Frun%%2Fdocker.sock/v1.47/containers/x/start\": %w", ctx.Err()))
		}},
		{"a message without the context error", func(ctx context.Context) error {
			return errors.New("starting e2e-x-agent-0: net/http: request canceled")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := parallel(context.Background(), 3, func(ctx context.Context, i int) error {
				if i == 0 {
					return fmt.Errorf("starting e2e-x-master-0: %w", cause)
				}
				<-ctx.Done()
				return tc.cut(ctx)
			})
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if strings.Count(msg, "address already in use") != 1 || strings.Contains(msg, "agent-0") ||
				strings.Contains(msg, "is Docker running") || strings.Contains(msg, "canceled") {
				t.Errorf("error %q: want the master's cause once, and nothing of the cancelled nodes", msg)
			}
		})
	}
	// Cancelled from outside (Ctrl-C): that is said.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := parallel(ctx, 2, func(ctx context.Context, i int) error { return ctx.Err() })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled from outside: %v, want the cancellation", err)
	}
}

// TestEngineErrorHint: a failure to reach the engine gets the "is Docker
// running?" hint.
func TestEngineErrorHint(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	cli, err := newClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	_, err = cli.Ping(context.Background())
	if !client.IsErrConnectionFailed(err) {
		t.Fatalf("ping of no engine: %v, want a connection failure", err)
	}
	if got := engineError(err).Error(); !strings.Contains(got, "is Docker running?") {
		t.Errorf("unreachable engine: %q lacks the hint", got)
	}
}
