// Package sshdtest starts private OpenSSH sshd servers on 127.0.0.1 for
// tests, each with its own host key, config and authorised client key.
package sshdtest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
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

	"github.com/e2e-tool/e2e/internal/proc"
	"github.com/e2e-tool/e2e/internal/ssh"
	"github.com/e2e-tool/e2e/internal/testbin"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHD is the OpenSSH server binary the helper runs.
const SSHD = "/usr/sbin/sshd"

// Server is a running sshd.
type Server struct {
	Endpoint       ssh.Endpoint    // 127.0.0.1, its port, user root
	HostKey        gossh.PublicKey // the key it presents
	KnownHostsLine string          // known_hosts entry pinning HostKey
	Signer         gossh.Signer    // a client key authorised for root
	Dir            string          // its config, keys, pid file

	// HostKeyFile is the private host key, for Options.HostKeyFile.
	HostKeyFile string

	noSFTP   bool
	cmd      *exec.Cmd
	exited   chan struct{}
	log      *syncBuffer
	stopOnce sync.Once
}

// Options adjust a Server.
type Options struct {
	// AuthorizedKeys are more authorized_keys lines for root.
	AuthorizedKeys []string
	// Port to listen on; 0 picks a free one.
	Port int
	// HostKeyFile reuses an existing private host key instead of a fresh
	// one. (To simulate a changed key, start another server on the same
	// Port without it.)
	HostKeyFile string
	// NoSFTP leaves out the sftp subsystem, as a node whose sshd_config
	// has no Subsystem line.
	NoSFTP bool
}

// Start runs a private sshd -D -e on 127.0.0.1 and waits until it answers
// with an SSH banner; t.Cleanup stops it. Without sshd, or when not root,
// the test is skipped. Its sessions get SHLVL=1, which keeps bash from
// sourcing this machine's ~/.bashrc (slow or chatty) for every command.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	_, err := os.Stat(SSHD)
	testbin.Require(t, "OpenSSH's sshd (make deps installs openssh-server)", err)
	if os.Geteuid() != 0 {
		testbin.Require(t, "root", errors.New("sshdtest runs sshd, which must run as root to log users in"))
	}
	// sshd refuses to start without its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
	// A short directory: t.TempDir() paths get long, and sshd logs them.
	dir, err := os.MkdirTemp("", "sshd-")
	if err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	s := &Server{Dir: dir, HostKeyFile: filepath.Join(dir, "ssh_host_ed25519_key"), noSFTP: opts.NoSFTP}
	if opts.HostKeyFile != "" {
		pemBytes, err := os.ReadFile(opts.HostKeyFile)
		if err != nil {
			t.Fatalf("sshdtest: host key: %v", err)
		}
		if err := os.WriteFile(s.HostKeyFile, pemBytes, 0o600); err != nil {
			t.Fatalf("sshdtest: %v", err)
		}
	} else {
		writeNewKey(t, s.HostKeyFile)
	}
	hostSigner := loadSigner(t, s.HostKeyFile)
	s.HostKey = hostSigner.PublicKey()

	clientKey := filepath.Join(dir, "client_ed25519_key")
	writeNewKey(t, clientKey)
	s.Signer = loadSigner(t, clientKey)
	authorized := append([]string{strings.TrimSpace(string(gossh.MarshalAuthorizedKey(s.Signer.PublicKey())))}, opts.AuthorizedKeys...)
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(strings.Join(authorized, "\n")+"\n"), 0o600); err != nil {
		t.Fatalf("sshdtest: %v", err)
	}

	// A free port can be taken by someone else before sshd binds it: retry.
	for attempt := 0; ; attempt++ {
		port := opts.Port
		if port == 0 {
			port = freePort(t)
		}
		err := s.start(t, port)
		if err == nil {
			break
		}
		if opts.Port != 0 || attempt == 4 {
			t.Fatalf("sshdtest: %v", err)
		}
	}
	s.Endpoint = ssh.Endpoint{Host: "127.0.0.1", Port: s.Endpoint.Port, User: "root"}
	s.KnownHostsLine = knownhosts.Line([]string{knownhosts.Normalize(s.Endpoint.Addr())}, s.HostKey)
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() && s.log.Len() > 0 {
			t.Logf("sshd on %s logged:\n%s", s.Endpoint.Addr(), s.log.String())
		}
	})
	return s
}

func (s *Server) start(t testing.TB, port int) error {
	sftp := "Subsystem sftp internal-sftp"
	if s.noSFTP {
		sftp = ""
	}
	config := strings.Join([]string{
		"Port " + strconv.Itoa(port),
		"ListenAddress 127.0.0.1",
		"HostKey " + s.HostKeyFile,
		"AuthorizedKeysFile " + filepath.Join(s.Dir, "authorized_keys"),
		"PermitRootLogin prohibit-password",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"StrictModes no",
		"PidFile " + filepath.Join(s.Dir, "sshd.pid"),
		sftp,
		"LogLevel ERROR",
		// bash sources ~/.bashrc when it guesses sshd started it, and this
		// machine's root ~/.bashrc is no part of the test (it may be slow or
		// print). SHLVL=1 makes bash see itself nested and skip it.
		"SetEnv SHLVL=1",
		"",
	}, "\n")
	configFile := filepath.Join(s.Dir, "sshd_config")
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		return err
	}
	s.log = &syncBuffer{}
	// Its own process group: stopping it also ends the per-connection
	// processes still in that group.
	cmd := proc.Command(context.Background(), SSHD, "-D", "-e", "-f", configFile)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start sshd: %w", err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func() {
		cmd.Wait()
		close(s.exited)
	}()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("sshd on port %d exited at start: %s", port, strings.TrimSpace(s.log.String()))
		default:
		}
		if banner(addr) {
			s.Endpoint.Port = port
			return nil
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("sshd on port %d did not answer within 10s: %s", port, s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// banner tells whether an SSH server answers at addr.
func banner(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	b := make([]byte, 4)
	_, err = conn.Read(b)
	return err == nil && string(b) == "SSH-"
}

// Stop ends sshd and every connection it serves. It is safe to call twice.
func (s *Server) Stop() {
	s.stopOnce.Do(s.kill)
}

func (s *Server) kill() {
	_ = proc.KillGroup(s.cmd)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
	}
}

// KnownHostsFile writes a known_hosts file pinning the servers' host keys
// and returns its path.
func KnownHostsFile(t testing.TB, servers ...*Server) string {
	t.Helper()
	var b strings.Builder
	for _, s := range servers {
		b.WriteString(s.KnownHostsLine + "\n")
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
	return path
}

func writeNewKey(t testing.TB, path string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
}

func loadSigner(t testing.TB, path string) gossh.Signer {
	t.Helper()
	signer, err := ssh.LoadKey(path)
	if err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
	return signer
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer collects sshd's log from its two output streams.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}
