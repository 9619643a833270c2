package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/e2e-tool/e2e/internal/ssh"
	"github.com/e2e-tool/e2e/internal/transfer"
)

// Progress reports a transfer: bytes done of total. It is never called
// concurrently for one transfer.
type Progress = transfer.Progress

// walkLocal is transfer.Walk of a local source; its mistakes are the
// caller's.
func walkLocal(ctx context.Context, src string) (*transfer.Plan, error) {
	p, err := transfer.Walk(ctx, transfer.LocalFS{}, src)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &InvalidError{Err: err}
	}
	return p, nil
}

// Upload copies a local file or directory tree to dst on the node, by
// one contract on every transport (as DC/OS E2E's send_file): dst becomes
// a copy of src, so uploading again changes nothing. A directory is merged
// into an existing directory dst (files replaced, nothing deleted), never
// nested in it; a dst ending in "/" means "into this directory, under
// src's base name". Symbolic links are followed; modes (with setuid,
// setgid, sticky) are kept; missing parents are made; "~/" and relative
// paths are in the login user's home; an interrupted transfer leaves no
// partial file at its place. A missing src, a dangling link or a link
// cycle in it is an *InvalidError found before anything is sent; a clash
// on the node (a file onto a directory, a directory onto a file) is an
// error naming both, with nothing changed.
func (n Node) Upload(ctx context.Context, src, dst string, progress Progress) error {
	if n.cluster == nil {
		return errors.New("node was not returned by a cluster.Manager")
	}
	p, err := walkLocal(ctx, src)
	if err != nil {
		return err
	}
	return n.upload(ctx, p, dst, progress)
}

// UploadTo is Upload to several nodes at once: src is walked once, before
// anything is sent, so a mistake in it is one *InvalidError. Otherwise
// the result joins the failed nodes' errors, each naming its node.
// progress, if not nil, gives the Progress of the i-th node.
func (c *Cluster) UploadTo(ctx context.Context, nodes []Node, src, dst string, progress func(i int) Progress) error {
	p, err := walkLocal(ctx, src)
	if err != nil {
		return err
	}
	errs := ssh.FanOut(ctx, len(nodes), 0, func(ctx context.Context, i int) error {
		if nodes[i].cluster == nil {
			return errors.New("node was not returned by a cluster.Manager")
		}
		var prog Progress
		if progress != nil {
			prog = progress(i)
		}
		return nodes[i].upload(ctx, p, dst, prog)
	})
	return errors.Join(errs...)
}

func (n Node) upload(ctx context.Context, p *transfer.Plan, dst string, progress Progress) error {
	t, err := n.transport(ctx)
	if err != nil {
		return err
	}
	return n.transferError(ctx, t.upload(ctx, p, dst, progress))
}

// Download copies a file or directory tree from the node to the local
// dst, by the contract of Upload (links on the node followed, a dangling
// one or a cycle an error naming it). A local dst of the wrong type is an
// *InvalidError. Local files are written through an os.Root: nothing
// lands outside dst (or, for a file, its directory), not even through a
// link there.
func (n Node) Download(ctx context.Context, src, dst string, progress Progress) error {
	if n.cluster == nil {
		return errors.New("node was not returned by a cluster.Manager")
	}
	t, err := n.transport(ctx)
	if err != nil {
		return err
	}
	return n.transferError(ctx, t.download(ctx, src, dst, progress))
}

// transferError names the node in a transfer's error, the same way on
// every transport; the local input's mistakes become an *InvalidError.
func (n Node) transferError(ctx context.Context, err error) error {
	var input *transfer.InputError
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return ctx.Err()
	case errors.As(err, &input):
		return &InvalidError{Err: fmt.Errorf("%s: %w", n.ID(), input.Err)}
	}
	var invalid *InvalidError
	if errors.As(err, &invalid) {
		return err
	}
	return fmt.Errorf("%s: %w", n.ID(), err)
}
