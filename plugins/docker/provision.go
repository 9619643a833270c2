package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/client"
	"github.com/e2e-tool/e2e/sdk"
	"golang.org/x/sync/errgroup"
)

// apiTimeout bounds one Docker call that makes a resource; such calls are
// not cancelled half-way, so that what exists is always known.
const apiTimeout = 60 * time.Second

// Create makes the cluster's network and all node containers in parallel,
// starts them and waits until systemd has booted each; the core then checks
// that sshd takes the cluster key. On failure or cancellation everything
// made is removed, unless req.Retain.
func (b backend) Create(ctx context.Context, req sdk.CreateRequest, r sdk.Reporter) (*sdk.Cluster, error) {
	p, err := newPlan(req)
	if err != nil {
		return nil, err
	}
	if diags := hostPortsFree(p); len(diags) > 0 {
		return nil, &sdk.DiagnosticsError{Diagnostics: diags}
	}
	cli, err := newClient()
	if err != nil {
		return nil, err
	}
	defer cli.Close()

	c, err := b.create(ctx, cli, p, r)
	if err == nil {
		return c, nil
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("creating cluster %q was interrupted: %w", p.id, ctx.Err())
	}
	if req.Retain {
		sdk.Logger(ctx).Info("create failed; keeping what was made (retain)", "cluster", p.id, "uid", p.uid)
		return nil, err
	}
	cctx, cancel := sdk.CleanupContext(ctx)
	defer cancel()
	if cerr := removeCluster(cctx, cli, p.id, p.uid, []string{p.workspace}, nil); cerr != nil {
		return nil, fmt.Errorf("%w; cleaning up also failed: %v", err, cerr)
	}
	return nil, err
}

func (b backend) create(ctx context.Context, cli *client.Client, p *plan, r sdk.Reporter) (*sdk.Cluster, error) {
	log, t0 := sdk.Logger(ctx), time.Now()
	image, err := ensureImage(ctx, cli, p.opts.String(optImage), func(msg string) {
		r.Progress("node image", msg, 0, 0)
	})
	if err != nil {
		return nil, engineError(err)
	}
	p.image = image
	log.Debug("node image ready", "image", image, "elapsed", time.Since(t0).Round(time.Millisecond).String())

	// The network, the privileges and the workspace do not depend on each
	// other. A probe container is removed while the nodes are made;
	// Create returns only when it is gone.
	var (
		wg              sync.WaitGroup
		removeProbe     sync.WaitGroup
		netErr, privErr error
		workspaceErr    error
		pv              *privileges
	)
	defer removeProbe.Wait()
	wg.Go(func() {
		if name := p.opts.String(optNetwork); name != "" {
			p.network, p.networkID, netErr = userNetwork(ctx, cli, name)
			return
		}
		p.network = networkName(p.id)
		dctx, cancel := detached(ctx)
		defer cancel()
		p.networkID, netErr = createNetwork(dctx, cli, p.network, p.commonLabels())
	})
	wg.Go(func() {
		var remove func()
		pv, remove, privErr = decidePrivileges(ctx, cli, p)
		removeProbe.Go(remove)
	})
	wg.Go(func() { workspaceErr = makeWorkspace(p) })
	wg.Wait()
	if err := errors.Join(netErr, privErr, workspaceErr); err != nil {
		return nil, err
	}
	log.Debug("network, privileges and workspace ready", "privileged", pv.get(), "elapsed", time.Since(t0).Round(time.Millisecond).String())
	pv.warnOnce(r)

	total := int64(len(p.nodes))
	var started, booted atomic.Int64
	err = parallel(ctx, len(p.nodes), func(ctx context.Context, i int) error {
		n := p.nodes[i]
		id, err := startNode(ctx, cli, p, n, pv, r)
		if err != nil {
			return err
		}
		log.Debug("node started", "node", n.name, "elapsed", time.Since(t0).Round(time.Millisecond).String())
		r.Progress("start nodes", n.name, started.Add(1), total)
		if err := waitBooted(ctx, cli, id, n.name, r); err != nil {
			return err
		}
		log.Debug("node booted", "node", n.name, "elapsed", time.Since(t0).Round(time.Millisecond).String())
		r.Progress("boot nodes", n.name, booted.Add(1), total)
		return nil
	})
	if err != nil {
		return nil, err
	}
	c, err := getCluster(ctx, cli, sdk.ClusterRef{ClusterID: p.id, UID: p.uid})
	if err != nil {
		return nil, fmt.Errorf("reading back cluster %q: %w", p.id, err)
	}
	for _, n := range c.Nodes {
		if n.SSH.Port == 0 || n.PrivateAddress == "" {
			return nil, fmt.Errorf("node %s has no published SSH port or no address on network %s", n.Name, p.network)
		}
	}
	r.Infof("%d %s ready on network %s (image %s)", len(c.Nodes), plural(len(c.Nodes), "node"), p.network, p.image)
	return c, nil
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// detached returns a context for a call that makes a resource: not
// cancelled with ctx, so the call either made the resource or did not,
// but bounded.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), apiTimeout)
}

// parallel runs f for 0..n-1 at once. The first failure cancels the
// others (errgroup.WithContext). What is returned is the real failures,
// each once: an error returned after the group was cancelled is a
// consequence of a sibling's failure (a request cut short, "error during
// connect", "context canceled") and is dropped. Only when every error is
// such a consequence (ctx itself was cancelled) is the first returned.
func parallel(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	errs := make([]error, n)
	consequence := make([]bool, n)
	for i := range n {
		g.Go(func() error {
			errs[i] = f(gctx, i)
			consequence[i] = errs[i] != nil && (gctx.Err() != nil || errors.Is(errs[i], context.Canceled))
			return errs[i]
		})
	}
	_ = g.Wait() // every error is in errs
	var real []error
	for i, err := range errs {
		if err != nil && !consequence[i] {
			real = append(real, err)
		}
	}
	if len(real) > 0 {
		return joinErrs(real)
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// joinErrs joins errors into one line.
func joinErrs(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	// The same error met by every node is said once.
	seen := map[string]bool{errs[0].Error(): true}
	var more []string
	for _, e := range errs[1:] {
		if msg := e.Error(); !seen[msg] {
			seen[msg] = true
			more = append(more, msg)
		}
	}
	if len(more) == 0 {
		return errs[0]
	}
	return fmt.Errorf("%w (and %d more: %s)", errs[0], len(more), strings.Join(more, "; "))
}
