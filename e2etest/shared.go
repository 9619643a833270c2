package e2etest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/e2e-tool/e2e/cluster"
)

// Shared is one cluster for the tests of a package, made when the first
// test asks for it and destroyed when the package's tests are done:
//
//	var shared = e2etest.NewShared(e2etest.Options{Spec: cluster.Spec{Backend: "docker"}})
//
//	func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }
//
//	func TestA(t *testing.T) {
//		c := shared.Cluster(t)
//		...
//	}
//
// A run in which no test asks for it makes none. Each test that used it
// and failed gets the cluster's logs as it was then (see New). Tests that
// share a cluster share its state: leave the nodes as you found them, or
// use New. A Shared is safe for concurrent use (t.Parallel).
type Shared struct {
	opts Options

	once sync.Once
	m    *cluster.Manager
	c    *cluster.Cluster
	r    *exec.Cmd
	err  error
}

// NewShared returns a Shared that makes its cluster with opts. An empty
// Spec.ID is replaced by one made from "shared" and random letters.
func NewShared(opts Options) *Shared { return &Shared{opts: opts} }

// Cluster returns the shared cluster, making it on the first call, and
// fails t (t.Fatal) when it cannot be made; every later call fails the
// same way. When t fails, the cluster's logs are collected at its end.
func (s *Shared) Cluster(t testing.TB) *cluster.Cluster {
	t.Helper()
	s.once.Do(func() {
		s.m, s.err = cluster.New(s.opts.Manager)
		if s.err != nil {
			return
		}
		spec := s.opts.Spec
		if spec.ID == "" {
			spec.ID = clusterID("shared")
		}
		// Not the test's context: the cluster outlives the test.
		s.c, s.r, s.err = create(context.Background(), s.m, spec, s.opts)
	})
	if s.err != nil {
		t.Fatalf("e2etest: the shared cluster: %v", s.err)
	}
	t.Cleanup(func() {
		t.Helper()
		if t.Failed() {
			ctx, cancel := context.WithTimeout(context.Background(), s.opts.cleanupTimeout())
			defer cancel()
			saveLogs(ctx, t, s.c)
		}
	})
	return s.c
}

// Run runs the tests (m.Run) and then destroys the shared cluster, if a
// test made it (unless retained), and returns the exit code for os.Exit:
// m.Run's, or 1 when the cluster could not be destroyed.
func (s *Shared) Run(m *testing.M) int {
	code := m.Run()
	if s.m == nil {
		return code
	}
	defer s.m.Close()
	if s.c == nil {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.cleanupTimeout())
	defer cancel()
	kept, err := finish(ctx, s.m, s.c, s.r, s.opts.retained())
	if kept != "" {
		fmt.Fprintln(os.Stderr, kept)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2etest: the shared cluster: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
