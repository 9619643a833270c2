package sdk

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// TestWatchParent: a plugin whose e2e died before the plugin looked (it is
// already re-parented, so its parent now is not the pid e2e named) stops
// at the first check; one whose parent is e2e keeps running.
func TestWatchParent(t *testing.T) {
	tests := []struct {
		name     string
		env      string
		wantGone bool
	}{
		{"e2e is the parent", strconv.Itoa(os.Getppid()), false},
		{"e2e died before the plugin looked", strconv.Itoa(os.Getppid() + 100000), true},
		{"an older core names no pid", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("E2E_PARENT_PID", tt.env)
			gone := make(chan struct{})
			go watchParent(parentPID(), 10*time.Millisecond, func() { close(gone) })
			select {
			case <-gone:
				if !tt.wantGone {
					t.Error("gone called while the parent runs")
				}
			case <-time.After(300 * time.Millisecond):
				if tt.wantGone {
					t.Error("gone not called although e2e is no longer the parent")
				}
			}
		})
	}
}
