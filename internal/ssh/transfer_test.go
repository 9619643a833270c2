package ssh_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/internal/ssh/sshdtest"
	"github.com/e2e-tool/e2e/internal/transfer"
)

// writeRandomFile writes size random bytes and returns their sha256.
func writeRandomFile(t *testing.T, path string, size int64, mode os.FileMode) [32]byte {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	var seed [32]byte
	rand.Read(seed[:])
	r := io.LimitReader(mrand.NewChaCha8(seed), size)
	if _, err := io.Copy(io.MultiWriter(f, h), r); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// progressLog records Progress calls and checks they only go forward.
type progressLog struct {
	mu        sync.Mutex
	calls     int
	last, tot int64
	backwards bool
}

func (p *progressLog) fn(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if done < p.last {
		p.backwards = true
	}
	p.calls++
	p.last, p.tot = done, total
}

func (p *progressLog) check(t *testing.T, total int64) {
	t.Helper()
	if p.backwards || p.last != total || p.tot != total || p.calls < 2 {
		t.Errorf("progress ended at %d/%d after %d calls (backwards: %v), want %d/%d", p.last, p.tot, p.calls, p.backwards, total, total)
	}
}

func TestTransferLargeFile(t *testing.T) {
	c := dial(t, sshdtest.Start(t, sshdtest.Options{}))
	const size = 64 << 20
	local := t.TempDir()
	remote := t.TempDir() // the "node" is this machine
	src := filepath.Join(local, "big.bin")
	sum := writeRandomFile(t, src, size, 0o640)
	os.Chmod(src, 0o640)

	dst := filepath.Join(remote, "new", "parent", "big.bin")
	var up progressLog
	if err := c.Upload(testContext(t, 60*time.Second), src, dst, up.fn); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	up.check(t, size)
	back := filepath.Join(local, "again", "big.bin")
	var down progressLog
	if err := c.Download(testContext(t, 60*time.Second), dst, back, down.fn); err != nil {
		t.Fatalf("Download: %v", err)
	}
	down.check(t, size)
	for _, p := range []string{dst, back} {
		if fileSum(t, p) != sum {
			t.Errorf("%s differs from what was sent", p)
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: mode %v (%v), want 0640", p, fi.Mode(), err)
		}
	}
	for _, dir := range []string{filepath.Dir(dst), filepath.Dir(back)} {
		if names := dirNames(t, dir); strings.Join(names, ",") != "big.bin" {
			t.Errorf("%s holds %q, want only big.bin", dir, names)
		}
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// makeTree writes a small tree with the things a copy must keep, and
// links inside it and out of it (a copy follows them).
func makeTree(t *testing.T, root string) {
	t.Helper()
	for _, d := range []string{"bin", "etc/deep/deeper", "empty", "readonly"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := []struct {
		path string
		mode os.FileMode
		data string
	}{
		{"bin/hello.sh", 0o755, "#!/bin/sh\necho hello from $0\n"},
		{"bin/setuid", 0o755 | os.ModeSetuid, "s\n"},
		{"etc/secret.key", 0o600, "secret\n"},
		{"etc/deep/deeper/config.yaml", 0o644, "a: 1\n"},
		{"etc/empty-file", 0o644, ""},
		{"readonly/file", 0o444, "ro\n"},
	}
	for _, f := range files {
		p := filepath.Join(root, f.path)
		if err := os.WriteFile(p, []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, f.mode)
	}
	outside := filepath.Join(t.TempDir(), "outside.txt")
	os.WriteFile(outside, []byte("from outside\n"), 0o640)
	for link, target := range map[string]string{"etc/hello-link": "../bin/hello.sh", "etc/deep-link": "deep", "outside": outside} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(root, "empty"), 0o700)
	os.Chmod(filepath.Join(root, "readonly"), 0o555)
	t.Cleanup(func() { os.Chmod(filepath.Join(root, "readonly"), 0o755) })
}

// treeListing describes what is at root, links followed (as a copy
// follows them): every path with its type, mode and content.
func treeListing(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	var walk func(p, rel string)
	walk = func(p, rel string) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %v", rel, fi.Mode())
		if !fi.IsDir() {
			data, _ := os.ReadFile(p)
			fmt.Fprintf(&b, " %q\n", data)
			return
		}
		b.WriteString("\n")
		entries, err := os.ReadDir(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			walk(filepath.Join(p, e.Name()), rel+"/"+e.Name())
		}
	}
	walk(root, ".")
	return b.String()
}

func TestTransferTree(t *testing.T) {
	c := dial(t, sshdtest.Start(t, sshdtest.Options{}))
	src := filepath.Join(t.TempDir(), "tree")
	makeTree(t, src)
	want := treeListing(t, src)

	remote := filepath.Join(t.TempDir(), "opt", "tree") // parent does not exist
	for range 2 {
		// Twice: the second copy changes nothing (no tree/tree).
		var up progressLog
		if err := c.Upload(testContext(t, 20*time.Second), src, remote, up.fn); err != nil {
			t.Fatalf("Upload: %v", err)
		}
		up.check(t, int64(2*len("#!/bin/sh\necho hello from $0\n")+len("s\n")+len("secret\n")+2*len("a: 1\n")+len("ro\n")+len("from outside\n")))
		if got := treeListing(t, remote); got != want {
			t.Errorf("uploaded tree differs:\n got:\n%s\nwant:\n%s", got, want)
		}
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(remote, "readonly"), 0o755) })
	if fi, err := os.Lstat(filepath.Join(remote, "etc/hello-link")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("a link arrived as %v (%v), want a copy of its target", fi.Mode(), err)
	}

	local := filepath.Join(t.TempDir(), "back")
	for range 2 {
		if err := c.Download(testContext(t, 20*time.Second), remote, local, nil); err != nil {
			t.Fatalf("Download: %v", err)
		}
		if got := treeListing(t, local); got != want {
			t.Errorf("downloaded tree differs:\n got:\n%s\nwant:\n%s", got, want)
		}
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(local, "readonly"), 0o755) })
}

