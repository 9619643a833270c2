package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/internal/install/dcosfixture"
	"github.com/e2e-tool/e2e/internal/ssh/sshdtest"
	"github.com/e2e-tool/e2e/internal/testbin"
)

// benchCluster records an existing-nodes cluster of n local sshd servers.
func benchCluster(b *testing.B, n int) (run func(args ...string) error, servers []*sshdtest.Server, key, kh string) {
	b.Helper()
	key, authorized := userKey(b)
	for range n {
		servers = append(servers, sshdtest.Start(b, sshdtest.Options{AuthorizedKeys: []string{authorized}}))
	}
	kh = sshdtest.KnownHostsFile(b, servers...)
	dir := b.TempDir()
	e2e := buildAll(b, dir)
	env := append(os.Environ(), "E2E_HOME="+b.TempDir(), "XDG_DATA_HOME="+b.TempDir(), "E2E_PLUGIN_PATH=")
	run = func(args ...string) error {
		cmd := exec.Command(e2e, args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("e2e %v: %v\n%s", args, err, out)
		}
		return nil
	}
	args := []string{"create", "--backend", "existing", "-c", "bench", "--ssh-key", key, "--known-hosts", kh}
	for i, s := range servers {
		role := "agents"
		if i == 0 {
			role = "masters"
		}
		args = append(args, "-o", hostOpt(role, s))
	}
	if err := run(args...); err != nil {
		b.Fatal(err)
	}
	return run, servers, key, kh
}

