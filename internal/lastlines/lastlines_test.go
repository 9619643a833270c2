package lastlines

import (
	"strings"
	"sync"
	"testing"
)

func TestWriter(t *testing.T) {
	long := strings.Repeat("x", 3*maxLine)
	for _, tc := range []struct {
		name   string
		w      *Writer
		writes []string
		n      int
		want   []string
	}{
		{"nothing", &Writer{}, nil, 5, nil},
		{"lines split across writes", &Writer{}, []string{"first line\nsec", "ond\n", "third"}, 5,
			[]string{"first line", "second", "third"}},
		{"last n of them", &Writer{}, []string{"a\nb\nc\nd\n"}, 2, []string{"c", "d"}},
		{"blank lines and spaces dropped", &Writer{}, []string{"  a  \n\n \t\n b\n  "}, 5, []string{"a", "b"}},
		{"max complete lines plus the one being written", &Writer{Max: 2}, []string{"1\n2\n3\n4\nhalf"}, 10,
			[]string{"3", "4", "half"}},
		{"zero value keeps 8", &Writer{}, []string{strings.Repeat("l\n", 7) + "9\n10\n"}, 20,
			[]string{"l", "l", "l", "l", "l", "l", "9", "10"}},
		{"line rewritten or dropped", &Writer{Line: func(s string) string {
			if s == "drop" {
				return ""
			}
			return strings.ToUpper(s)
		}}, []string{"keep\ndrop\nlast"}, 5, []string{"KEEP", "LAST"}},
		{"a long line keeps its end", &Writer{}, []string{long + "end\n", long + "tail"}, 5,
			[]string{long[:maxLine-3] + "end", long[:maxLine-4] + "tail"}},
		{"invalid UTF-8 dropped", &Writer{}, []string{"a\xffb\n"}, 5, []string{"ab"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range tc.writes {
				if n, err := tc.w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			got := tc.w.Last(tc.n)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
				t.Errorf("Last(%d) = %q, want %q", tc.n, got, tc.want)
			}
		})
	}
}

// TestWriterConcurrent: stdout and stderr of one program may share a
// Writer; lines written whole stay whole.
func TestWriterConcurrent(t *testing.T) {
	w := &Writer{Max: 1000}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for range 100 {
				_, _ = w.Write([]byte(strings.Repeat(string(rune('a'+g)), 10) + "\n"))
			}
		})
	}
	wg.Wait()
	got := w.Last(1000)
	if len(got) != 400 {
		t.Fatalf("%d lines, want 400", len(got))
	}
	for _, l := range got {
		if len(l) != 10 || strings.Count(l, l[:1]) != 10 {
			t.Fatalf("mixed line %q", l)
		}
	}
}
