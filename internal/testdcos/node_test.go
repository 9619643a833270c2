package testdcos

// What runs on the nodes: dcos_install.sh's refusals, and the stand-in
// services and check runner of the node binary.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/e2e-tool/e2e/internal/testbin"
	"github.com/e2e-tool/e2e/internal/testdcos/internal/layout"
)

// TestInstallRefusals runs dcos_install.sh only on paths that end before
// it changes anything, with a PATH that holds nothing but hostname,
// sha256sum and cut, so a regression cannot install on this machine: the
// real install is for a systemd node.
func TestInstallRefusals(t *testing.T) {
	missing := t.TempDir()
	dir := genconfDir(t, strings.Replace(goodConfig, "file:///opt/dcos_install_tmp", "file://"+missing+"/serve", 1), ipDetect)
	if r := run(t, dir, nil, "bash", ossInstaller, "--genconf"); r.code != 0 {
		t.Fatalf("genconf: %s", r.stderr)
	}
	install := filepath.Join(dir, "genconf", "serve", "dcos_install.sh")

	bin := t.TempDir()
	for _, tool := range []string{"hostname", "sha256sum", "cut"} {
		p, err := exec.LookPath(tool)
		testbin.Require(t, tool+" (coreutils)", err)
		if err != nil {
			return
		}
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + bin}
	root := os.Geteuid() == 0

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no role", []string{"--no-block-dcos-setup"}, "a role must be given"},
		{"unknown role", []string{"--no-block-dcos-setup", "agent"}, "invalid role 'agent': must be one of master, slave, slave_public"},
		{"two roles", []string{"master", "slave"}, "exactly one role must be given"},
		{"unknown option", []string{"--bogus", "master"}, "unknown option --bogus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, dir, env, bash, append([]string{install}, tc.args...)...)
			if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 1 and %q", r.code, r.stderr, tc.want)
			}
		})
	}

	t.Run("fail on host", func(t *testing.T) {
		// The oss installer was built with FailOnHost = this machine.
		r := run(t, dir, env, bash, install, "--no-block-dcos-setup", "slave")
		want := "installation failed on host " + hostname + ": the DC/OS contract fixture was built with FailOnHost=" + hostname
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("exit %d, stderr %q; want exit 1 and %q", r.code, r.stderr, want)
		}
	})

	if !root {
		t.Log("not root: the missing-payload path needs root to be reached")
		return
	}
	t.Run("missing payload", func(t *testing.T) {
		// An installer without FailOnHost, so the script reaches the fetch.
		d := t.TempDir()
		inst, err := Build(context.Background(), d, Options{PayloadMiB: 1})
		if err != nil {
			t.Fatal(err)
		}
		gd := genconfDir(t, strings.Replace(goodConfig, "file:///opt/dcos_install_tmp", "file://"+missing+"/serve", 1), ipDetect)
		if r := run(t, gd, nil, "bash", inst, "--genconf"); r.code != 0 {
			t.Fatalf("genconf: %s", r.stderr)
		}
		r := run(t, gd, env, bash, filepath.Join(gd, "genconf", "serve", "dcos_install.sh"),
			"--disable-preflight", "--no-block-dcos-setup", "slave")
		want := "bootstrap payload " + missing + "/serve/bootstrap/"
		if r.code != 1 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "is missing") {
			t.Errorf("exit %d, stderr %q; want exit 1 and %q ... is missing", r.code, r.stderr, want)
		}

		// A truncated copy is refused by its checksum.
		src := filepath.Join(gd, "genconf", "serve")
		if err := os.CopyFS(filepath.Join(missing, "serve"), os.DirFS(src)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(filepath.Join(missing, "serve")) })
		latest, _ := os.ReadFile(filepath.Join(src, "bootstrap.latest"))
		if err := os.Truncate(filepath.Join(missing, "serve", "bootstrap", string(latest)+".bootstrap.tar.xz"), mib); err != nil {
			t.Fatal(err)
		}
		r = run(t, gd, env, bash, filepath.Join(gd, "genconf", "serve", "dcos_install.sh"),
			"--disable-preflight", "--no-block-dcos-setup", "slave")
		if r.code != 1 || !strings.Contains(r.stderr, "is incomplete or corrupt") {
			t.Errorf("exit %d, stderr %q; want exit 1 and a checksum error", r.code, r.stderr)
		}
	})
}