// TestTransferContract: where a copy goes, in both directions.
func TestTransferContract(t *testing.T) {
	c := dial(t, sshdtest.Start(t, sshdtest.Options{}))
	ctx := testContext(t, 30*time.Second)
	local, remote := t.TempDir(), t.TempDir()
	file := filepath.Join(local, "payload.txt")
	tree := filepath.Join(local, "tree")
	os.MkdirAll(filepath.Join(tree, "sub"), 0o755)
	os.WriteFile(filepath.Join(tree, "sub", "f"), []byte("new f"), 0o644)

	// Into an existing directory: merged, files replaced, nothing deleted.
	into := filepath.Join(remote, "into")
	os.MkdirAll(filepath.Join(into, "sub"), 0o755)
	os.WriteFile(filepath.Join(into, "sub", "f"), []byte("old f"), 0o644)
	os.WriteFile(filepath.Join(into, "kept"), []byte("kept"), 0o644)
	if err := c.Upload(ctx, tree, into, nil); err != nil {
		t.Fatalf("Upload into an existing directory: %v", err)
	}
	if got, want := treeListing(t, into), ". drwxr-xr-x\n./kept -rw-r--r-- \"kept\"\n./sub drwxr-xr-x\n./sub/f -rw-r--r-- \"new f\"\n"; got != want {
		t.Errorf("merged tree:\n%s\nwant:\n%s", got, want)
	}

	// A file onto a file replaces it, mode included.
	os.WriteFile(file, []byte("payload"), 0o600)
	os.WriteFile(filepath.Join(remote, "replaced"), []byte("old"), 0o644)
	if err := c.Upload(ctx, file, filepath.Join(remote, "replaced"), nil); err != nil {
		t.Fatal(err)
	}
	if got := treeListing(t, filepath.Join(remote, "replaced")); got != `. -rw------- "payload"`+"\n" {
		t.Errorf("replaced file: %s", got)
	}

	// A trailing slash: into that directory, made if missing.
	newDir := filepath.Join(remote, "new") + "/"
	if err := c.Upload(ctx, file, newDir, nil); err != nil {
		t.Fatalf("Upload to %s: %v", newDir, err)
	}
	if names := dirNames(t, newDir); strings.Join(names, ",") != "payload.txt" {
		t.Errorf("Upload to %s made %q", newDir, names)
	}

	// Clashes name both sides and change nothing.
	for _, tc := range []struct{ src, dst, want string }{
		{file, into, "is an existing directory"},
		{tree, filepath.Join(remote, "replaced"), "is an existing file"},
	} {
		err := c.Upload(ctx, tc.src, tc.dst, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.src) || !strings.Contains(err.Error(), tc.dst) {
			t.Errorf("Upload(%s, %s) = %v, want an error naming both: %s", tc.src, tc.dst, err, tc.want)
		}
	}
	if got := treeListing(t, filepath.Join(remote, "replaced")); got != `. -rw------- "payload"`+"\n" {
		t.Errorf("a refused copy changed the file: %s", got)
	}

	// Download: the same rules, and a local clash is the caller's mistake.
	back := filepath.Join(local, "back")
	for range 2 {
		if err := c.Download(ctx, into, back, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := treeListing(t, back), treeListing(t, into); got != want {
		t.Errorf("downloaded twice:\n%s\nwant:\n%s", got, want)
	}
	var input *transfer.InputError
	if err := c.Download(ctx, into, file, nil); !errors.As(err, &input) || !strings.Contains(err.Error(), "is an existing file") {
		t.Errorf("Download of a directory onto a local file: %v, want an InputError", err)
	}
	if err := c.Download(ctx, filepath.Join(remote, "replaced"), local+"/", nil); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(local, "replaced")); err != nil || string(data) != "payload" {
		t.Errorf("download into %s/: %q, %v", local, data, err)
	}
}

// TestTransferLinks: a dangling link or a link cycle fails before
// anything is written, naming the link.
func TestTransferLinks(t *testing.T) {
	c := dial(t, sshdtest.Start(t, sshdtest.Options{}))
	ctx := testContext(t, 20*time.Second)
	for _, tc := range []struct {
		name, link, target, want string
	}{
		{"dangling", "a/dangling", "does/not/exist", "is a dangling symbolic link"},
		{"cycle", "a/b/up", "..", "a directory it is in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "src")
			os.MkdirAll(filepath.Join(src, "a", "b"), 0o755)
			os.WriteFile(filepath.Join(src, "a", "file"), []byte("x"), 0o644)
			os.Symlink(tc.target, filepath.Join(src, tc.link))
			dst := filepath.Join(t.TempDir(), "dst")
			err := c.Upload(ctx, src, dst, nil)
			var input *transfer.InputError
			if !errors.As(err, &input) || !strings.Contains(err.Error(), filepath.Join(src, tc.link)) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Upload: %v, want an InputError naming %s", err, tc.link)
			}
			if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the refused upload made %s", dst)
			}
			// Downloading the same tree (the node is this machine).
			err = c.Download(ctx, src, dst, nil)
			if err == nil || errors.As(err, &input) || !strings.Contains(err.Error(), filepath.Join(src, tc.link)) {
				t.Errorf("Download: %v, want a node-side error naming %s", err, tc.link)
			}
			if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the refused download made %s", dst)
			}
		})
	}
}

