//go:build unix

package ssh_test

// An in-process SSH server whose faults the tests choose: connections
// dropped after some bytes, host keys of several types, signals recorded.

import (
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
