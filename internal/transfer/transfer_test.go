package transfer

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestTmpName: a temporary name is hidden, carries TmpMarker, and stays
// within NAME_MAX however long the file's own name is, cut at a UTF-8
// boundary.
func TestTmpName(t *testing.T) {
	tests := []struct{ name, dir, base string }{
		{"short", "/opt/", "a.txt"},
		{"no dir", "", "a.txt"},
		{"at NAME_MAX", "/tmp/", strings.Repeat("a", 255)},
		{"multi-byte at the cut", "/tmp/", strings.Repeat("é", 127)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := TmpName(tt.dir, tt.base)
			if !strings.HasPrefix(got, tt.dir+".") || !strings.Contains(got, TmpMarker) {
				t.Errorf("TmpName = %q, want a hidden name in %q with %q", got, tt.dir, TmpMarker)
			}
			elem := strings.TrimPrefix(got, tt.dir)
			if len(elem) > 255 || !utf8.ValidString(elem) {
				t.Errorf("TmpName element is %d bytes (valid UTF-8: %v), want at most 255", len(elem), utf8.ValidString(elem))
			}
			if len(tt.base) < 200 && !strings.HasPrefix(elem, "."+tt.base+TmpMarker) {
				t.Errorf("a short name was shortened: %q", elem)
			}
		})
	}
}
