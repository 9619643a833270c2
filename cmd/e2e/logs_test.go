package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/internal/testbin"
)

// freePort returns a TCP port of 127.0.0.1 that nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// httpGet returns the body of a GET of url, retrying for a few seconds
// while the server starts.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	var last error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := client.Get(url)
		if err != nil {
			last = err
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode == http.StatusOK {
			return strings.TrimSpace(string(b))
		}
		last = errors.New(resp.Status)
	}
	t.Fatalf("GET %s: %v", url, last)
	return ""
}

// startForwarding starts e2e with args (port-forward, web), returns the
// first line it prints on stdout and the running command.
func startForwarding(t *testing.T, s *sandbox, args ...string) (string, *exec.Cmd, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(built.e2e, append([]string{"--plugin-dir", built.pluginDir}, args...)...)
	cmd.Env = s.env()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case line := <-lines:
		if line == "" {
			t.Fatalf("e2e %v printed nothing; stderr:\n%s", args, stderr.String())
		}
		return line, cmd, &stderr
	case <-time.After(2 * time.Minute):
		t.Fatalf("e2e %v printed no address in 2 minutes; stderr:\n%s", args, stderr.String())
	}
	return "", nil, nil
}

// stopForwarding ends a forwarding e2e with Ctrl-C and checks that it
// exits as after any Ctrl-C.
func stopForwarding(t *testing.T, cmd *exec.Cmd, stderr *strings.Builder) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
		t.Errorf("after Ctrl-C: %v, want exit %d; stderr:\n%s", err, exitInterrupted, stderr.String())
	}
}

