package shell

import (
	"os/exec"
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"ls", "-la", "/tmp/a_b.c:d@e%f+g,h"}, "ls -la /tmp/a_b.c:d@e%f+g,h"},
		{[]string{""}, "''"},
		{[]string{"two words"}, "'two words'"},
		{[]string{"it's"}, `'it'\''s'`},
		{[]string{"A=b", "c"}, "'A=b' c"}, // not an assignment
		{[]string{"$HOME", "*", "~"}, `'$HOME' '*' '~'`},
		{nil, ""},
	} {
		if got := Quote(tc.argv...); got != tc.want {
			t.Errorf("Quote(%q) = %s, want %s", tc.argv, got, tc.want)
		}
	}
}

// TestQuoteShells runs quoted arguments through the local shells: each one
// must arrive exactly.
func TestQuoteShells(t *testing.T) {
	args := []string{
		"plain", "two words", "  lead and trail  ", "single'quote", "''", `double"quote`,
		"$HOME", "${PATH}", "`id`", "$(id)", "new\nline", "\n", "", "*", "?", "[a]", "~", "~root",
		`back\slash`, `\`, "tab\t", "a;b", "a|b", "a&b", "a>b", "<", "(x)", "{a,b}", "#c", "!x",
		"-n", "--", "A=b", "ünïcødé", "emoji 🙂", "%s", "\x01\x7f",
	}
	for _, sh := range []string{"/bin/sh", "/bin/bash", "/bin/dash"} {
		if _, err := exec.LookPath(sh); err != nil {
			continue
		}
		t.Run(sh, func(t *testing.T) {
			out, err := exec.Command(sh, "-c", `printf '%s\0' `+Quote(args...)).Output()
			if err != nil {
				t.Fatalf("%s: %v", sh, err)
			}
			got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
			if len(got) != len(args) {
				t.Fatalf("%d arguments arrived, want %d: %q", len(got), len(args), got)
			}
			for i := range args {
				if got[i] != args[i] {
					t.Errorf("argument %d arrived as %q, want %q", i, got[i], args[i])
				}
			}
		})
	}
}
