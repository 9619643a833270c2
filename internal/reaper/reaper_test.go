package reaper

import (
	"os/exec"
	"testing"
	"time"
)

// TestAlive: a running process is alive; the same pid with another start
// time (a later process given that pid) is not; a killed process is not,
// even while it is a zombie nobody collected; a pid that runs nothing
// cannot be watched.
func TestAlive(t *testing.T) {
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p, err := Identify(cmd.Process.Pid)
	if err != nil || p.PID != cmd.Process.Pid || p.Start == "" {
		t.Fatalf("Identify(%d) = %+v, %v", cmd.Process.Pid, p, err)
	}
	for _, tc := range []struct {
		name string
		p    Process
		want bool
	}{
		{"running", p, true},
		{"pid reused", Process{PID: p.PID, Start: p.Start + "1"}, false},
	} {
		if got := tc.p.Alive(); got != tc.want {
			t.Errorf("%s: Alive() = %v, want %v", tc.name, got, tc.want)
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Not waited for yet: a zombie, which has ended.
	deadline := time.Now().Add(10 * time.Second)
	for p.Alive() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if p.Alive() {
		t.Errorf("a killed process is alive 10s later")
	}
	if _, err := Identify(p.PID); err == nil {
		t.Errorf("Identify of a zombie succeeded")
	}
	_ = cmd.Wait()
	for _, pid := range []int{0, -1, 999999999} {
		if _, err := Identify(pid); err == nil {
			t.Errorf("Identify(%d) succeeded", pid)
		}
	}
}