// TestLogsPortsAndSSHConfigOnDocker: on one Docker cluster, the logs
// bundle (a directory, a tar archive, and after a failed install), port
// forwarding and the web command, the OpenSSH config with the real ssh
// client, and a host port published on an agent.
func TestLogsPortsAndSSHConfigOnDocker(t *testing.T) {
	s := newSandbox(t)
	// An E2E_HOME holding % and a space: ssh-config must escape them for
	// OpenSSH (its tokens, %h here) and the rest must not care.
	s.home = filepath.Join(s.home, "home %h")
	if err := os.Mkdir(s.home, 0o700); err != nil {
		t.Fatal(err)
	}
	id := "conv-" + randomSuffix(t)
	agentPort := freePort(t)
	dockerCluster(t, s, id, "--masters", "1", "--agents", "1", "--public-agents", "0",
		"-o", "host_port_map=agent_0="+strconv.Itoa(agentPort)+":9000")
	dir := t.TempDir()
	hello := testbin.Build(t, "./internal/testbin/hello", filepath.Join(dir, "hello"), "")
	expectCode(t, s.e2e("send-file", "-c", id, hello, "/opt/hello/hello"), 0)
	runOut(t, s, "-c", id, "--node", "master_0", "--", "systemd-run", "--unit=hello", "/opt/hello/hello", "-listen", ":80", "-say", "master web")
	runOut(t, s, "-c", id, "--node", "agent_0", "--", "systemd-run", "--unit=hello", "/opt/hello/hello", "-listen", ":9000", "-say", "agent service")

	nodes := []string{"master_0", "agent_0"}
	checkBundle := func(t *testing.T, read func(name string) ([]byte, error)) {
		t.Helper()
		for _, n := range nodes {
			journal, err := read(n + "/journal.log")
			if err != nil || !strings.Contains(string(journal), "sshd") {
				t.Errorf("%s/journal.log (%v) does not show sshd's log:\n%.500s", n, err, journal)
			}
			b, err := read(n + "/backend/inspect.json")
			var inspect []struct {
				Name   string
				Config struct{ Labels map[string]string }
			}
			if err == nil {
				err = json.Unmarshal(b, &inspect)
			}
			want := "/e2e-" + id + "-" + strings.ReplaceAll(n, "_", "-")
			if err != nil || len(inspect) != 1 || inspect[0].Name != want || inspect[0].Config.Labels["e2e.cluster-id"] != id {
				t.Errorf("%s/backend/inspect.json: %v, want docker inspect of %s:\n%.300s", n, err, want, b)
			}
			if _, err := read(n + "/backend/console.log"); err != nil {
				t.Errorf("%s/backend/console.log (docker logs): %v", n, err)
			}
		}
		if b, err := read("cluster.json"); err != nil || !strings.Contains(string(b), `"id": "`+id+`"`) {
			t.Errorf("cluster.json: %v\n%.300s", err, b)
		}
	}

	t.Run("logs into a directory", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "bundle")
		r := s.e2e("logs", "-c", id, "--dir", out)
		expectCode(t, r, 0)
		if got := strings.TrimSpace(r.Stdout); got != out {
			t.Errorf("stdout %q, want the bundle's path %q", got, out)
		}
		checkBundle(t, func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(out, name)) })
		// Not into a directory that holds something else.
		r = s.e2e("logs", "-c", id, "--dir", out)
		expectCode(t, r, 2)
		oneErrorLine(t, r, "not empty")
	})

	t.Run("logs as a tar archive", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "logs.tar.gz")
		expectCode(t, s.e2e("logs", "-c", id, "--tar", file), 0)
		entries := readTarGz(t, file)
		checkBundle(t, func(name string) ([]byte, error) {
			b, ok := entries["e2e-logs-"+id+"/"+name]
			if !ok {
				return nil, os.ErrNotExist
			}
			return b, nil
		})
	})

	t.Run("logs on a failed install", func(t *testing.T) {
		script := filepath.Join(t.TempDir(), "fail.sh")
		writeFile(t, script, "#!/bin/sh\necho failing on purpose on $E2E_NODE\nexit 1\n")
		out := filepath.Join(t.TempDir(), "evidence")
		r := s.e2e("install", "-c", id, "--script", script, "--logs-on-failure", out)
		expectCode(t, r, 1)
		if !strings.Contains(r.Stderr, out) {
			t.Errorf("stderr does not say where the logs are (%s):\n%s", out, r.Stderr)
		}
		b, err := os.ReadFile(filepath.Join(out, "master_0", "install.log"))
		if err != nil || !strings.Contains(string(b), "failing on purpose on master_0") {
			t.Errorf("master_0/install.log: %v\n%s", err, b)
		}
		checkBundle(t, func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(out, name)) })
	})

	t.Run("logs safety", func(t *testing.T) { logsSafety(t, s, id) })

	t.Run("run --json bounds and bytes", func(t *testing.T) {
		r := s.e2e("run", "-c", id, "--node", "agent_0", "--json", "--", "sh", "-c", `head -c 17825792 /dev/zero; printf 'a\377b' >&2`)
		expectCode(t, r, 0)
		var outs []map[string]any
		if err := json.Unmarshal([]byte(r.Stdout), &outs); err != nil || len(outs) != 1 {
			t.Fatalf("run --json: %v\n%.300s", err, r.Stdout)
		}
		o := outs[0]
		if got := len(o["stdout"].(string)); got != 16<<20 || o["stdout_dropped"] != float64(1<<20) {
			t.Errorf("stdout: %d bytes kept, %v dropped; want 16 MiB kept, 1 MiB dropped", got, o["stdout_dropped"])
		}
		if o["stderr_base64"] != "Yf9i" || o["stderr"] != "" {
			t.Errorf("stderr %q, stderr_base64 %v; want the bytes a 0xff b as base64 Yf9i", o["stderr"], o["stderr_base64"])
		}
	})

	t.Run("port-forward", func(t *testing.T) {
		addr, cmd, stderr := startForwarding(t, s, "port-forward", "-c", id, "--node", "master_0", ":80", "0:9000")
		if got := httpGet(t, "http://"+addr+"/"); got != "master web" {
			t.Errorf("through %s: %q, want master_0's server", addr, got)
		}
		stopForwarding(t, cmd, stderr)
	})

	t.Run("web", func(t *testing.T) {
		url, cmd, stderr := startForwarding(t, s, "web", "-c", id)
		if !strings.HasPrefix(url, "http://127.0.0.1:") {
			t.Fatalf("web printed %q, want a URL on 127.0.0.1", url)
		}
		if got := httpGet(t, url); got != "master web" {
			t.Errorf("%s: %q, want master_0's port 80", url, got)
		}
		stopForwarding(t, cmd, stderr)
	})

	t.Run("ssh-config with OpenSSH", func(t *testing.T) {
		_, err := exec.LookPath("ssh")
		testbin.Require(t, "the OpenSSH client (apt-get install openssh-client)", err)
		r := s.e2e("ssh-config", "-c", id)
		expectCode(t, r, 0)
		cfg := filepath.Join(t.TempDir(), "ssh_config")
		writeFile(t, cfg, r.Stdout)
		local := filepath.Join(t.TempDir(), "note.txt")
		writeFile(t, local, "sent with scp\n")
		line := built.e2e + " --plugin-dir " + built.pluginDir + " ssh-config -c " + id
		for _, tc := range []struct{ name, shell, want string }{
			{"ssh -F FILE", `ssh -F "$CFG" agent_0 true`, ""},
			{"ssh -F FILE, a command", `ssh -F "$CFG" agent_0 hostname`, "e2e-" + id + "-agent-0"},
			{"the config on stdin", line + ` | ssh -F /dev/stdin master_0 cat /etc/hostname`, "e2e-" + id + "-master-0"},
			{"scp", `scp -q -F "$CFG" "$LOCAL" agent_0:/tmp/note.txt && ssh -F "$CFG" agent_0 cat /tmp/note.txt`, "sent with scp"},
		} {
			cmd := exec.Command("bash", "-c", tc.shell)
			cmd.Env = append(s.env(), "CFG="+cfg, "LOCAL="+local)
			out, err := cmd.CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != tc.want {
				t.Errorf("%s (%s): %v, %q; want %q", tc.name, tc.shell, err, out, tc.want)
			}
		}
	})

	t.Run("host port of an agent", func(t *testing.T) {
		if got := httpGet(t, "http://127.0.0.1:"+strconv.Itoa(agentPort)+"/"); got != "agent service" {
			t.Errorf("127.0.0.1:%d: %q, want agent_0's port 9000", agentPort, got)
		}
	})

	// Last: it stops agent_0.
	t.Run("run --json on a node that does not run", func(t *testing.T) {
		if out, err := exec.Command("docker", "stop", "-t", "1", "e2e-"+id+"-agent-0").CombinedOutput(); err != nil {
			t.Fatalf("docker stop: %v: %s", err, out)
		}
		r := s.e2e("run", "-c", id, "--node", "agent_0", "--json", "--", "true")
		expectCode(t, r, 255)
		var outs []struct {
			ExitCode int    `json:"exit_code"`
			Error    string `json:"error"`
		}
		if err := json.Unmarshal([]byte(r.Stdout), &outs); err != nil || len(outs) != 1 || outs[0].ExitCode != 255 || outs[0].Error == "" {
			t.Errorf("run --json: %v %+v, want exit_code 255 and the error\n%s", err, outs, r.Stdout)
		}
	})
}

