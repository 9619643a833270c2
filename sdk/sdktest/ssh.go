package sdktest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/sdk"
	"golang.org/x/crypto/ssh"
)

// defaultSSHTimeout is how long the SSH checks wait for a node's sshd, as
// `e2e create --ssh-timeout` does by default.
const defaultSSHTimeout = 3 * time.Minute

// handshakeTimeout bounds one SSH connection attempt once TCP connected.
const handshakeTimeout = 15 * time.Second

// goneGrace is how long a node may still accept the suite's key after
// Destroy returned (a machine that is shutting down).
const goneGrace = 10 * time.Second

// clientKey is the suite's SSH key: its public half goes to every Create,
// as the key e2e generates for a cluster does, and its private half stays
// in memory so that the SSH checks log in as the core would.
type clientKey struct {
	signer     ssh.Signer
	authorized string // one authorized_keys line
}

func newClientKey() (clientKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return clientKey{}, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return clientKey{}, err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " sdktest"
	return clientKey{signer: signer, authorized: line}, nil
}

// hostKeyError is a node presenting a host key other than the one its
// backend reported: no retry makes it right.
type hostKeyError struct{ msg string }

func (e *hostKeyError) Error() string { return e.msg }

// parseHostKeys reads Node.HostKeys as the core does: each entry one
// authorized_keys line (a trailing comment is allowed), nothing more.
func parseHostKeys(entries []string) ([]ssh.PublicKey, error) {
	keys := make([]ssh.PublicKey, 0, len(entries))
	for i, e := range entries {
		pub, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(e))
		if err != nil {
			return nil, fmt.Errorf("HostKeys[%d] %q: %v (want one authorized_keys line, such as \"ssh-ed25519 AAAA... comment\")", i, e, err)
		}
		if len(bytes.TrimSpace(rest)) > 0 {
			return nil, fmt.Errorf("HostKeys[%d] holds more than one key: give one key per entry", i)
		}
		keys = append(keys, pub)
	}
	return keys, nil
}

// algorithmsFor are the host key algorithms that make sshd present a key
// of this type, as the core asks for them.
func algorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// dial logs in to ep with the suite's key. When want is not nil, the node
// must present exactly that host key; otherwise any key is taken (the
// core then relies on the user's known_hosts, which sdktest cannot see).
func (s *suite) dial(ctx context.Context, ep sdk.SSHEndpoint, want ssh.PublicKey) (*ssh.Client, error) {
	addr := net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port))
	cfg := &ssh.ClientConfig{
		User: sshUser(ep),
		Auth: []ssh.AuthMethod{ssh.PublicKeys(s.key.signer)},
		HostKeyCallback: func(_ string, _ net.Addr, got ssh.PublicKey) error {
			if want == nil || bytes.Equal(got.Marshal(), want.Marshal()) {
				return nil
			}
			return &hostKeyError{fmt.Sprintf("%s presents host key %s %s, but the backend reported %s %s for it",
				addr, got.Type(), ssh.FingerprintSHA256(got), want.Type(), ssh.FingerprintSHA256(want))}
		},
		Timeout: handshakeTimeout,
	}
	if want != nil {
		cfg.HostKeyAlgorithms = algorithmsFor(want.Type())
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(cc, chans, reqs), nil
}

// sshUser is the user the core logs in as when a backend gives none.
func sshUser(ep sdk.SSHEndpoint) string {
	if ep.User == "" {
		return "root"
	}
	return ep.User
}

