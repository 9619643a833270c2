//go:build unix

package ssh_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/internal/ssh"
	"github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// fakeServer is an in-process SSH server that serves SFTP on the real file
// system, for faults a real sshd cannot be made to have.
type fakeServer struct {
	ep        ssh.Endpoint
	hostKeys  []gossh.Signer
	clientKey gossh.Signer
	// dropAfter closes a connection once the client has sent this many
	// bytes (0: never).
	dropAfter int64
	// conns counts accepted SSH connections.
	conns atomic.Int32
	// commands and signals receive what the client asked for.
	commands, signals chan string
}

func newSigner(t *testing.T, key crypto.Signer) gossh.Signer {
	t.Helper()
	s, err := gossh.NewSignerFromSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ed25519Signer(t *testing.T) gossh.Signer {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	return newSigner(t, priv)
}

func ecdsaSigner(t *testing.T) gossh.Signer {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return newSigner(t, priv)
}

func rsaSigner(t *testing.T) gossh.Signer {
	priv, _ := rsa.GenerateKey(rand.Reader, 2048)
	return newSigner(t, priv)
}

// newFakeServer makes a server with an ed25519 host key (or hostKeys) and
// a fresh authorised client key; it does not listen yet.
func newFakeServer(t *testing.T, hostKeys ...gossh.Signer) *fakeServer {
	if len(hostKeys) == 0 {
		hostKeys = []gossh.Signer{ed25519Signer(t)}
	}
	return &fakeServer{
		hostKeys:  hostKeys,
		clientKey: ed25519Signer(t),
		commands:  make(chan string, 100),
		signals:   make(chan string, 100),
	}
}

// listen serves on a free loopback port (or addr) until the test ends.
func (s *fakeServer) listen(t *testing.T, addr string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s.serve(t, l)
}

func (s *fakeServer) serve(t *testing.T, l net.Listener) {
	s.ep = ssh.Endpoint{Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, User: "root"}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.acceptLoop(l)
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
}

// acceptLoop serves connections until l is closed and they have ended.
func (s *fakeServer) acceptLoop(l net.Listener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		wg.Go(func() { s.handle(conn) })
	}
}

func (s *fakeServer) config() *gossh.ServerConfig {
	allowed := string(s.clientKey.PublicKey().Marshal())
	cfg := &gossh.ServerConfig{
		PublicKeyCallback: func(_ gossh.ConnMetadata, key gossh.PublicKey) (*gossh.Permissions, error) {
			if string(key.Marshal()) == allowed {
				return nil, nil
			}
			return nil, errors.New("key not authorised")
		},
	}
	for _, k := range s.hostKeys {
		cfg.AddHostKey(k)
	}
	return cfg
}

func (s *fakeServer) handle(raw net.Conn) {
	defer raw.Close()
	var conn net.Conn = raw
	if s.dropAfter > 0 {
		conn = &droppingConn{Conn: raw, left: s.dropAfter}
	}
	sc, chans, reqs, err := gossh.NewServerConn(conn, s.config())
	if err != nil {
		return
	}
	defer sc.Close()
	s.conns.Add(1)
	go gossh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(gossh.UnknownChannelType, "only sessions")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			return
		}
		go s.serveSession(ch, chReqs)
	}
}

// serveSession runs the sftp subsystem, or a command with sh -c that a
// "signal" request can stop (OpenSSH refuses those for root logins, so only
// this server shows the path where the signal is accepted).
func (s *fakeServer) serveSession(ch gossh.Channel, reqs <-chan *gossh.Request) {
	defer ch.Close()
	var proc *exec.Cmd
	exited := make(chan struct{})
	for req := range reqs {
		switch {
		case req.Type == "subsystem" && string(req.Payload[4:]) == "sftp":
			req.Reply(true, nil)
			go gossh.DiscardRequests(reqs)
			srv, err := sftp.NewServer(ch)
			if err != nil {
				return
			}
			srv.Serve()
			return
		case req.Type == "exec" && proc == nil:
			var payload struct{ Command string }
			gossh.Unmarshal(req.Payload, &payload)
			s.commands <- payload.Command
			proc = exec.Command("sh", "-c", payload.Command)
			proc.Stdin, proc.Stdout, proc.Stderr = ch, ch, ch.Stderr()
			proc.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := proc.Start(); err != nil {
				req.Reply(false, nil)
				return
			}
			req.Reply(true, nil)
			go func() {
				proc.Wait()
				ch.SendRequest("exit-status", false, gossh.Marshal(struct{ Status uint32 }{uint32(proc.ProcessState.ExitCode())}))
				close(exited)
				ch.Close()
			}()
		case req.Type == "signal" && proc != nil:
			var payload struct{ Signal string }
			gossh.Unmarshal(req.Payload, &payload)
			s.signals <- payload.Signal
			req.Reply(syscall.Kill(-proc.Process.Pid, syscall.SIGTERM) == nil, nil)
		default:
			req.Reply(false, nil)
		}
	}
	if proc != nil {
		<-exited
	}
}

// droppingConn cuts the connection once the peer has sent enough bytes,
// like a network failure in the middle of a transfer.
type droppingConn struct {
	net.Conn
	mu   sync.Mutex
	left int64
}

func (c *droppingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.left -= int64(n)
	if c.left <= 0 {
		c.Conn.Close()
		return 0, net.ErrClosed
	}
	return n, err
}

// knownHostsFor pins keys for ep in a new known_hosts file.
func knownHostsFor(t *testing.T, ep ssh.Endpoint, keys ...gossh.PublicKey) string {
	t.Helper()
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(knownhosts.Line([]string{knownhosts.Normalize(ep.Addr())}, k) + "\n")
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (s *fakeServer) cfg(t *testing.T) ssh.Config {
	return ssh.Config{
		Signers:    []gossh.Signer{s.clientKey},
		KnownHosts: []string{knownHostsFor(t, s.ep, s.hostKeys[0].PublicKey())},
	}
}

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