// readTarGz returns the regular files of a .tar.gz by name.
func readTarGz(t *testing.T, file string) map[string][]byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := map[string][]byte{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			out[hdr.Name] = b
		}
	}
}

func TestParseForward(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want forward
		err  string
	}{
		{in: "8080:80", want: forward{8080, 80}},
		{in: "80", want: forward{80, 80}},
		{in: ":9000", want: forward{0, 9000}},
		{in: "0:9000", want: forward{0, 9000}},
		{in: "8080:", err: `the remote port "" is not a number`},
		{in: "x:80", err: `the local port "x" is not a number`},
		{in: "80:70000", err: `the remote port "70000"`},
		{in: "a:b:c", err: `a bind address is not supported (e2e listens on 127.0.0.1 only): give [LOCAL:]REMOTE`},
		{in: "1.2.3.4:80:80", err: `a bind address is not supported`},
		{in: "+80", err: `the remote port "+80" is not a number`},
		{in: "080", err: `the remote port "080" is not a number`},
		{in: "08080:80", err: `the local port "08080" is not a number`},
		{in: "-1:80", err: `the local port "-1" is not a number`},
	} {
		got, err := parseForward(tt.in)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("parseForward(%q) error %v, want %q", tt.in, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("parseForward(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestDesktopOpener(t *testing.T) {
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	if runtime.GOOS == "darwin" {
		if got := desktopOpener(env(nil)); got != "open" {
			t.Errorf("on macOS: %q, want open", got)
		}
		return
	}
	for _, tt := range []struct {
		vars map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{"DISPLAY": ":0"}, "xdg-open"},
		{map[string]string{"WAYLAND_DISPLAY": "wayland-0"}, "xdg-open"},
	} {
		if got := desktopOpener(env(tt.vars)); got != tt.want {
			t.Errorf("with %v: %q, want %q", tt.vars, got, tt.want)
		}
	}
}

// TestCreateLogsOnFailureOnDocker: when the machines were made but the
// cluster is unusable (here no SSH gets through: the proxy command fails),
// create writes the bundle, with the backend's view of each node, before
// it removes them.
func TestCreateLogsOnFailureOnDocker(t *testing.T) {
	testbin.RequireDocker(t, "")
	s := newSandbox(t)
	id := "convfail-" + randomSuffix(t)
	out := filepath.Join(t.TempDir(), "evidence")
	t.Cleanup(func() {
		_ = exec.Command("sh", "-c", "docker rm -f -v $(docker ps -aq --filter label=e2e.cluster-id="+id+") 2>/dev/null; docker network rm e2e-"+id+" 2>/dev/null").Run()
	})
	r := s.e2e("create", "--backend", "docker", "-c", id, "--masters", "1", "--agents", "0", "--public-agents", "0",
		"--ssh-proxy-command", "echo no way through >&2; exit 3", "--ssh-timeout", "1s", "--logs-on-failure", out)
	expectCode(t, r, 1)
	oneErrorLine(t, r, "checking SSH", "(logs: "+out+")")
	b, err := os.ReadFile(filepath.Join(out, "master_0", "backend", "inspect.json"))
	if err != nil || !strings.Contains(string(b), `"/e2e-`+id+`-master-0"`) {
		t.Errorf("master_0/backend/inspect.json: %v\n%.300s", err, b)
	}
	if b, err := os.ReadFile(filepath.Join(out, "errors.txt")); err != nil || !strings.Contains(string(b), "master_0: journal.log") {
		t.Errorf("errors.txt does not say the journal could not be read: %v\n%s", err, b)
	}
	// Nothing is left: the bundle is all that remains.
	if ids := strings.TrimSpace(mustOutput(t, "docker", "ps", "-aq", "--filter", "label=e2e.cluster-id="+id)); ids != "" {
		t.Errorf("containers left after the failed create: %s", ids)
	}
	// A directory that holds something else is refused before anything is made.
	r = s.e2e("create", "--backend", "docker", "-c", id, "--logs-on-failure", out)
	expectCode(t, r, 2)
	oneErrorLine(t, r, "--logs-on-failure", "not empty")
}