// dialRetrying is dial, retried while the node's sshd comes up, for up to
// Config.SSHTimeout; a wrong host key ends it at once.
func (s *suite) dialRetrying(ctx context.Context, ep sdk.SSHEndpoint, want ssh.PublicKey) (*ssh.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SSHTimeout)
	defer cancel()
	for {
		c, err := s.dial(ctx, ep, want)
		var hk *hostKeyError
		switch {
		case err == nil:
			return c, nil
		case errors.As(err, &hk):
			return nil, hk
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no login within %v: %w", s.cfg.SSHTimeout, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// checkSSH logs in to every running node of nodes as the core does after
// Create and Start, checks that each presents every host key Create
// reported for it (pinned, by node name), runs a command the way `e2e run`
// does (no pty, variables set with env) and opens the sftp subsystem that
// `e2e send-file` and `download` use.
func (s *suite) checkSSH(t *testing.T, call string, nodes []sdk.Node, pinned map[string][]string) {
	t.Helper()
	var (
		mu   sync.Mutex
		errs []string
		wg   sync.WaitGroup
	)
	for _, n := range nodes {
		if stateOf(n) != sdk.NodeRunning {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.checkNodeSSH(t, n, pinned[n.Name]); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Sprintf("%s: node %q (%s@%s:%d): %v", call, n.Name, sshUser(n.SSH), n.SSH.Host, n.SSH.Port, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		t.Error(e)
	}
}

func (s *suite) checkNodeSSH(t *testing.T, n sdk.Node, hostKeys []string) error {
	keys, err := parseHostKeys(hostKeys)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		t.Logf("node %q reports no host keys: e2e will check it against the user's known_hosts", n.Name)
		keys = []ssh.PublicKey{nil}
	}
	ctx := s.ctx(t)
	// The first login waits for sshd; the node then presents each key.
	c, err := s.dialRetrying(ctx, n.SSH, keys[0])
	if err != nil {
		return err
	}
	defer c.Close()
	for _, k := range keys[1:] {
		other, err := s.dial(ctx, n.SSH, k)
		if err != nil {
			return fmt.Errorf("asking for its %s host key: %w", k.Type(), err)
		}
		other.Close()
	}
	if err := runTrue(c); err != nil {
		return err
	}
	return checkSFTP(c)
}

// runTrue runs a command as `e2e run` does: no pty, variables set by env
// in the command line (sshd's AcceptEnv is not needed).
func runTrue(c *ssh.Client) error {
	sess, err := c.NewSession()
	if err != nil {
		return fmt.Errorf("open a session: %w", err)
	}
	defer sess.Close()
	var out bytes.Buffer
	sess.Stdout, sess.Stderr = &out, &out
	if err := sess.Run("env E2E_RUN_ID=sdktest true"); err != nil {
		return fmt.Errorf("command `env E2E_RUN_ID=sdktest true` (as e2e run sends one): %v %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}

// SFTP packet types (draft-ietf-secsh-filexfer-02, the version OpenSSH
// speaks).
const (
	sftpInit     = 1
	sftpVersion  = 2
	sftpRealPath = 16
	sftpStatus   = 101
	sftpName     = 104
)

// checkSFTP starts the sftp subsystem and asks it where "." is: what
// e2e's file transfers do first.
func checkSFTP(c *ssh.Client) error {
	sess, err := c.NewSession()
	if err != nil {
		return fmt.Errorf("open a session: %w", err)
	}
	defer sess.Close()
	w, err := sess.StdinPipe()
	if err != nil {
		return err
	}
	r, err := sess.StdoutPipe()
	if err != nil {
		return err
	}
	const hint = "e2e send-file and download need the sftp subsystem: add `Subsystem sftp internal-sftp` (or the path of sftp-server) to the node's sshd_config"
	if err := sess.RequestSubsystem("sftp"); err != nil {
		return fmt.Errorf("sftp: %v; %s", err, hint)
	}
	if err := writePacket(w, sftpInit, binary.BigEndian.AppendUint32(nil, 3)); err != nil {
		return fmt.Errorf("sftp: %v; %s", err, hint)
	}
	if typ, _, err := readPacket(r); err != nil || typ != sftpVersion {
		return fmt.Errorf("sftp: no version reply (type %d, %v); %s", typ, err, hint)
	}
	req := binary.BigEndian.AppendUint32(nil, 1) // request id
	req = binary.BigEndian.AppendUint32(req, 1)
	req = append(req, '.')
	if err := writePacket(w, sftpRealPath, req); err != nil {
		return fmt.Errorf("sftp: %v", err)
	}
	typ, body, err := readPacket(r)
	switch {
	case err != nil:
		return fmt.Errorf("sftp: realpath of the login directory: %v", err)
	case typ == sftpStatus:
		return fmt.Errorf("sftp: realpath of the login directory failed (status %x)", body)
	case typ != sftpName:
		return fmt.Errorf("sftp: realpath of the login directory: reply of type %d", typ)
	}
	return nil
}

func writePacket(w io.Writer, typ byte, payload []byte) error {
	b := binary.BigEndian.AppendUint32(nil, uint32(1+len(payload)))
	b = append(append(b, typ), payload...)
	_, err := w.Write(b)
	return err
}

func readPacket(r io.Reader) (byte, []byte, error) {
	var n uint32
	if err := binary.Read(r, binary.BigEndian, &n); err != nil {
		return 0, nil, err
	}
	if n == 0 || n > 256<<10 {
		return 0, nil, fmt.Errorf("packet of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, nil, err
	}
	return b[0], b[1:], nil
}

// checkNodesGone checks that no node of a destroyed cluster still lets the
// suite's key in: a Destroy that only forgets a cluster, leaving its
// machines running, fails here.
func (s *suite) checkNodesGone(t *testing.T, nodes []sdk.Node) {
	t.Helper()
	var (
		mu   sync.Mutex
		errs []string
		wg   sync.WaitGroup
	)
	for _, n := range nodes {
		if n.SSH.Host == "" || n.SSH.Port <= 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(goneGrace)
			for {
				ctx, cancel := context.WithTimeout(s.ctx(t), handshakeTimeout)
				c, err := s.dial(ctx, n.SSH, nil)
				cancel()
				if err != nil {
					return // refused, or not our key: the machine is gone
				}
				c.Close()
				if time.Now().After(deadline) {
					mu.Lock()
					errs = append(errs, fmt.Sprintf("node %q at %s:%d still accepts the cluster's key %v after Destroy returned: Destroy must remove the machines, not only forget them",
						n.Name, n.SSH.Host, n.SSH.Port, goneGrace))
					mu.Unlock()
					return
				}
				time.Sleep(500 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		t.Error(e)
	}
}

// hostKeysOf returns the host keys of a cluster's nodes by node name.
func hostKeysOf(c *sdk.Cluster) map[string][]string {
	m := make(map[string][]string, len(c.Nodes))
	for _, n := range c.Nodes {
		m[n.Name] = n.HostKeys
	}
	return m
}
