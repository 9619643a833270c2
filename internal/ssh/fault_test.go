//go:build unix

package ssh_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/internal/ssh"
	gossh "golang.org/x/crypto/ssh"
)

func TestDroppedMidUpload(t *testing.T) {
	srv := newFakeServer(t)
	srv.dropAfter = 4 << 20
	srv.listen(t, "127.0.0.1:0")
	c, err := ssh.Dial(testContext(t, 10*time.Second), srv.ep, srv.cfg(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	src := filepath.Join(t.TempDir(), "payload.bin")
	writeRandomFile(t, src, 16<<20, 0o644)
	remote := t.TempDir()
	dst := filepath.Join(remote, "payload.bin")
	err = c.Upload(testContext(t, 20*time.Second), src, dst, nil)
	if err == nil {
		t.Fatal("Upload succeeded through a dropped connection")
	}
	t.Logf("Upload: %v", err)
	if want := "connection to " + srv.ep.Addr() + " lost"; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), dst) {
		t.Errorf("error %q should say %q and name %s", err, want, dst)
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists after the failed upload (%v)", dst, err)
	}
	// The temporary file cannot be removed over a dead connection; it must
	// at least be hidden, and never at dst.
	for _, name := range dirNames(t, remote) {
		if !strings.HasPrefix(name, ".payload.bin.e2e-tmp-") {
			t.Errorf("the failed upload left %s in %s", name, remote)
		}
	}
	if _, err := c.Run(testContext(t, 5*time.Second), ssh.Cmd{Argv: []string{"true"}}); err == nil {
		t.Error("Run on the dropped connection did not fail")
	}
}

func TestDialRetriesUntilSSHDIsUp(t *testing.T) {
	for _, tc := range []struct {
		name string
		// early is what the port does before sshd is up.
		early func(l net.Listener)
	}{
		{"connection refused", nil},
		{"accepted and closed, like a port forwarder", func(l net.Listener) {
			for {
				conn, err := l.Accept()
				if err != nil {
					return
				}
				conn.Close()
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t)
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr().String()
			port := l.Addr().(*net.TCPAddr).Port
			srv.ep = ssh.Endpoint{Host: "127.0.0.1", Port: port, User: "root"}
			if tc.early == nil {
				l.Close()
			} else {
				go tc.early(l)
			}
			late := make(chan net.Listener, 1)
			go func() {
				time.Sleep(1500 * time.Millisecond)
				l.Close()
				l2, err := net.Listen("tcp", addr)
				if err != nil {
					late <- nil
					return
				}
				late <- l2
				srv.acceptLoop(l2)
			}()
			t.Cleanup(func() {
				if l2 := <-late; l2 != nil {
					l2.Close()
				}
			})

			begin := time.Now()
			cfg := srv.cfg(t)
			cfg.RetryFor = 10 * time.Second
			c, err := ssh.Dial(testContext(t, 15*time.Second), srv.ep, cfg)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			c.Close()
			if d := time.Since(begin); d < 1400*time.Millisecond || d > 5*time.Second {
				t.Errorf("Dial took %s for an sshd up after 1.5s", d)
			}
		})
	}
}

func TestDialGivesUp(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		var held []net.Conn // accepted, never answered
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()

	for _, tc := range []struct {
		name    string
		port    int
		timeout time.Duration
		wantErr error
	}{
		{"nothing listening", closedPort, 0, syscall.ECONNREFUSED},
		{"no SSH banner", silent.Addr().(*net.TCPAddr).Port, 200 * time.Millisecond, os.ErrDeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := ssh.Endpoint{Host: "127.0.0.1", Port: tc.port, User: "root"}
			retryFor := 700 * time.Millisecond
			begin := time.Now()
			_, err := ssh.Dial(testContext(t, 10*time.Second), ep, ssh.Config{
				Signers:        []gossh.Signer{ed25519Signer(t)},
				ConnectTimeout: tc.timeout,
				RetryFor:       retryFor,
			})
			elapsed := time.Since(begin)
			var unreachable *ssh.UnreachableError
			if !errors.As(err, &unreachable) {
				t.Fatalf("Dial returned %v, want an UnreachableError", err)
			}
			t.Log(err)
			if unreachable.Addr != ep.Addr() || unreachable.After < retryFor || !errors.Is(err, tc.wantErr) {
				t.Errorf("error %+v: want %s, after >= %s, caused by %v", unreachable, ep.Addr(), retryFor, tc.wantErr)
			}
			if !strings.Contains(err.Error(), ep.Addr()) {
				t.Errorf("message %q does not name %s", err, ep.Addr())
			}
			if elapsed > 3*time.Second {
				t.Errorf("Dial took %s with RetryFor %s", elapsed, retryFor)
			}
		})
	}

	t.Run("cancelled while retrying", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		ep := ssh.Endpoint{Host: "127.0.0.1", Port: closedPort, User: "root"}
		begin := time.Now()
		_, err := ssh.Dial(ctx, ep, ssh.Config{Signers: []gossh.Signer{ed25519Signer(t)}, RetryFor: time.Minute})
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(begin) > 2*time.Second {
			t.Errorf("Dial returned %v after %s, want the context's error at once", err, time.Since(begin))
		}
	})
}

