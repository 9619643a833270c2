package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"
)

// Client is one SSH connection to a node, reused for every command and
// transfer on it. It is safe for concurrent use.
type Client struct {
	ep   Endpoint
	conn *gossh.Client
	// sessions bounds concurrent command sessions below sshd's MaxSessions.
	sessions chan struct{}
	// done is closed when the connection has ended, for whatever reason.
	done chan struct{}

	sftpMu sync.Mutex
	sftp   *sftp.Client // opened on first transfer, then reused

	closeOnce sync.Once
	closeErr  error
}

// Dial connects and logs in to ep, checking its host key against
// cfg.KnownHosts (under ep.HostKeyAlias when set) and retrying for
// cfg.RetryFor while sshd is not up.
func Dial(ctx context.Context, ep Endpoint, cfg Config) (*Client, error) {
	addr := ep.Addr()
	if ep.User == "" {
		return nil, fmt.Errorf("ssh to %s: no user given", addr)
	}
	if len(cfg.Signers) == 0 {
		return nil, fmt.Errorf("ssh to %s: no key to log in with (give a key file or load one into ssh-agent)", addr)
	}
	hk, err := newHostKeyChecker(cfg)
	if err != nil {
		return nil, fmt.Errorf("ssh to %s: %w", addr, err)
	}
	cc := &gossh.ClientConfig{
		User:              ep.User,
		Auth:              []gossh.AuthMethod{gossh.PublicKeys(cfg.Signers...)},
		HostKeyCallback:   hk.callback(ep),
		HostKeyAlgorithms: hk.algorithms(ep.hostKeyName()),
	}
	timeout := cfg.ConnectTimeout
	if timeout <= 0 {
		timeout = defaultConnectTimeout
	}

	start := time.Now()
	permanent := false
	conn, err := backoff.Retry(ctx, func() (*gossh.Client, error) {
		conn, err := dialOnce(ctx, ep, cc, timeout)
		if err != nil && cc.HostKeyAlgorithms != nil && strings.Contains(err.Error(), "no common algorithm for host key") {
			// The host no longer has a key of the pinned types: ask for any
			// key once more, so the check reports the changed key.
			cc.HostKeyAlgorithms = nil
			conn, err = dialOnce(ctx, ep, cc, timeout)
		}
		if err == nil || ctx.Err() != nil || retryable(err) {
			return conn, err
		}
		permanent = true
		return nil, backoff.Permanent(classify(ep, cfg.Signers, err))
	}, backoff.WithBackOff(&untilDeadline{
		BackOff:  &backoff.ExponentialBackOff{InitialInterval: firstBackoff, Multiplier: 2, MaxInterval: maxBackoff},
		deadline: start.Add(cfg.RetryFor),
	}), backoff.WithMaxElapsedTime(0))
	switch {
	case err == nil:
		return newClient(ep, conn), nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("ssh to %s: %w", addr, ctx.Err())
	case permanent:
		return nil, err
	}
	return nil, &UnreachableError{Addr: addr, After: time.Since(start), Err: err}
}

// untilDeadline is a BackOff whose waits end at deadline: the last one is
// cut short so that an attempt falls on the deadline, and there is none
// after it.
type untilDeadline struct {
	backoff.BackOff
	deadline time.Time
}

func (b *untilDeadline) NextBackOff() time.Duration {
	left := time.Until(b.deadline)
	if left <= 0 {
		return backoff.Stop
	}
	return min(b.BackOff.NextBackOff(), left)
}

