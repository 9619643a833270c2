package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/internal/syserr"
	"golang.org/x/sync/errgroup"
)

// PortForwardCmd forwards local ports to a node's ports.
type PortForwardCmd struct {
	ClusterID string   `name:"cluster-id" short:"c" default:"${default_id}" help:"Cluster id."`
	Node      string   `help:"Node whose ports to reach: master_0 (default), agent_1, or a name or address as e2e inspect shows." placeholder:"NODE"`
	Ports     []string `arg:"" name:"port" placeholder:"[LOCAL:]REMOTE" help:"[LOCAL:]REMOTE: local port LOCAL on 127.0.0.1 to port REMOTE on the node (REMOTE alone: the same port; :REMOTE or 0:REMOTE: any free local port)."`
}

// forward is one LOCAL:REMOTE pair.
type forward struct {
	local, remote int
}

// parseForward reads [LOCAL:]REMOTE. Each port is a number written the
// plain way (80, not +80 or 080); a bind address (ADDR:LOCAL:REMOTE) is
// refused, as e2e listens on 127.0.0.1 only.
func parseForward(s string) (forward, error) {
	if strings.Count(s, ":") > 1 {
		return forward{}, invalid(fmt.Errorf("port %q: a bind address is not supported (e2e listens on 127.0.0.1 only): give [LOCAL:]REMOTE, such as 8080:80", s))
	}
	localPart, remotePart, twoParts := strings.Cut(s, ":")
	if !twoParts {
		localPart, remotePart = s, s
	}
	remote, ok := portNumber(remotePart)
	if !ok || remote < 1 {
		return forward{}, invalid(fmt.Errorf("port %q: the remote port %q is not a number from 1 to 65535: give [LOCAL:]REMOTE, such as 8080:80", s, remotePart))
	}
	local := 0
	if localPart != "" {
		if local, ok = portNumber(localPart); !ok {
			return forward{}, invalid(fmt.Errorf("port %q: the local port %q is not a number from 0 to 65535: give [LOCAL:]REMOTE, such as 8080:80", s, localPart))
		}
	}
	return forward{local: local, remote: remote}, nil
}

// portNumber reads a port number from 0 to 65535 written in decimal
// without sign or leading zeros; ok is false for anything else.
func portNumber(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 || strconv.Itoa(n) != s {
		return 0, false
	}
	return n, true
}

func (c *PortForwardCmd) Run(e *env) error {
	var fwds []forward
	given := map[int]string{}
	for _, p := range c.Ports {
		f, err := parseForward(p)
		if err != nil {
			return err
		}
		if first, twice := given[f.local]; twice && f.local != 0 {
			return invalid(fmt.Errorf("local port %d is given twice (%s and %s): give each forward its own local port, or :REMOTE for any free one", f.local, first, p))
		}
		given[f.local] = p
		fwds = append(fwds, f)
	}
	node := c.Node
	if node == "" {
		node = "master_0"
	}
	return forwardPorts(e, c.ClusterID, node, fwds, nil)
}

// forwardPorts listens on 127.0.0.1 for each forward, prints each local
// address on stdout (in order) or, when ready is not nil, calls it with
// the first instead, and forwards until Ctrl-C.
func forwardPorts(e *env, id, nodeRef string, fwds []forward, ready func(addr string)) error {
	e.now("connecting to %s of cluster %q", nodeRef, id)
	cl, err := e.manager.Get(e.ctx, id)
	if err != nil {
		return err
	}
	defer cl.Close()
	n, err := cl.Node(nodeRef)
	if err != nil {
		return err
	}
	if err := cluster.RequireRunning([]cluster.Node{n}); err != nil {
		return err
	}
	// Log in before listening, so that a node that cannot be reached is
	// said at once rather than at the first connection.
	if st, err := n.Run(e.ctx, cluster.Command{Argv: []string{"true"}}); err != nil {
		return err
	} else if st.Code != 0 {
		return fmt.Errorf("%s: `true` exited %d", n.ID(), st.Code)
	}
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for _, f := range fwds {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(f.local)))
		if err != nil {
			return invalid(fmt.Errorf("listening on local port %d: %v: choose another with LOCAL:%d, or :%d for any free port", f.local, syserr.Cause(err), f.remote, f.remote))
		}
		lns = append(lns, ln)
	}
	for i, f := range fwds {
		if ready == nil {
			fmt.Fprintln(e.stdout, lns[i].Addr().String())
		}
		e.say("forwarding %s to port %d of %s (cluster %s); Ctrl-C stops", lns[i].Addr(), f.remote, n.ID(), cl.ID)
	}
	e.now("forwarding ports to %s of cluster %q", n.ID(), cl.ID)
	e.outcome = "stopped forwarding"
	if ready != nil {
		ready(lns[0].Addr().String())
	}
	g, ctx := errgroup.WithContext(e.ctx)
	for i, f := range fwds {
		ln := lns[i]
		target := net.JoinHostPort("127.0.0.1", strconv.Itoa(f.remote))
		g.Go(func() error {
			return n.Forward(ctx, ln, target, func(err error) {
				fmt.Fprintf(e.stderr, "e2e: a connection to %s: %v\n", ln.Addr(), oneLine(err))
			})
		})
	}
	lns = nil // Forward closes them.
	return g.Wait()
}

// WebCmd forwards master_0's port 80 and opens it.
type WebCmd struct {
	ClusterID string `name:"cluster-id" short:"c" default:"${default_id}" help:"Cluster id."`
	Port      int    `help:"Local port (default: any free port)." default:"0"`
	NoOpen    bool   `name:"no-open" help:"Only print the URL, even on a desktop."`
}

func (c *WebCmd) Run(e *env) error {
	if c.Port < 0 || c.Port > 65535 {
		return invalid(fmt.Errorf("--port %d is not a port number from 0 to 65535", c.Port))
	}
	return forwardPorts(e, c.ClusterID, "master_0", []forward{{local: c.Port, remote: 80}}, func(addr string) {
		url := "http://" + addr + "/"
		fmt.Fprintln(e.stdout, url)
		if c.NoOpen {
			return
		}
		if opener := desktopOpener(os.Getenv); opener != "" {
			cmd := exec.CommandContext(context.WithoutCancel(e.ctx), opener, url)
			if err := cmd.Start(); err != nil {
				fmt.Fprintf(e.stderr, "e2e: could not open %s with %s: %v\n", url, opener, unwrapPath(err))
				return
			}
			go func() { _ = cmd.Wait() }()
		}
	})
}

// desktopOpener is the command that opens a URL in the user's browser:
// open on macOS, xdg-open where a graphical session runs (DISPLAY or
// WAYLAND_DISPLAY), else none.
func desktopOpener(getenv func(string) string) string {
	switch {
	case runtime.GOOS == "darwin":
		return "open"
	case getenv("DISPLAY") != "" || getenv("WAYLAND_DISPLAY") != "":
		return "xdg-open"
	}
	return ""
}
