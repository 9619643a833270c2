package testbin

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestRequireChild is run by TestRequire in a child process: its
// prerequisite is missing.
func TestRequireChild(t *testing.T) {
	if os.Getenv("TESTBIN_REQUIRE_CHILD") == "" {
		return
	}
	Require(t, "a unicorn", errors.New("none in stock"))
	t.Log("REACHED AFTER REQUIRE")
}

// TestRequire: a missing prerequisite skips the test on a developer's
// machine and fails it under CI=true; the test never goes on.
func TestRequire(t *testing.T) {
	for _, tc := range []struct {
		ci       string
		wantFail bool
		want     string
	}{
		{ci: "", wantFail: false, want: "SKIP"},
		{ci: "false", wantFail: false, want: "SKIP"},
		{ci: "true", wantFail: true, want: "prerequisite missing under CI: a unicorn: none in stock"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestRequireChild$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTBIN_REQUIRE_CHILD=1", "CI="+tc.ci)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tc.wantFail {
			t.Errorf("CI=%q: failed=%v, want %v\n%s", tc.ci, failed, tc.wantFail, out)
		}
		if !strings.Contains(string(out), tc.want) || strings.Contains(string(out), "REACHED AFTER REQUIRE") {
			t.Errorf("CI=%q: output lacks %q or the test went on:\n%s", tc.ci, tc.want, out)
		}
	}
}
