package ssh_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/internal/ssh"
	"github.com/e2e-tool/e2e/internal/ssh/sshdtest"
	gossh "golang.org/x/crypto/ssh"
)

// testContext bounds a test's waits.
func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// dial logs in to srv as root with its authorised key and its host key pinned.
func dial(t *testing.T, srv *sshdtest.Server) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial(testContext(t, 10*time.Second), srv.Endpoint, ssh.Config{
		Signers:    []gossh.Signer{srv.Signer},
		KnownHosts: []string{sshdtest.KnownHostsFile(t, srv)},
	})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// run runs cmd and returns its status and output.
func run(t *testing.T, c *ssh.Client, cmd ssh.Cmd) (ssh.ExitStatus, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	st, err := c.Run(testContext(t, 20*time.Second), cmd)
	if err != nil {
		t.Fatalf("Run(%q %q): %v", cmd.Argv, cmd.Shell, err)
	}
	return st, stdout.String(), stderr.String()
}

func TestRunExitStatus(t *testing.T) {
	c := dial(t, sshdtest.Start(t, sshdtest.Options{}))
	for _, tc := range []struct {
		name string
		cmd  ssh.Cmd
		want ssh.ExitStatus
	}{
		{"true", ssh.Cmd{Argv: []string{"true"}}, ssh.ExitStatus{Code: 0}},
		{"false", ssh.Cmd{Argv: []string{"false"}}, ssh.ExitStatus{Code: 1}},
		{"exit 42", ssh.Cmd{Shell: "exit 42"}, ssh.ExitStatus{Code: 42}},
		{"command not found", ssh.Cmd{Argv: []string{"no-such-command-e2e"}}, ssh.ExitStatus{Code: 127}},
		{"SIGTERM", ssh.Cmd{Shell: "kill -TERM $$"}, ssh.ExitStatus{Code: 143, Signal: "TERM"}},
		{"SIGKILL", ssh.Cmd{Shell: "kill -KILL $$"}, ssh.ExitStatus{Code: 137, Signal: "KILL"}},
		{"SIGTERM through sudo", ssh.Cmd{Shell: "kill -TERM $$", User: "nobody"}, ssh.ExitStatus{Code: 143, Signal: "TERM"}},
		{"exit code through sudo", ssh.Cmd{Shell: "exit 3", User: "nobody"}, ssh.ExitStatus{Code: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, stderr := run(t, c, tc.cmd)
			if got != tc.want {
				t.Errorf("status = %+v, want %+v (stderr %q)", got, tc.want, stderr)
			}
		})
	}
}