// TestHostKeyAlgorithmFromPinnedKey: a server with several host keys is
// checked against whichever one is pinned, not the one it prefers.
func TestHostKeyAlgorithmFromPinnedKey(t *testing.T) {
	keys := map[string]gossh.Signer{"ed25519": ed25519Signer(t), "ecdsa": ecdsaSigner(t), "rsa": rsaSigner(t)}
	srv := newFakeServer(t, keys["ed25519"], keys["ecdsa"], keys["rsa"])
	srv.listen(t, "127.0.0.1:0")
	for _, pinned := range []string{"ed25519", "ecdsa", "rsa"} {
		t.Run(pinned, func(t *testing.T) {
			cfg := ssh.Config{
				Signers:    []gossh.Signer{srv.clientKey},
				KnownHosts: []string{knownHostsFor(t, srv.ep, keys[pinned].PublicKey())},
			}
			c, err := ssh.Dial(testContext(t, 10*time.Second), srv.ep, cfg)
			if err != nil {
				t.Fatalf("Dial with only the %s key pinned: %v", pinned, err)
			}
			c.Close()
		})
	}
	t.Run("pinned key type no longer offered", func(t *testing.T) {
		// The machine was rebuilt with only an ed25519 key; an ECDSA key
		// is pinned. That is a changed key, not a protocol error.
		other := newFakeServer(t)
		other.listen(t, "127.0.0.1:0")
		kh := knownHostsFor(t, other.ep, ecdsaSigner(t).PublicKey())
		_, err := ssh.Dial(testContext(t, 10*time.Second), other.ep, ssh.Config{Signers: []gossh.Signer{other.clientKey}, KnownHosts: []string{kh}})
		var changed *ssh.HostKeyChangedError
		if !errors.As(err, &changed) || changed.KnownHosts != kh {
			t.Fatalf("Dial returned %v, want a HostKeyChangedError naming %s", err, kh)
		}
	})
}

func TestAcceptNewConcurrent(t *testing.T) {
	// Creating a cluster dials every new node at once with accept-new:
	// each one's key is recorded, and none is garbled.
	const n = 6
	servers := make([]*fakeServer, n)
	for i := range servers {
		servers[i] = newFakeServer(t)
		servers[i].listen(t, "127.0.0.1:0")
	}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	errs := ssh.FanOut(testContext(t, 20*time.Second), n, 0, func(ctx context.Context, i int) error {
		c, err := ssh.Dial(ctx, servers[i].ep, ssh.Config{Signers: []gossh.Signer{servers[i].clientKey}, KnownHosts: []string{kh}, AcceptNew: true})
		if err == nil {
			c.Close()
		}
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Dial %d: %v", i, err)
		}
	}
	for i, s := range servers {
		c, err := ssh.Dial(testContext(t, 10*time.Second), s.ep, ssh.Config{Signers: []gossh.Signer{s.clientKey}, KnownHosts: []string{kh}})
		if err != nil {
			t.Errorf("Dial %d again without AcceptNew: %v", i, err)
			continue
		}
		c.Close()
	}
	data, _ := os.ReadFile(kh)
	if lines := strings.Count(string(data), "\n"); lines != n {
		t.Errorf("known_hosts has %d lines, want %d:\n%s", lines, n, data)
	}
}

// TestCancelSignalsCommand: where the server accepts signals (any login
// but root on OpenSSH), a cancelled command gets SIGTERM through the
// session, and nothing else is run to find it.
func TestCancelSignalsCommand(t *testing.T) {
	srv := newFakeServer(t)
	srv.listen(t, "127.0.0.1:0")
	c, err := ssh.Dial(testContext(t, 10*time.Second), srv.ep, srv.cfg(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithCancel(testContext(t, 20*time.Second))
	result := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, ssh.Cmd{Argv: []string{"sleep", "30"}})
		result <- err
	}()
	select {
	case cmd := <-srv.commands:
		if !strings.HasSuffix(cmd, " sleep 30") {
			t.Errorf("server ran %q", cmd)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the command did not start")
	}
	cancel()
	select {
	case err := <-result:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of cancel")
	}
	select {
	case sig := <-srv.signals:
		if sig != "TERM" {
			t.Errorf("signal %q, want TERM", sig)
		}
	default:
		t.Error("no signal request reached the server")
	}
	select {
	case cmd := <-srv.commands:
		t.Errorf("after an accepted signal, the client also ran %q", cmd)
	case <-time.After(200 * time.Millisecond):
	}
}