// openSSH runs f for every server at once, as a script fanning out with
// the OpenSSH client would, and waits for all.
func openSSH(servers []*sshdtest.Server, f func(s *sshdtest.Server) *exec.Cmd) error {
	var wg sync.WaitGroup
	errs := make([]error, len(servers))
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := f(s).CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("%v: %s", err, out)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func sshOpts(key, kh string) []string {
	return []string{"-i", key, "-o", "UserKnownHostsFile=" + kh, "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"}
}

// BenchmarkRunAll: `e2e run --all -- true` on 8 nodes against the same
// command fanned out with the OpenSSH client in parallel. Goal: no slower.
func BenchmarkRunAll(b *testing.B) {
	if _, err := exec.LookPath("ssh"); err != nil {
		b.Skip("SKIPPED LOUDLY: the OpenSSH client is missing; .ci/run installs it")
	}
	run, servers, key, kh := benchCluster(b, 8)
	const n = 10
	e2e := testbin.Mean(b, n, func() error { return run("run", "-c", "bench", "--all", "--", "true") })
	ossh := testbin.Mean(b, n, func() error {
		return openSSH(servers, func(s *sshdtest.Server) *exec.Cmd {
			return exec.Command("ssh", append(sshOpts(key, kh), "-p", strconv.Itoa(s.Endpoint.Port), "root@"+s.Endpoint.Host, "true")...)
		})
	})
	b.ReportMetric(float64(e2e.Milliseconds()), "ms/e2e-run-all")
	b.ReportMetric(float64(e2e)/float64(ossh), "x-openssh")
	fmt.Fprintf(os.Stderr, "e2e run --all -- true on 8 nodes: %.0f ms; OpenSSH in parallel: %.0f ms; ratio %.2f (goal <= 1)\n",
		testbin.Ms(e2e), testbin.Ms(ossh), float64(e2e)/float64(ossh))
}

// BenchmarkSendFile: a 256 MiB `e2e send-file` to 4 nodes against parallel
// scp of the same file. Goal: no slower.
func BenchmarkSendFile(b *testing.B) {
	if _, err := exec.LookPath("scp"); err != nil {
		b.Skip("SKIPPED LOUDLY: scp is missing; .ci/run installs the OpenSSH client")
	}
	run, servers, key, kh := benchCluster(b, 4)
	src := filepath.Join(b.TempDir(), "payload")
	payload := make([]byte, 256<<20)
	if _, err := rand.Read(payload); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(src, payload, 0o644); err != nil {
		b.Fatal(err)
	}
	// Every "node" is this machine: each gets its own destination so the
	// four transfers do not write one file.
	dst := b.TempDir()
	const n = 3
	e2e := testbin.Mean(b, n, func() error {
		var wg sync.WaitGroup
		errs := make([]error, len(servers))
		for i := range servers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ref := "agent_" + strconv.Itoa(i-1)
				if i == 0 {
					ref = "master_0"
				}
				errs[i] = run("send-file", "-c", "bench", "--node", ref, src, filepath.Join(dst, "e2e-"+strconv.Itoa(i)))
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	})
	e2eOne := testbin.Mean(b, n, func() error {
		// One e2e command to all four nodes, as a user runs it.
		return run("send-file", "-c", "bench", src, filepath.Join(dst, "all"))
	})
	scp := testbin.Mean(b, n, func() error {
		i := 0
		var mu sync.Mutex
		return openSSH(servers, func(s *sshdtest.Server) *exec.Cmd {
			mu.Lock()
			i++
			target := filepath.Join(dst, "scp-"+strconv.Itoa(i))
			mu.Unlock()
			return exec.Command("scp", append(sshOpts(key, kh), "-q", "-P", strconv.Itoa(s.Endpoint.Port), src, "root@"+s.Endpoint.Host+":"+target)...)
		})
	})
	b.ReportMetric(float64(e2eOne.Milliseconds()), "ms/e2e-send-file")
	b.ReportMetric(float64(e2eOne)/float64(scp), "x-scp")
	fmt.Fprintf(os.Stderr, "256 MiB to 4 nodes: e2e send-file %.0f ms (four parallel single-node commands: %.0f ms); parallel scp %.0f ms; ratio %.2f (goal <= 1)\n",
		testbin.Ms(e2eOne), testbin.Ms(e2e), testbin.Ms(scp), float64(e2eOne)/float64(scp))
}

// BenchmarkInstall: DC/OS (the contract fixture, 32 MiB payload) on 1+2+1
// and 1+8+1 Docker nodes, against sending the same installer to a single
// node, all in one run. DC/OS E2E installed one node at a time; the goal
// is that adding nodes costs little.
func BenchmarkInstall(b *testing.B) {
	if out, err := exec.Command("docker", "info").CombinedOutput(); err != nil {
		b.Skipf("SKIPPED LOUDLY: no Docker engine: %v %s", err, out)
	}
	dir := b.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "fixture"), 0o755); err != nil {
		b.Fatal(err)
	}
	installer, err := dcosfixture.Build(context.Background(), filepath.Join(dir, "fixture"), dcosfixture.Options{})
	if err != nil {
		b.Fatal(err)
	}
	bin := b.TempDir()
	if err := testbin.Compile("./cmd/e2e", filepath.Join(bin, "e2e"), "bench"); err != nil {
		b.Fatal(err)
	}
	if err := testbin.Compile("./plugins/docker", filepath.Join(bin, "e2e-backend-docker"), "bench"); err != nil {
		b.Fatal(err)
	}
	env := append(os.Environ(), "E2E_HOME="+b.TempDir(), "XDG_DATA_HOME="+b.TempDir(), "E2E_PLUGIN_PATH=")
	run := func(args ...string) error {
		cmd := exec.Command(filepath.Join(bin, "e2e"), args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("e2e %v: %v\n%s", args, err, out)
		}
		return nil
	}
	timeInstall := func(id string, agents, public int) (install, single time.Duration) {
		if err := run("create", "--backend", "docker", "-c", id, "--masters", "1", "--agents", strconv.Itoa(agents), "--public-agents", strconv.Itoa(public)); err != nil {
			b.Fatal(err)
		}
		defer func() { _ = run("destroy", "-c", id) }()
		single = testbin.Mean(b, 1, func() error {
			return run("send-file", "-c", id, "--node", "master_0", installer, "/opt/payload/dcos_generate_config.sh")
		})
		install = testbin.Mean(b, 1, func() error { return run("install", "-c", id, "--installer", installer) })
		return install, single
	}
	suffix := strconv.FormatInt(time.Now().UnixNano()&0xffffff, 16)
	one, single := timeInstall("bench-i1-"+suffix, 0, 0)
	small, _ := timeInstall("bench-i4-"+suffix, 2, 1)
	big, _ := timeInstall("bench-i10-"+suffix, 8, 1)
	b.ReportMetric(float64(small.Milliseconds()), "ms/install-4")
	b.ReportMetric(float64(big.Milliseconds()), "ms/install-10")
	b.ReportMetric(float64(small)/float64(4*one), "x-one-at-a-time-4")
	b.ReportMetric(float64(big)/float64(10*one), "x-one-at-a-time-10")
	fmt.Fprintf(os.Stderr, "DC/OS install (fixture, 40 MiB installer): 1 node %.0f ms; 1+2+1 nodes %.0f ms = %.2fx of one node at a time (4 x 1 node); "+
		"1+8+1 nodes %.0f ms = %.2fx of one node at a time; sending the installer to one node: %.0f ms\n",
		testbin.Ms(one), testbin.Ms(small), float64(small)/float64(4*one), testbin.Ms(big), float64(big)/float64(10*one), testbin.Ms(single))
}
