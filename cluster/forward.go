package cluster

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
)

// Forward carries every connection accepted on ln to addr ("host:port") as
// the node sees it, through the node's SSH connection (a direct-tcpip
// channel, as `ssh -L` does, so it works where the node's addresses are
// not routable from here and through an SSH proxy command), until ctx
// ends; then it closes ln and the open connections and returns nil. A
// connection that cannot be carried (nothing listens at addr on the node)
// is closed and reported to failed, which may be nil; the others go on.
// An error of ln itself is returned.
func (n Node) Forward(ctx context.Context, ln net.Listener, addr string, failed func(error)) error {
	if n.cluster == nil {
		return errors.New("node was not returned by a cluster.Manager")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	for {
		local, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer local.Close()
			remote, err := n.DialContext(ctx, "tcp", addr)
			if err != nil {
				if failed != nil && ctx.Err() == nil {
					failed(nodeError(n, err))
				}
				return
			}
			defer remote.Close()
			closeBoth := context.AfterFunc(ctx, func() { local.Close(); remote.Close() })
			defer closeBoth()
			pipe(local, remote)
		}()
	}
}

// pipe copies both ways until both directions end, passing a half-close
// on where the connection can carry it.
func pipe(a, b net.Conn) {
	var wg sync.WaitGroup
	copyHalf := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			_ = dst.Close()
		}
	}
	wg.Add(2)
	go copyHalf(a, b)
	go copyHalf(b, a)
	wg.Wait()
}
