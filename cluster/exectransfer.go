package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/e2e-tool/e2e/internal/ssh"
	"github.com/e2e-tool/e2e/internal/transfer"
)

// Transfers over the exec transport keep the contract of package transfer
// as SFTP does, with the same Walk and Resolve (on the node through
// execFS) and tar streams for the bytes. They need GNU tar, find,
// coreutils and a POSIX sh on the node (the Docker node image has them).

// unpackScript unpacks the tar stream on stdin (top entry "t") into a
// temporary directory in $2 (made if missing: the target $1's parent, or
// $1 itself for a merge), then moves it into place by rename: a file or a
// new directory at once; into an existing directory ($3 = merge)
// directory by directory and file by file (files replaced, nothing
// deleted), modes last, children first, the target's own after the
// temporary directory is gone. An interrupted transfer leaves no partial
// file at the target; the temporary directory goes on exit, TERM, INT and
// HUP.
const unpackScript = `set -e
t=$1 p=$2 kind=$3
mkdir -p -- "$p"
tmp=$(mktemp -d -- "$p/` + transfer.TmpMarker + `XXXXXXXX")
trap 'rm -rf -- "$tmp"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
tar -x -p -m --no-same-owner -f - -C "$tmp"
if [ "$kind" != merge ]; then
	mv -f -T -- "$tmp/t" "$t"
	exit 0
fi
cd -- "$tmp/t"
top=$(stat -c %a .)
find . -mindepth 1 -depth -type d -printf '%m\0%p\0' >"$tmp/modes"
find . -type d -exec chmod u+rwx -- {} +
find . -mindepth 1 -type d -exec sh -c 'for d do [ -d "$0/$d" ] || mkdir -- "$0/$d" || exit 1; done' "$t" {} +
find . -type f -exec sh -c 'for f do mv -f -T -- "$f" "$0/$f" || exit 1; done' "$t" {} +
T=$t xargs -0 -n 2 -r sh -c 'chmod -- "00$0" "$T/$1"' <"$tmp/modes"
cd /
rm -rf -- "$tmp"
chmod -- "00$top" "$t"
`

// packScript writes a tar stream of the files named on stdin (NUL
// separated, relative to $1), links followed, and each file whole even
// when several names lead to it (no hard link entries).
const packScript = `cd -- "$1" && exec tar -c -f - -h --hard-dereference --no-recursion --null --verbatim-files-from -T -`

// upload copies the local plan p to dst on the node.
func (x execNode) upload(ctx context.Context, p *transfer.Plan, dst string, progress Progress) error {
	f, err := openExecFS(ctx, x)
	if err != nil {
		return err
	}
	t, err := transfer.Resolve(ctx, f, p, ssh.RemotePath(f.home, dst))
	f.Close()
	if err != nil {
		return err
	}
	// The temporary directory goes beside the target, or into the
	// directory merged into (its parent may not be writable).
	kind, tmpIn := "replace", path.Dir(t.Path)
	if p.Dir && t.Exists {
		kind, tmpIn = "merge", t.Path
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	written := make(chan error, 1)
	tr := transfer.NewTracker(p.Total, transfer.Progress(progress))
	go func() {
		err := transfer.WriteTar(ctx, pw, p, "t", tr)
		pw.CloseWithError(err)
		written <- err
	}()
	var stderr limitedBuffer
	st, err := x.run(ctx, ssh.Cmd{Argv: []string{"sh", "-c", unpackScript, "sh", t.Path, tmpIn, kind},
		Stdin: pr, Stderr: &stderr})
	// The node may stop reading early (a failed mkdir): unblock the writer.
	pr.CloseWithError(errors.New("the node stopped reading"))
	werr := <-written
	switch {
	case err != nil:
		return err
	case werr != nil && st.Code != 0:
		return werr
	case st.Code != 0:
		return fmt.Errorf("unpacking into %s exited %d: %s", t.Path, st.Code, oneLine(stderr.String()))
	}
	return nil
}

// download copies src on the node to the local dst.
func (x execNode) download(ctx context.Context, src, dst string, progress Progress) error {
	f, err := openExecFS(ctx, x)
	if err != nil {
		return err
	}
	src = ssh.RemoteSource(f.home, src)
	p, sink, err := transfer.PrepareDownload(ctx, f, src, dst)
	f.Close()
	if err != nil {
		return err
	}
	dir, names := src, &bytes.Buffer{}
	if p.Dir {
		for _, it := range p.Files() {
			names.WriteString("./" + it.Rel + "\x00")
		}
	} else {
		dir = path.Dir(src)
		names.WriteString("./" + p.Name + "\x00")
	}
	if names.Len() == 0 {
		// Only directories (tar refuses an empty archive): the plan made them.
		return sink.Finish()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tr := transfer.NewTracker(p.Total, transfer.Progress(progress))
	pr, pw := io.Pipe()
	unpacked := make(chan error, 1)
	go func() {
		err := transfer.Unpack(ctx, pr, sink, p, tr)
		if err != nil {
			// Stop the node's tar: a refused stream is not read further.
			pr.CloseWithError(err)
			cancel()
		} else {
			// tar pads its stream past the end-of-archive marker.
			_, _ = io.Copy(io.Discard, pr)
		}
		unpacked <- err
	}()
	var stderr limitedBuffer
	st, err := x.run(ctx, ssh.Cmd{Argv: []string{"sh", "-c", packScript, "sh", dir}, Stdin: names, Stdout: pw, Stderr: &stderr})
	pw.Close()
	uerr := <-unpacked
	if err == nil && st.Code != 0 {
		// tar's own words beat the missing member they explain.
		err = fmt.Errorf("packing %s exited %d: %s", src, st.Code, oneLine(stderr.String()))
	} else if uerr != nil {
		err = uerr
	}
	if err != nil {
		sink.Close()
		return err
	}
	return sink.Finish()
}

// oneLine joins the lines of a tool's messages.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(s), "\n", " | ")), " ")
}