// nodeBinary extracts bin/dcos-fixture from a genconf'd bootstrap payload,
// and next to it bin/dcos-check-runner pointed at it.
func nodeBinary(t *testing.T) string {
	t.Helper()
	dir := genconfDir(t, goodConfig, ipDetect)
	if r := run(t, dir, nil, "bash", ossInstaller, "--genconf"); r.code != 0 {
		t.Fatalf("genconf: %s", r.stderr)
	}
	id, _ := os.ReadFile(filepath.Join(dir, "genconf", "serve", "bootstrap.latest"))
	entries := readTar(t, filepath.Join(dir, "genconf", "serve", "bootstrap", string(id)+".bootstrap.tar.xz"))
	bin := filepath.Join(t.TempDir(), "dcos-fixture")
	if err := os.WriteFile(bin, entries["bin/dcos-fixture"], 0o755); err != nil {
		t.Fatal(err)
	}
	wrapper := bytes.ReplaceAll(entries["bin/dcos-check-runner"], []byte(layout.Binary), []byte(bin))
	if err := os.WriteFile(filepath.Join(filepath.Dir(bin), "dcos-check-runner"), wrapper, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// node is a local stand-in node: its config files and running services.
type node struct {
	bin, config, version string
	offset               int
}

func newNode(t *testing.T, bin string, cfg layout.NodeConfig) *node {
	t.Helper()
	dir := t.TempDir()
	n := &node{bin: bin, config: filepath.Join(dir, "expanded.config.json"), version: filepath.Join(dir, "dcos-version.json")}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(n.config, b, 0o644); err != nil {
		t.Fatal(err)
	}
	vi, _ := json.Marshal(layout.VersionInfo{Version: cfg.DCOSVersion, Variant: cfg.DCOSVariant, Commit: "c", BootstrapID: cfg.BootstrapID})
	if err := os.WriteFile(n.version, vi, 0o644); err != nil {
		t.Fatal(err)
	}
	return n
}

// start runs `dcos-fixture serve` on 127.0.0.1 with a random port offset,
// trying again when a port is taken.
func (n *node) start(t *testing.T, role string) {
	t.Helper()
	for attempt := 0; attempt < 10; attempt++ {
		n.offset = 10000 + rand.IntN(40000)
		cmd := exec.Command(n.bin, "serve", "--role", role, "--listen-host", "127.0.0.1",
			"--port-offset", strconv.Itoa(n.offset), "--config", n.config, "--version-file", n.version,
			"--detect-ip", "/nonexistent")
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(stderr).ReadString('\n')
		if strings.Contains(line, "listening:") {
			t.Cleanup(func() {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				_ = cmd.Wait()
			})
			go func() { _, _ = io.Copy(io.Discard, stderr) }()
			return
		}
		_ = cmd.Wait()
		if !strings.Contains(line, "address already in use") {
			t.Fatalf("serve: %s", line)
		}
	}
	t.Fatal("no free ports after 10 tries")
}

func (n *node) url(port int, path string) string {
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port+n.offset)) + path
}

func (n *node) check(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, "", nil, n.bin, append([]string{"check", "node-poststart", "--config", n.config,
		"--host", "127.0.0.1", "--port-offset", strconv.Itoa(n.offset)}, args...)...)
}

// checkRunner runs the check through bin/dcos-check-runner, as wait does.
func (n *node) checkRunner(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, "", nil, "bash", append([]string{filepath.Join(filepath.Dir(n.bin), "dcos-check-runner"),
		"check", "node-poststart", "--config", n.config,
		"--host", "127.0.0.1", "--port-offset", strconv.Itoa(n.offset)}, args...)...)
}

