package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
)

// BenchmarkCreate times `e2e create` to an SSH-ready cluster (e2e returns
// only when it has logged in to every node) against the floor: the same
// containers started with plain `docker run`, in parallel, with the same
// flags, until each node's sshd answers with its banner on the published
// port. Both are measured in each iteration, one after the other, so they
// share the machine's conditions. It prints the ratios; the goals are
// within 1.3x of the floor, and 16 nodes in under 3x the time of 4.
//
//	go test -run '^$' -bench BenchmarkCreate -benchtime 3x ./plugins/docker
func BenchmarkCreate(b *testing.B) {
	cli := needEngine(b)
	sizes := []struct {
		name                  string
		masters, agents, pubs int
	}{
		{"nodes=4", 1, 2, 1},
		{"nodes=16", 1, 14, 1},
	}
	type result struct {
		e2e, floor time.Duration
		n          int
	}
	results := map[string]result{}
	flags := floorSecurityFlags(b, cli)
	// One e2e user for every size, warmed up by an untimed cluster: the
	// backend checks once per engine whether it allows privileged
	// containers, and remembers.
	s := newSandbox(b)
	warm := testID(b, "warm")
	s.mustE2E("create", "--backend", "docker", "-c", warm, "--masters", "1", "--agents", "0", "--public-agents", "0")
	s.mustE2E("destroy", "-c", warm)
	for _, size := range sizes {
		b.Run(size.name, func(b *testing.B) {
			var e2eTotal, floorTotal time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				floorTotal += floorRun(b, cli, flags, size.masters, size.agents, size.pubs)
				id := testID(b, "bench")
				b.StartTimer()
				start := time.Now()
				s.mustE2E("create", "--backend", "docker", "-c", id, "--masters", strconv.Itoa(size.masters),
					"--agents", strconv.Itoa(size.agents), "--public-agents", strconv.Itoa(size.pubs))
				e2eTotal += time.Since(start)
				b.StopTimer()
				s.mustE2E("destroy", "-c", id)
				b.StartTimer()
			}
			e2e, floor := e2eTotal/time.Duration(b.N), floorTotal/time.Duration(b.N)
			results[size.name] = result{e2e, floor, b.N}
			b.ReportMetric(e2e.Seconds(), "e2e-s/op")
			b.ReportMetric(floor.Seconds(), "floor-s/op")
			b.ReportMetric(e2e.Seconds()/floor.Seconds(), "x-floor")
		})
	}
	r4, r16 := results["nodes=4"], results["nodes=16"]
	if r4.e2e == 0 || r16.e2e == 0 {
		return
	}
	fmt.Printf("\ndocker backend, time to an SSH-ready cluster:\n")
	for _, size := range sizes {
		r := results[size.name]
		fmt.Printf("  %-8s e2e create %6.2fs   floor (docker run) %6.2fs   ratio %.2fx (goal <= 1.30x; mean of %d)\n",
			size.name, r.e2e.Seconds(), r.floor.Seconds(), r.e2e.Seconds()/r.floor.Seconds(), r.n)
	}
	fmt.Printf("  16 nodes / 4 nodes: e2e %.2fx, floor %.2fx (goal < 3x)\n\n",
		r16.e2e.Seconds()/r4.e2e.Seconds(), r16.floor.Seconds()/r4.floor.Seconds())
}

// floorSecurityFlags are the privilege flags the backend would choose on
// this engine, found before any timing.
func floorSecurityFlags(b *testing.B, cli *client.Client) []string {
	p := &plan{id: testID(b, "probe"), image: defaultImageRef()}
	p.uid, _ = randomHex(8)
	ok, _, remove, err := probePrivileged(context.Background(), cli, p)
	remove()
	if err != nil {
		b.Fatal(err)
	}
	if ok {
		return []string{"--privileged"}
	}
	return []string{"--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE"}
}

// floorRun starts the nodes of a cluster with `docker run`, all at once, on
// a network made beforehand, and returns the time from the first docker
// run until every sshd has sent its banner. It removes what it made.
func floorRun(b *testing.B, cli *client.Client, security []string, masters, agents, pubs int) time.Duration {
	b.Helper()
	ctx := context.Background()
	id := testID(b, "floor")
	labels := []string{"--label", labelManaged + "=true", "--label", labelClusterID + "=" + id, "--label", labelUID + "=floor"}
	netName := networkName(id)
	if _, err := cli.NetworkCreate(ctx, netName, network.CreateOptions{Driver: "bridge",
		Labels: map[string]string{labelManaged: "true", labelClusterID: id, labelUID: "floor"}}); err != nil {
		b.Fatal(err)
	}
	// sshd needs a host key: the same one for every node, bind-mounted.
	key, err := newHostKey()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	keyFile := filepath.Join(dir, "ssh_host_ed25519_key")
	if err := os.WriteFile(keyFile, key.private, 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(keyFile+".pub", []byte(key.public+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	type node struct{ name, role string }
	var nodes []node
	for _, r := range []struct {
		role string
		n    int
	}{{"master", masters}, {"agent", agents}, {"public-agent", pubs}} {
		for i := 0; i < r.n; i++ {
			nodes = append(nodes, node{fmt.Sprintf("e2e-%s-%s-%d", id, r.role, i), r.role})
		}
	}

	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := []string{"run", "-d", "--name", n.name, "--hostname", n.name, "--network", netName,
				"--cgroupns", "private", "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
				"--tmpfs", "/run:rw,exec,nosuid,nodev,mode=755", "--tmpfs", "/run/lock:rw,noexec,nosuid,nodev", "--tmpfs", "/tmp:rw,exec,nosuid,nodev",
				"--stop-signal", "SIGRTMIN+3", "-e", "container=docker", "-p", "127.0.0.1::22",
				"-v", keyFile + ":/etc/ssh/ssh_host_ed25519_key:ro", "-v", keyFile + ".pub:/etc/ssh/ssh_host_ed25519_key.pub:ro",
				"-v", "/var/lib/docker"}
			if n.role != "master" {
				args = append(args, "-v", "/var/lib/mesos/slave")
			}
			args = append(args, security...)
			args = append(args, labels...)
			args = append(args, defaultImageRef())
			if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("docker run %s: %v: %s", n.name, err, out)
				return
			}
			in, err := cli.ContainerInspect(ctx, n.name)
			if err != nil {
				errs[i] = err
				return
			}
			bs := in.NetworkSettings.Ports["22/tcp"]
			if len(bs) == 0 {
				errs[i] = fmt.Errorf("%s: port 22 not published", n.name)
				return
			}
			errs[i] = waitBanner(net.JoinHostPort(bs[0].HostIP, bs[0].HostPort), time.Minute)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	removeByIDPrefix(b, id)
	return elapsed
}

// waitBanner waits until the server at addr sends an SSH banner.
func waitBanner(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			line, _ := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if strings.HasPrefix(line, "SSH-") {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no SSH banner from %s within %s", addr, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