// awkward are arguments a careless quoting would change.
var awkward = []string{
	"two words", "single'quote", `double"quote`, "$HOME", "${HOME}", "`id`", "$(id)",
	"new\nline", "", "*", "~", "back\\slash", "tab\there", "semi;colon", "a|b", "&",
	"-n", "--", "A=b", "#hash", "!bang", "ünïcødé", "'", `\`, " ", "trailing\n",
}

func TestRunQuotingAndEnv(t *testing.T) {
	c := dial(t, sshdtest.Start(t, sshdtest.Options{}))
	env := map[string]string{
		"E2E_SPACES":  "x  y",
		"E2E_AWKWARD": "it's $HOME `id` \"q\"\nline2",
		"E2E_EMPTY":   "",
	}
	envWant := []string{env["E2E_AWKWARD"], env["E2E_EMPTY"], env["E2E_SPACES"]}
	printEnv := `printf '%s\0' "$E2E_AWKWARD" "${E2E_EMPTY-unset}" "$E2E_SPACES"`
	for _, tc := range []struct {
		name string
		cmd  ssh.Cmd
		want []string
	}{
		{"argv", ssh.Cmd{Argv: append([]string{"printf", `%s\0`}, awkward...)}, awkward},
		{"argv via sudo", ssh.Cmd{Argv: append([]string{"printf", `%s\0`}, awkward...), User: "nobody"}, awkward},
		{"argv with env", ssh.Cmd{Argv: append([]string{"printf", `%s\0`}, awkward...), Env: env}, awkward},
		{"env in a shell line", ssh.Cmd{Shell: printEnv, Env: env}, envWant},
		{"env via sudo", ssh.Cmd{Shell: printEnv, Env: env, User: "nobody"}, envWant},
		{"env via sudo root", ssh.Cmd{Shell: printEnv, Env: env, Sudo: true}, envWant},
		{"env to argv", ssh.Cmd{Argv: []string{"sh", "-c", printEnv}, Env: env}, envWant},
		{"shell line as is", ssh.Cmd{Shell: `x=$((40+2)); printf '%s\0' "$x" | tr 4 y`}, []string{"y2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, stdout, stderr := run(t, c, tc.cmd)
			if st.Code != 0 {
				t.Fatalf("exit %+v, stderr %q", st, stderr)
			}
			got := strings.Split(strings.TrimSuffix(stdout, "\x00"), "\x00")
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
				t.Errorf("remote arguments differ:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestRunAsUser(t *testing.T) {
	c := dial(t, sshdtest.Start(t, sshdtest.Options{}))
	for _, tc := range []struct {
		name string
		cmd  ssh.Cmd
		want string
	}{
		{"login user", ssh.Cmd{Argv: []string{"id", "-un"}}, "root"},
		{"user nobody", ssh.Cmd{Argv: []string{"id", "-un"}, User: "nobody"}, "nobody"},
		{"sudo", ssh.Cmd{Argv: []string{"id", "-un"}, Sudo: true}, "root"},
		{"sudo sets HOME", ssh.Cmd{Shell: `echo "$HOME"`, User: "nobody"}, "/nonexistent"},
		{"user wins over sudo", ssh.Cmd{Shell: "id -un", User: "nobody", Sudo: true}, "nobody"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, stdout, stderr := run(t, c, tc.cmd)
			if st.Code != 0 || strings.TrimSpace(stdout) != tc.want {
				t.Errorf("got %q (exit %+v, stderr %q), want %q", stdout, st, stderr, tc.want)
			}
		})
	}
}

func TestRunStdin(t *testing.T) {
	c := dial(t, sshdtest.Start(t, sshdtest.Options{}))
	t.Run("1 MiB through sha256sum", func(t *testing.T) {
		data := make([]byte, 1<<20)
		rand.Read(data)
		st, stdout, _ := run(t, c, ssh.Cmd{Argv: []string{"sha256sum"}, Stdin: bytes.NewReader(data)})
		want := fmt.Sprintf("%x", sha256.Sum256(data))
		if st.Code != 0 || !strings.HasPrefix(stdout, want+" ") {
			t.Errorf("sha256sum printed %q (exit %+v), want %s", stdout, st, want)
		}
	})
	t.Run("no stdin is closed", func(t *testing.T) {
		st, stdout, _ := run(t, c, ssh.Cmd{Argv: []string{"wc", "-c"}})
		if st.Code != 0 || strings.TrimSpace(stdout) != "0" {
			t.Errorf("wc -c printed %q (exit %+v), want 0", stdout, st)
		}
	})
	t.Run("streamed both ways while running", func(t *testing.T) {
		// The command answers only after its first line was seen here: so
		// output arrives live and input is sent as it comes.
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		done := make(chan error, 1)
		go func() {
			_, err := c.Run(testContext(t, 10*time.Second), ssh.Cmd{
				Shell: `echo ready; read x; echo "got $x"`, Stdin: inR, Stdout: outW,
			})
			outW.Close()
			done <- err
		}()
		buf := make([]byte, 6)
		if _, err := io.ReadFull(outR, buf); err != nil || string(buf) != "ready\n" {
			t.Fatalf("first output %q, %v", buf, err)
		}
		io.WriteString(inW, "hello\n")
		rest, _ := io.ReadAll(outR)
		if string(rest) != "got hello\n" {
			t.Errorf("then %q, want %q", rest, "got hello\n")
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
		inW.Close()
	})
}

func TestRunTTY(t *testing.T) {
	c := dial(t, sshdtest.Start(t, sshdtest.Options{}))
	for _, tc := range []struct {
		name string
		cmd  ssh.Cmd
		code int
		out  string
	}{
		{"stdin is a tty", ssh.Cmd{Argv: []string{"test", "-t", "0"}, TTY: true}, 0, ""},
		{"stdin is not a tty", ssh.Cmd{Argv: []string{"test", "-t", "0"}}, 1, ""},
		{"default size", ssh.Cmd{Argv: []string{"stty", "size"}, TTY: true}, 0, "24 80"},
		{"TERM from Env", ssh.Cmd{Shell: `echo "$TERM"`, TTY: true, Env: map[string]string{"TERM": "vt100"}}, 0, "vt100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, stdout, _ := run(t, c, tc.cmd)
			if st.Code != tc.code || strings.TrimSpace(stdout) != tc.out {
				t.Errorf("exit %d, output %q; want exit %d, output %q", st.Code, stdout, tc.code, tc.out)
			}
		})
	}
}

func TestRunCancel(t *testing.T) {
	c := dial(t, sshdtest.Start(t, sshdtest.Options{}))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	started := make(chan struct{})
	var once sync.Once
	out := writerFunc(func(p []byte) (int, error) {
		once.Do(func() { close(started) })
		return len(p), nil
	})
	result := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, ssh.Cmd{Shell: "echo started; exec sleep 30.25", Stdout: out})
		result <- err
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the command did not start within 10s")
	}
	cancel()
	begin := time.Now()
	select {
	case err := <-result:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
		if d := time.Since(begin); d > 3*time.Second {
			t.Errorf("Run took %s to return after cancel", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of cancel")
	}
	// The remote command got SIGTERM rather than living on.
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _, _ := run(t, c, ssh.Cmd{Argv: []string{"pgrep", "-f", "sleep 30.25"}})
		if st.Code == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the remote sleep is still running 5s after cancel")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestConnectionReused(t *testing.T) {
	c := dial(t, sshdtest.Start(t, sshdtest.Options{}))
	// SSH_CONNECTION names the client's address and port: one value for
	// every command means one TCP connection. Run concurrently, more than
	// sshd's MaxSessions (10) at once.
	const n = 200
	got := make([]string, n)
	errs := ssh.FanOut(testContext(t, 60*time.Second), n, 25, func(ctx context.Context, i int) error {
		var out bytes.Buffer
		st, err := c.Run(ctx, ssh.Cmd{Shell: `echo "$SSH_CONNECTION"`, Stdout: &out})
		if err == nil && st.Code != 0 {
			err = fmt.Errorf("exit %+v", st)
		}
		got[i] = strings.TrimSpace(out.String())
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	if got[0] == "" {
		t.Fatal("SSH_CONNECTION is empty")
	}
	for i, g := range got {
		if g != got[0] {
			t.Fatalf("run %d came over connection %q, run 0 over %q", i, g, got[0])
		}
	}
}

func TestHostKeyChanged(t *testing.T) {
	first := sshdtest.Start(t, sshdtest.Options{})
	knownHosts := sshdtest.KnownHostsFile(t, first)
	cfg := ssh.Config{Signers: []gossh.Signer{first.Signer}, KnownHosts: []string{knownHosts}}
	c, err := ssh.Dial(testContext(t, 10*time.Second), first.Endpoint, cfg)
	if err != nil {
		t.Fatalf("Dial to the pinned host: %v", err)
	}
	c.Close()
	first.Stop()

	// The machine is "rebuilt": same address, another host key.
	rebuilt := sshdtest.Start(t, sshdtest.Options{Port: first.Endpoint.Port, AuthorizedKeys: []string{authorizedLine(first.Signer)}})
	for _, acceptNew := range []bool{false, true} {
		cfg.AcceptNew = acceptNew
		_, err = ssh.Dial(testContext(t, 10*time.Second), rebuilt.Endpoint, cfg)
		var changed *ssh.HostKeyChangedError
		if !errors.As(err, &changed) {
			t.Fatalf("AcceptNew=%v: Dial returned %v, want a HostKeyChangedError", acceptNew, err)
		}
		t.Logf("AcceptNew=%v: %v", acceptNew, err)
		addr := rebuilt.Endpoint.Addr()
		if changed.Addr != addr || changed.KnownHosts != knownHosts {
			t.Errorf("error names %s in %s, want %s in %s", changed.Addr, changed.KnownHosts, addr, knownHosts)
		}
		wantCmd := fmt.Sprintf("ssh-keygen -R '[127.0.0.1]:%d' -f %s", rebuilt.Endpoint.Port, knownHosts)
		if msg := err.Error(); !strings.Contains(msg, wantCmd) || !strings.HasPrefix(msg, "host key of "+addr+" does not match the key pinned in "+knownHosts) {
			t.Errorf("message %q does not say what to do (%s)", msg, wantCmd)
		}
	}
	if data, _ := os.ReadFile(knownHosts); string(data) != first.KnownHostsLine+"\n" {
		t.Errorf("known_hosts was changed to %q", data)
	}

	// The same machine back with its old key is accepted again.
	rebuilt.Stop()
	back := sshdtest.Start(t, sshdtest.Options{Port: first.Endpoint.Port, HostKeyFile: first.HostKeyFile, AuthorizedKeys: []string{authorizedLine(first.Signer)}})
	cfg.AcceptNew = false
	c, err = ssh.Dial(testContext(t, 10*time.Second), back.Endpoint, cfg)
	if err != nil {
		t.Fatalf("Dial with the old host key back: %v", err)
	}
	c.Close()
}

func authorizedLine(s gossh.Signer) string {
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(s.PublicKey())))
}

func TestUnknownHost(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{})
	knownHosts := filepath.Join(t.TempDir(), "known_hosts") // does not exist yet
	cfg := ssh.Config{Signers: []gossh.Signer{srv.Signer}, KnownHosts: []string{knownHosts}}

	_, err := ssh.Dial(testContext(t, 10*time.Second), srv.Endpoint, cfg)
	var unknown *ssh.UnknownHostError
	if !errors.As(err, &unknown) || unknown.Addr != srv.Endpoint.Addr() {
		t.Fatalf("Dial returned %v, want an UnknownHostError for %s", err, srv.Endpoint.Addr())
	}
	t.Log(err)
	if msg := err.Error(); !strings.Contains(msg, knownHosts) || !strings.Contains(msg, "accept-new") {
		t.Errorf("message %q should name %s and accept-new", msg, knownHosts)
	}
	if _, err := os.Stat(knownHosts); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("known_hosts was written without AcceptNew: %v", err)
	}

	cfg.AcceptNew = true
	c, err := ssh.Dial(testContext(t, 10*time.Second), srv.Endpoint, cfg)
	if err != nil {
		t.Fatalf("Dial with AcceptNew: %v", err)
	}
	c.Close()
	data, err := os.ReadFile(knownHosts)
	if err != nil || string(data) != srv.KnownHostsLine+"\n" {
		t.Fatalf("known_hosts holds %q (%v), want %q", data, err, srv.KnownHostsLine+"\n")
	}

	cfg.AcceptNew = false
	c, err = ssh.Dial(testContext(t, 10*time.Second), srv.Endpoint, cfg)
	if err != nil {
		t.Fatalf("second Dial, without AcceptNew: %v", err)
	}
	c.Close()
}

func TestWrongKey(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{})
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	wrong, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	_, err = ssh.Dial(testContext(t, 20*time.Second), srv.Endpoint, ssh.Config{
		Signers:    []gossh.Signer{wrong},
		KnownHosts: []string{sshdtest.KnownHostsFile(t, srv)},
		RetryFor:   10 * time.Second, // a refused key is not retried
	})
	var auth *ssh.AuthError
	if !errors.As(err, &auth) {
		t.Fatalf("Dial returned %v, want an AuthError", err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("a refused key took %s: it was retried", d)
	}
	t.Log(err)
	addr := srv.Endpoint.Addr()
	if auth.User != "root" || auth.Addr != addr {
		t.Errorf("error names %s at %s, want root at %s", auth.User, auth.Addr, addr)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "SSH login as root at "+addr+" was refused") || !strings.Contains(msg, gossh.FingerprintSHA256(wrong.PublicKey())) {
		t.Errorf("message %q should name the user, address and offered key", msg)
	}
}
