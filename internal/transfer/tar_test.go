package transfer

import (
	"archive/tar"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// entry is one member of a tar stream a test writes.
type entry struct {
	name, link, data string
	typ              byte
}

func tarOf(t *testing.T, entries ...entry) *bytes.Reader {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.data))}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			if _, err := tw.Write([]byte(e.data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b.Bytes())
}

// everything lists every path under dir (links not followed).
func everything(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// TestUnpackRefusesMaliciousStreams: a node that sends links, names out of
// the destination, devices or files it was not asked for writes nothing
// outside the destination (the kubectl cp class of bug).
func TestUnpackRefusesMaliciousStreams(t *testing.T) {
	plan := &Plan{Src: "/node/src", Name: "src", Dir: true, Mode: 0o755, Items: []Item{
		{Rel: "a", Dir: true, Mode: 0o755},
		{Rel: "a/x", Mode: 0o644, Size: 4},
		{Rel: "b", Mode: 0o600, Size: 4},
	}}
	for _, tc := range []struct {
		name    string
		stream  []entry
		swapped bool   // dst/a is replaced by a link out of dst before unpacking
		want    string // a fragment of the error
	}{
		{"a symlink, then a file beneath it", []entry{
			{name: "a", typ: tar.TypeSymlink, link: "OUTSIDE"},
			{name: "a/x", typ: tar.TypeReg, data: "evil"},
		}, false, `refusing the tar entry "a" of type '2'`},
		{"a name climbing out", []entry{{name: "../evil", typ: tar.TypeReg, data: "evil"}}, false, `refusing the tar entry "../evil"`},
		{"a name climbing out from inside", []entry{{name: "a/../../evil", typ: tar.TypeReg, data: "evil"}}, false, `refusing the tar entry "a/../../evil"`},
		{"an absolute name", []entry{{name: "OUTSIDE/evil", typ: tar.TypeReg, data: "evil"}}, false, "refusing the tar entry"},
		{"a hard link", []entry{{name: "b", typ: tar.TypeLink, link: "/etc/passwd"}}, false, `refusing the tar entry "b" of type '1'`},
		{"a device", []entry{{name: "b", typ: tar.TypeChar}}, false, `refusing the tar entry "b" of type '3'`},
		{"a directory entry", []entry{{name: "a/x", typ: tar.TypeDir}}, false, `of type '5'`},
		{"a file twice", []entry{{name: "b", typ: tar.TypeReg, data: "good"}, {name: "b", typ: tar.TypeReg, data: "evil"}}, false, `refusing the tar entry "b"`},
		{"a file missing", []entry{{name: "b", typ: tar.TypeReg, data: "good"}}, false, "lacks a/x"},
		{"a link put in the destination meanwhile", []entry{{name: "./a/x", typ: tar.TypeReg, data: "evil"}}, true, "write "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			if err := os.Mkdir(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			for i := range tc.stream {
				tc.stream[i].name = strings.ReplaceAll(tc.stream[i].name, "OUTSIDE", outside)
				tc.stream[i].link = strings.ReplaceAll(tc.stream[i].link, "OUTSIDE", outside)
			}
			dst := filepath.Join(base, "dst")
			sink, err := NewLocalSink(plan, Target{Path: dst})
			if err != nil {
				t.Fatal(err)
			}
			if tc.swapped {
				if err := os.Remove(filepath.Join(dst, "a")); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(outside, filepath.Join(dst, "a")); err != nil {
					t.Fatal(err)
				}
			}
			err = Unpack(context.Background(), tarOf(t, tc.stream...), sink, plan, nil)
			sink.Close()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Unpack: %v, want an error with %q", err, tc.want)
			}
			if got := everything(t, outside); len(got) != 0 {
				t.Errorf("written outside the destination: %v", got)
			}
			for _, p := range everything(t, base) {
				if p != "outside" && p != "dst" && !strings.HasPrefix(p, "dst/") {
					t.Errorf("written outside the destination: %s", p)
				}
			}
			for _, p := range everything(t, dst) {
				if p != "a" && p != "a/x" && p != "b" {
					t.Errorf("the destination holds %s, which is not in the plan", p)
				}
			}
		})
	}
}

// TestUnpackWritesThePlan: a good stream lands whole, with the plan's
// modes.
func TestUnpackWritesThePlan(t *testing.T) {
	plan := &Plan{Src: "/node/src", Name: "src", Dir: true, Mode: 0o750, Items: []Item{
		{Rel: "a", Dir: true, Mode: 0o555},
		{Rel: "a/x", Mode: fs.ModeSetuid | 0o755, Size: 2},
		{Rel: "b", Mode: 0o600, Size: 2},
	}}
	dst := filepath.Join(t.TempDir(), "dst")
	sink, err := NewLocalSink(plan, Target{Path: dst})
	if err != nil {
		t.Fatal(err)
	}
	var done int64
	tr := NewTracker(4, func(d, _ int64) { done = d })
	if err := Unpack(context.Background(), tarOf(t, entry{name: "./a/x", typ: tar.TypeReg, data: "ax"}, entry{name: "b", typ: tar.TypeReg, data: "bb"}), sink, plan, tr); err != nil {
		t.Fatal(err)
	}
	if err := sink.Finish(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(dst, "a"), 0o755) })
	for p, want := range map[string]fs.FileMode{"": fs.ModeDir | 0o750, "a": fs.ModeDir | 0o555, "a/x": fs.ModeSetuid | 0o755, "b": 0o600} {
		fi, err := os.Stat(filepath.Join(dst, p))
		if err != nil || fi.Mode() != want {
			t.Errorf("%s: %v (%v), want %v", p, fi.Mode(), err, want)
		}
	}
	if done != 4 {
		t.Errorf("progress ended at %d, want 4", done)
	}
}
