// Package install puts a distribution on a cluster's nodes over SSH: the
// DC/OS advanced installer (genconf once, payload to every node in
// parallel, masters first, then all agents), and a generic script
// installer. It knows nodes only through the small Target interface, so the
// cluster package owns how they are reached.
package install

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/e2e-tool/e2e/internal/lastlines"
	"github.com/e2e-tool/e2e/sdk"
	"golang.org/x/sync/errgroup"
)

// dcosRole translates a role at the installer boundary.
func dcosRole(r sdk.Role) string {
	switch r {
	case sdk.RoleMaster:
		return "master"
	case sdk.RolePublicAgent:
		return "slave_public"
	}
	return "slave"
}

// Target is a node as an installer works on it: its id, role and address,
// commands as root, files, and connections from it. The cluster package
// makes one of each cluster.Node.
type Target interface {
	ID() string
	Role() sdk.Role
	Address() string
	// Exec runs a shell command line as root and returns its exit code;
	// the error is for failures of the transport only.
	Exec(ctx context.Context, shell string, env map[string]string, stdout, stderr io.Writer) (int, error)
	Upload(ctx context.Context, src, dst string) error
	Download(ctx context.Context, src, dst string) error
	// DialContext opens a connection from the node (through SSH), so HTTP
	// checks work where node addresses are not routable from here.
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Events receive progress: a step and, for per-node work, the node.
type Events func(step, node, message string)

// StepError names the node and the step that failed and carries the last
// lines of its output.
type StepError struct {
	Node string
	Step string
	Code int
	Tail []string
	Log  string
	Err  error
}

func (e *StepError) Error() string {
	var b strings.Builder
	if e.Node != "" {
		fmt.Fprintf(&b, "%s: ", e.Node)
	}
	b.WriteString(e.Step)
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	} else {
		fmt.Fprintf(&b, " exited %d", e.Code)
	}
	if len(e.Tail) > 0 {
		fmt.Fprintf(&b, "; last output: %s", strings.Join(e.Tail, " | "))
	}
	if e.Log != "" {
		fmt.Fprintf(&b, " (full log: %s)", e.Log)
	}
	return b.String()
}

func (e *StepError) Unwrap() error { return e.Err }

// runLogged runs a step on a node with its output appended to the node's
// log file, and turns a failure into a StepError.
func runLogged(ctx context.Context, n Target, logDir, step, shell string, env map[string]string) error {
	logPath := filepath.Join(logDir, n.ID()+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "=== %s: %s\n", step, shell)
	tail := &lastlines.Writer{}
	w := oneWriter(io.MultiWriter(f, tail))
	code, err := n.Exec(ctx, shell, env, w, w)
	if err != nil {
		return &StepError{Node: n.ID(), Step: step, Err: err, Tail: tail.Last(5), Log: logPath}
	}
	if code != 0 {
		return &StepError{Node: n.ID(), Step: step, Code: code, Tail: tail.Last(5), Log: logPath}
	}
	return nil
}

// syncWriter serializes the writes of a command's stdout and stderr into
// one writer, as os/exec does when both are the same: SSH copies the two
// streams at once, and a bytes.Buffer given as both would lose output (its
// ReadFrom from stderr resets what stdout wrote meanwhile).
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// oneWriter returns w for use as both stdout and stderr of a command.
func oneWriter(w io.Writer) io.Writer { return &syncWriter{w: w} }

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// parallel runs fn on every node at once and returns the first error in
// node order, after all have finished.
func parallel(ctx context.Context, nodes []Target, fn func(ctx context.Context, n Target) error) error {
	errs := make([]error, len(nodes))
	var g errgroup.Group
	for i, n := range nodes {
		g.Go(func() error {
			errs[i] = fn(ctx, n)
			return nil
		})
	}
	_ = g.Wait() // every error is in errs
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func byRole(nodes []Target, roles ...sdk.Role) []Target {
	var out []Target
	for _, n := range nodes {
		for _, r := range roles {
			if n.Role() == r {
				out = append(out, n)
			}
		}
	}
	return out
}

func addresses(nodes []Target, role sdk.Role) []string {
	out := []string{}
	for _, n := range byRole(nodes, role) {
		out = append(out, n.Address())
	}
	return out
}

// ErrNoMaster is returned when a step needs a master and there is none.
var ErrNoMaster = errors.New("the cluster has no master")
