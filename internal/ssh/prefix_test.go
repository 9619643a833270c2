package ssh

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestPrefixWriter: what reaches the output for what the command wrote,
// in the pieces it wrote it.
func TestPrefixWriter(t *testing.T) {
	long := strings.Repeat("x", MaxLine)
	// "é" is two bytes: placed so that MaxLine falls between them.
	split := strings.Repeat("y", MaxLine-1) + "é" + "z"
	cont := LineContinues + "\n"
	for _, tc := range []struct {
		name   string
		writes []string
		before string // output before Close
		after  string // output after Close
	}{
		{"lines in odd pieces", []string{"par", "tial\nsecond", " line\n", "\n", "a\nb\nc", "d"},
			"p: partial\np: second line\np: \np: a\np: b\n", "p: partial\np: second line\np: \np: a\np: b\np: cd\n"},
		{"nothing", nil, "", ""},
		{"a complete line adds nothing at Close", []string{"x\n"}, "p: x\n", "p: x\n"},
		{"a last line without newline is flushed at Close", []string{"no newline"}, "", "p: no newline\n"},
		{"200000 bytes arrive as one line", []string{strings.Repeat("x", 200000) + "\n"},
			"p: " + strings.Repeat("x", 200000) + "\n", "p: " + strings.Repeat("x", 200000) + "\n"},
		{"200000 bytes in 64 KiB writes arrive as one line", chunks(strings.Repeat("x", 200000)+"\n", 64<<10),
			"p: " + strings.Repeat("x", 200000) + "\n", "p: " + strings.Repeat("x", 200000) + "\n"},
		{"a line of exactly MaxLine is whole", chunks(long+"\n", 32<<10), "p: " + long + "\n", "p: " + long + "\n"},
		{"a longer line is cut with a marker, nothing lost", chunks(long+"abc\nnext\n", 32<<10),
			"p: " + long + cont + "p: abc\np: next\n", "p: " + long + cont + "p: abc\np: next\n"},
		{"a line of 2.5 MaxLine in one write", []string{long + long + "tail\n"},
			"p: " + long + cont + "p: " + long + cont + "p: tail\n", "p: " + long + cont + "p: " + long + cont + "p: tail\n"},
		{"a cut line without newline ends at Close", []string{long + "rest"},
			"p: " + long + cont, "p: " + long + cont + "p: rest\n"},
		{"never inside a UTF-8 character", []string{split + "\n"},
			"p: " + strings.Repeat("y", MaxLine-1) + cont + "p: éz\n", "p: " + strings.Repeat("y", MaxLine-1) + cont + "p: éz\n"},
		{"bytes that are not UTF-8 pass untouched", []string{"\xff\xfe\x00 ok\r\n", "\xc3"},
			"p: \xff\xfe\x00 ok\r\n", "p: \xff\xfe\x00 ok\r\np: \xc3\n"},
		{"carriage returns are not line ends", []string{"10%\r20%\r100%\n"}, "p: 10%\r20%\r100%\n", "p: 10%\r20%\r100%\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			w := NewPrefixWriter(&out, "p: ", nil)
			for _, s := range tc.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write(%d bytes) = %d, %v", len(s), n, err)
				}
			}
			if got := out.String(); got != tc.before {
				t.Errorf("before Close:\n got %s\nwant %s", shorten(got), shorten(tc.before))
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got := out.String(); got != tc.after {
				t.Errorf("after Close:\n got %s\nwant %s", shorten(got), shorten(tc.after))
			}
			if _, err := w.Write([]byte("late\n")); err == nil {
				t.Error("Write after Close succeeded")
			}
		})
	}
}

func chunks(s string, size int) []string {
	var out []string
	for len(s) > size {
		out = append(out, s[:size])
		s = s[size:]
	}
	return append(out, s)
}

// shorten keeps failure messages readable when lines are megabytes long.
func shorten(s string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if len(line) > 80 {
			line = fmt.Sprintf("%q…(%d bytes)…%q", line[:40], len(line), line[len(line)-30:])
		}
		b.WriteString(line)
	}
	return b.String()
}
