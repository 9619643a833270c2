package plugin

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestUnpackInterrupted: an archive whose reading is stopped by Ctrl-C
// (the context's error, from readerCtx) is said to be interrupted, never
// refused as a bad archive, wherever the read stops: in the gzip header,
// in a tar header, or in the executable.
func TestUnpackInterrupted(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	body := bytes.Repeat([]byte("x"), 64<<10)
	if err := tw.WriteHeader(&tar.Header{Name: "README", Mode: 0o644, Size: 5, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write([]byte("hello"))
	if err := tw.WriteHeader(&tar.Header{Name: Prefix + "qemu", Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write(body)
	_ = tw.Close()
	_ = zw.Close()
	archive := buf.Bytes()
	if name, _, err := unpackPlugin(bytes.NewReader(archive), io.Discard, "qemu.tar.gz"); err != nil || name != "qemu" {
		t.Fatalf("the whole archive: %q, %v", name, err)
	}
	for _, tc := range []struct {
		name  string
		after int
	}{
		{"in the gzip header", 0},
		{"early", 20},
		{"late", len(archive) - 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			r := readerCtx{ctx, &cancelAfter{r: bytes.NewReader(archive), left: tc.after, cancel: cancel}}
			_, _, err := unpackPlugin(r, io.Discard, "qemu.tar.gz")
			if !errors.Is(err, context.Canceled) || errors.Is(err, ErrBadArchive) || strings.Contains(err.Error(), "not a") {
				t.Errorf("interrupted after %d bytes: %v; want the interruption, not a refused archive", tc.after, err)
			}
		})
	}
}

// cancelAfter reads at most left bytes from r in small pieces, then
// cancels (a Ctrl-C part-way through).
type cancelAfter struct {
	r      io.Reader
	left   int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.left <= 0 {
		c.cancel()
		return 0, context.Canceled
	}
	p = p[:min(len(p), c.left, 16)]
	n, err := c.r.Read(p)
	c.left -= n
	return n, err
}
