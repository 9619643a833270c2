package sdk

import (
	"context"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/sdk/internal/backendv1"
	"github.com/hashicorp/go-hclog"
)

// TestReporterHold: with a hold (sdktest's cancellation check), the first
// event is sent at once and its call returns only once the call's context
// is done; later events are not held.
func TestReporterHold(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sent := make(chan *backendv1.Event, 4)
	r := &reporter{send: func(e *backendv1.Event) error { sent <- e; return nil }, logger: hclog.NewNullLogger(), hold: ctx}

	returned := make(chan struct{})
	go func() {
		r.Progress("launch nodes", "node-0", 1, 2)
		close(returned)
	}()
	if e := <-sent; e.GetProgress().GetMessage() != "node-0" {
		t.Fatalf("first event %v, want the progress of node-0", e)
	}
	select {
	case <-returned:
		t.Fatal("the first event's call returned before the context was done")
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	<-returned
	r.Infof("launched %d nodes", 2) // not held: returns at once
	if e := <-sent; e.GetLog().GetMessage() != "launched 2 nodes" {
		t.Fatalf("second event %v", e)
	}
}
