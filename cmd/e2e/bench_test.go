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
	"syscall"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/internal/ssh/sshdtest"
	"github.com/e2e-tool/e2e/internal/testbin"
	"github.com/e2e-tool/e2e/internal/testdcos"
)

// benchEnv is an existing-nodes cluster "bench" of local sshd servers and
// the e2e binary that made it.
type benchEnv struct {
	e2e     string
	env     []string
	servers []*sshdtest.Server
	key, kh string
}

// run runs e2e and returns how it ended (its rusage included).
func (be *benchEnv) run(args ...string) (*os.ProcessState, error) {
	cmd := exec.Command(be.e2e, args...)
	cmd.Env = be.env
	if out, err := cmd.CombinedOutput(); err != nil {
		return cmd.ProcessState, fmt.Errorf("e2e %v: %v\n%s", args, err, out)
	}
	return cmd.ProcessState, nil
}

// benchCluster records an existing-nodes cluster of n local sshd servers.
func benchCluster(b *testing.B, n int) (run func(args ...string) error, servers []*sshdtest.Server, key, kh string) {
	be := newBenchEnv(b, n)
	return func(args ...string) error { _, err := be.run(args...); return err }, be.servers, be.key, be.kh
}

func newBenchEnv(b *testing.B, n int) *benchEnv {
	b.Helper()
	key, authorized := userKey(b)
	be := &benchEnv{key: key}
	for range n {
		be.servers = append(be.servers, sshdtest.Start(b, sshdtest.Options{AuthorizedKeys: []string{authorized}}))
	}
	be.kh = sshdtest.KnownHostsFile(b, be.servers...)
	be.e2e = buildAll(b, b.TempDir())
	be.env = append(os.Environ(), "E2E_HOME="+b.TempDir(), "XDG_DATA_HOME="+b.TempDir(), "E2E_PLUGIN_PATH=")
	args := []string{"create", "--backend", "existing", "-c", "bench", "--ssh-key", key, "--known-hosts", be.kh}
	for i, s := range be.servers {
		role := "agents"
		if i == 0 {
			role = "masters"
		}
		args = append(args, "-o", hostOpt(role, s))
	}
	if _, err := be.run(args...); err != nil {
		b.Fatal(err)
	}
	return be
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
	installer, err := testdcos.Build(context.Background(), filepath.Join(dir, "fixture"), testdcos.Options{})
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

// maxRSS is the peak resident memory of a finished process, in MiB.
func maxRSS(ps *os.ProcessState) float64 {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	return float64(ru.Maxrss) / 1024 // KiB on Linux
}

// BenchmarkTransferMemory: peak memory (max RSS, the worst of three runs)
// of the e2e process for `e2e download` of a file and `e2e send-file` of a
// file to 8 nodes, for a 256 MiB and a 1 GiB file. Goal: under 64 MiB,
// and flat (no higher for the bigger file): buffers are bounded, not sized
// by the file. For scale, `e2e version` peaks near 20 MiB.
func BenchmarkTransferMemory(b *testing.B) {
	be := newBenchEnv(b, 8)
	dir := b.TempDir()
	// The peak of a garbage-collected process varies from run to run:
	// the worst of three is reported.
	rss := func(cleanup string, args ...string) float64 {
		worst := 0.0
		for range 3 {
			ps, err := be.run(args...)
			if err != nil {
				b.Fatal(err)
			}
			worst = max(worst, maxRSS(ps))
			os.Remove(cleanup)
		}
		return worst
	}
	type figure struct{ download, sendFile float64 }
	figures := map[int64]figure{}
	for _, size := range []int64{256 << 20, 1 << 30} {
		// Sparse: the source costs no disk; every byte still crosses SFTP.
		src := filepath.Join(dir, "payload")
		f, err := os.Create(src)
		if err != nil {
			b.Fatal(err)
		}
		if err := f.Truncate(size); err != nil {
			b.Fatal(err)
		}
		f.Close()
		// Every "node" is this machine, so all eight write one path.
		var fig figure
		sent, got := filepath.Join(dir, "sent"), filepath.Join(dir, "got")
		fig.sendFile = rss(sent, "send-file", "-c", "bench", src, sent)
		fig.download = rss(got, "download", "-c", "bench", "--node", "master_0", src, got)
		os.Remove(src)
		figures[size] = fig
	}
	small, big := figures[256<<20], figures[1<<30]
	b.ReportMetric(big.download, "MiB-rss-download-1GiB")
	b.ReportMetric(big.sendFile, "MiB-rss-send-file-8-nodes-1GiB")
	fmt.Fprintf(os.Stderr, "peak memory (max RSS, worst of 3) of e2e: download of 256 MiB %.1f MiB, of 1 GiB %.1f MiB; "+
		"send-file to 8 nodes of 256 MiB %.1f MiB, of 1 GiB %.1f MiB (goal < 64 MiB and flat)\n",
		small.download, big.download, small.sendFile, big.sendFile)
}