var testCluster = layout.NodeConfig{
	ClusterName:     "fixture-test",
	MasterList:      []string{"172.17.0.2"},
	AgentList:       []string{"172.17.0.3", "172.17.0.4"},
	PublicAgentList: []string{"172.17.0.5"},
	NumMasters:      "1",
	BootstrapURL:    "file:///opt/dcos_install_tmp",
	BootstrapID:     strings.Repeat("ab", 20),
	DCOSVersion:     DefaultVersion,
	DCOSVariant:     "open",
}

func TestServeMaster(t *testing.T) {
	bin := nodeBinary(t)
	n := newNode(t, bin, testCluster)
	n.start(t, "master")

	get := func(url string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	marathon := func(b []byte) error {
		var v struct {
			Name    string `json:"name"`
			Elected bool   `json:"elected"`
			Leader  string `json:"leader"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		if v.Name != "marathon" || !v.Elected || v.Leader != "172.17.0.2:8080" {
			return fmt.Errorf("marathon info %+v", v)
		}
		return nil
	}
	exhibitor := func(b []byte) error {
		var v []struct {
			Hostname    string `json:"hostname"`
			Description string `json:"description"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		if len(v) != 1 || v[0].Hostname != "172.17.0.2" || v[0].Description != "serving" {
			return fmt.Errorf("exhibitor status %+v", v)
		}
		return nil
	}
	slaves := func(b []byte) error {
		var v struct {
			Slaves []struct {
				ID         string            `json:"id"`
				Hostname   string            `json:"hostname"`
				Attributes map[string]string `json:"attributes"`
			} `json:"slaves"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		if len(v.Slaves) != 3 {
			return fmt.Errorf("%d agents, want 3", len(v.Slaves))
		}
		public := 0
		for _, s := range v.Slaves {
			if s.Attributes["public_ip"] == "true" {
				public++
			}
		}
		if public != 1 || v.Slaves[0].Hostname != "172.17.0.3" {
			return fmt.Errorf("agents %+v", v.Slaves)
		}
		return nil
	}
	contains := func(s string) func([]byte) error {
		return func(b []byte) error {
			if !bytes.Contains(b, []byte(s)) {
				return fmt.Errorf("body lacks %q: %s", s, b)
			}
			return nil
		}
	}
	for _, tc := range []struct {
		port   int
		path   string
		verify func([]byte) error
	}{
		{layout.PortAdminRouter, "/", contains("<title>DC/OS</title>")},
		{layout.PortAdminRouter, "/marathon/v2/info", marathon},
		{layout.PortMarathon, "/v2/info", marathon},
		{layout.PortAdminRouter, "/exhibitor/exhibitor/v1/cluster/status", exhibitor},
		{layout.PortExhibitor, "/exhibitor/v1/cluster/status", exhibitor},
		{layout.PortAdminRouter, "/exhibitor/exhibitor/v1/cluster/list", contains(`"172.17.0.2"`)},
		{layout.PortAdminRouter, "/mesos/slaves", slaves},
		{layout.PortAdminRouter, "/mesos/master/slaves", slaves},
		{layout.PortMesosMaster, "/slaves", slaves},
		{layout.PortMesosMaster, "/master/slaves", slaves},
		{layout.PortAdminRouter, "/dcos-metadata/dcos-version.json", contains(`"version":"` + DefaultVersion + `"`)},
		{layout.PortAdminRouter, "/system/health/v1/units", contains(`"health": 0`)},
		{layout.PortAdminRouter, "/service/metronome/v1/jobs", contains("[]")},
	} {
		code, body := get(n.url(tc.port, tc.path))
		if code != http.StatusOK {
			t.Errorf("GET :%d%s: %d %s", tc.port, tc.path, code, body)
			continue
		}
		if err := tc.verify(body); err != nil {
			t.Errorf("GET :%d%s: %v", tc.port, tc.path, err)
		}
	}

	// The per-agent endpoint DC/OS test utils poll, by the ids /mesos/slaves gives.
	_, body := get(n.url(layout.PortAdminRouter, "/mesos/slaves"))
	var state struct {
		Slaves []struct {
			ID string `json:"id"`
		} `json:"slaves"`
	}
	_ = json.Unmarshal(body, &state)
	for _, s := range state.Slaves {
		code, b := get(n.url(layout.PortAdminRouter, "/slave/"+s.ID+"/slave%281%29/state"))
		if code != http.StatusOK || !bytes.Contains(b, []byte(s.ID)) {
			t.Errorf("agent %s state: %d %s", s.ID, code, b)
		}
	}
	if code, _ := get(n.url(layout.PortAdminRouter, "/nonexistent")); code != http.StatusNotFound {
		t.Errorf("unknown path: %d, want 404", code)
	}
	resp, err := http.Post(n.url(layout.PortAdminRouter, "/acs/api/v1/auth/login"), "application/json",
		strings.NewReader(`{"uid": "albert@bekstil.net", "password": "x"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`"token"`)) {
		t.Errorf("login: %d %s", resp.StatusCode, b)
	}

	t.Run("check passes", func(t *testing.T) {
		r := n.check(t, "--skip-unit", "--role", "master")
		if r.code != 0 {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		var out struct {
			Status int                       `json:"status"`
			Checks map[string]map[string]any `json:"checks"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("check output is not JSON: %v\n%s", err, r.stdout)
		}
		for _, name := range []string{"adminrouter", "marathon", "marathon-adminrouter", "exhibitor", "mesos-agents"} {
			if _, ok := out.Checks[name]; !ok {
				t.Errorf("no %s check in %s", name, r.stdout)
			}
		}
		if r := n.checkRunner(t, "--skip-unit", "--role", "master"); r.code != 0 {
			t.Errorf("dcos-check-runner check node-poststart: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("check fails without the unit", func(t *testing.T) {
		// This machine runs no dcos-fixture unit; systemctl is-active only reads.
		r := n.check(t, "--role", "master")
		if r.code == 0 || !strings.Contains(r.stderr, "dcos-fixture-unit: dcos-fixture-master.service is not active") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("check fails when agents are missing", func(t *testing.T) {
		more := testCluster
		more.AgentList = append([]string{"172.17.0.9"}, more.AgentList...)
		other := newNode(t, bin, more)
		other.offset = n.offset
		r := other.check(t, "--skip-unit", "--role", "master")
		if r.code == 0 || !strings.Contains(r.stderr, "mesos-agents:") || !strings.Contains(r.stderr, "3 of 4 agents have joined") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

func TestServeAgentAndCheckDown(t *testing.T) {
	bin := nodeBinary(t)
	for _, role := range []string{"slave", "slave_public"} {
		t.Run(role, func(t *testing.T) {
			n := newNode(t, bin, testCluster)
			n.start(t, role)
			resp, err := http.Get(n.url(layout.PortMesosAgent, "/state"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET :5051/state: %s", resp.Status)
			}
			if r := n.check(t, "--skip-unit", "--role", role); r.code != 0 {
				t.Errorf("check: exit %d: %s%s", r.code, r.stdout, r.stderr)
			}
		})
	}
	t.Run("nothing listening", func(t *testing.T) {
		n := newNode(t, bin, testCluster)
		// Find an offset at which port 80 is free, and leave it so.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		n.offset = l.Addr().(*net.TCPAddr).Port - layout.PortAdminRouter
		l.Close()
		r := n.check(t, "--skip-unit", "--role", "master", "--timeout", "2s")
		if r.code == 0 || !strings.Contains(r.stderr, "adminrouter: ") || !strings.Contains(r.stderr, "connection refused") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}