// dialOnce makes one attempt, bounded by timeout and ctx for both the TCP
// connect and the SSH handshake.
func dialOnce(ctx context.Context, ep Endpoint, cc *gossh.ClientConfig, timeout time.Duration) (*gossh.Client, error) {
	addr := ep.Addr()
	deadline := time.Now().Add(timeout)
	var conn net.Conn
	var err error
	if ep.ProxyCommand != "" {
		conn, err = dialProxyCommand(ep.ProxyCommand, addr)
	} else {
		d := net.Dialer{Deadline: deadline, KeepAlive: 30 * time.Second}
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	c, chans, reqs, err := gossh.NewClientConn(conn, addr, cc)
	stop()
	if err != nil {
		conn.Close()
		return nil, err
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		c.Close()
		return nil, err
	}
	return gossh.NewClient(c, chans, reqs), nil
}

// retryable tells the errors of an sshd that is not up yet (or a port
// forwarder in front of one, which accepts and closes: EOF) from errors
// that retrying cannot fix (auth, host key, DNS).
func retryable(err error) bool {
	var ne net.Error
	return errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EHOSTUNREACH) || // a cloud instance still booting
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// classify turns a failed handshake into the error a user can act on.
func classify(ep Endpoint, signers []gossh.Signer, err error) error {
	var changed *HostKeyChangedError
	var unknown *UnknownHostError
	switch {
	case errors.As(err, &changed):
		return changed
	case errors.As(err, &unknown):
		return unknown
	case strings.Contains(err.Error(), "ssh: unable to authenticate"),
		// sshd's MaxAuthTries (6) ends the login early when an agent
		// offers many keys.
		strings.Contains(err.Error(), "Too many authentication failures"):
		keys := make([]string, len(signers))
		for i, s := range signers {
			keys[i] = fingerprint(s.PublicKey())
		}
		return &AuthError{User: ep.User, Addr: ep.Addr(), Keys: keys, Err: err}
	}
	return fmt.Errorf("ssh to %s: %w", ep.Addr(), err)
}

func newClient(ep Endpoint, conn *gossh.Client) *Client {
	c := &Client{
		ep:       ep,
		conn:     conn,
		sessions: make(chan struct{}, maxSessions),
		done:     make(chan struct{}),
	}
	go func() {
		conn.Wait()
		close(c.done)
	}()
	go c.keepAlive()
	return c
}

// keepAlive probes the connection while it is open and closes it when the
// server stops answering, which fails whatever is running on it.
func (c *Client) keepAlive() {
	tick := time.NewTicker(keepAliveInterval)
	defer tick.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-tick.C:
		}
		replied := make(chan error, 1)
		go func() {
			_, _, err := c.conn.SendRequest("keepalive@openssh.com", true, nil)
			replied <- err
		}()
		timer := time.NewTimer(keepAliveTimeout)
		select {
		case err := <-replied:
			timer.Stop()
			if err != nil {
				c.conn.Close()
				return
			}
		case <-timer.C:
			c.conn.Close()
			return
		case <-c.done:
			timer.Stop()
			return
		}
	}
}

// Endpoint is where the client is connected.
func (c *Client) Endpoint() Endpoint { return c.ep }

// Close ends the connection and everything running on it.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.sftpMu.Lock()
		if c.sftp != nil {
			c.sftp.Close()
		}
		c.sftpMu.Unlock()
		c.closeErr = c.conn.Close()
		if errors.Is(c.closeErr, net.ErrClosed) {
			c.closeErr = nil // the server or keepalive closed it first
		}
	})
	return c.closeErr
}

// lost wraps err from an operation on the connection, saying so plainly when
// the connection itself is gone.
func (c *Client) lost(err error) error {
	var status *sftp.StatusError
	if errors.As(err, &status) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrExist) {
		return err // the server answered: the connection is fine
	}
	// A dropped connection fails the operation a moment before the
	// transport notices; give it that moment.
	t := time.NewTimer(250 * time.Millisecond)
	defer t.Stop()
	select {
	case <-c.done:
		return fmt.Errorf("connection to %s lost: %w", c.ep.Addr(), err)
	case <-t.C:
		return err
	}
}

// openRetrying calls open (which opens a channel) again while the server
// refuses the channel for a while: sshd counts a just-closed session against
// MaxSessions until its main loop frees it, so a session opened right after
// another one ended can be refused ("no more sessions").
func openRetrying[T any](ctx context.Context, c *Client, open func() (T, error)) (T, error) {
	return backoff.Retry(ctx, func() (T, error) {
		v, err := open()
		var refused *gossh.OpenChannelError
		if err == nil || !errors.As(err, &refused) || c.closed() {
			return v, backoff.Permanent(err)
		}
		return v, err
	}, backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: 5 * time.Millisecond, Multiplier: 2, MaxInterval: 200 * time.Millisecond}),
		backoff.WithMaxElapsedTime(5*time.Second))
}

// closed reports whether the connection has ended.
func (c *Client) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// DialContext opens a TCP connection from the node to addr through the SSH
// connection (direct-tcpip, like ssh -L), so addresses only the node can
// reach (container or VPC networks, its own loopback) work from here.
func (c *Client) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := c.conn.DialContext(ctx, network, addr)
	if err != nil {
		return nil, c.lost(fmt.Errorf("forwarding to %s through %s: %w", addr, c.ep.Addr(), err))
	}
	return conn, nil
}