func TestTransferCancelLeavesNothing(t *testing.T) {
	c := dial(t, sshdtest.Start(t, sshdtest.Options{}))
	src := filepath.Join(t.TempDir(), "big.bin")
	writeRandomFile(t, src, 32<<20, 0o644)
	remote := t.TempDir()
	ctx, cancel := context.WithCancel(testContext(t, 20*time.Second))
	defer cancel()
	err := c.Upload(ctx, src, filepath.Join(remote, "big.bin"), func(done, total int64) {
		if done > 1<<20 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Upload returned %v, want context.Canceled", err)
	}
	if names := dirNames(t, remote); len(names) != 0 {
		t.Errorf("a cancelled upload left %q", names)
	}
}

func TestTransferErrors(t *testing.T) {
	c := dial(t, sshdtest.Start(t, sshdtest.Options{}))
	ctx := testContext(t, 20*time.Second)
	local := t.TempDir()
	missing := filepath.Join(local, "missing")
	if err := c.Upload(ctx, missing, "/tmp/x", nil); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Upload of a missing file: %v", err)
	}
	remoteMissing := filepath.Join(t.TempDir(), "missing")
	if err := c.Download(ctx, remoteMissing, local, nil); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), remoteMissing) {
		t.Errorf("Download of a missing file: %v", err)
	}
}
