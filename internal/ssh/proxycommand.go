package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/e2e-tool/e2e/internal/lastlines"
	"github.com/e2e-tool/e2e/internal/proc"
)

// ProxyTokens are the values of a ProxyCommand's % tokens for one node, as
// OpenSSH's ProxyCommand has them: %h the host, %p the port, %r the user,
// and (e2e's own) %n the node's reference, such as master_0. %% is a
// literal %.
type ProxyTokens struct {
	Host string
	Port int
	User string
	Node string
}

// ExpandProxyCommand replaces the % tokens of a ProxyCommand. An unknown
// token, or a % at the end, is an error naming it; values are put in as
// they are, unquoted, as OpenSSH does.
func ExpandProxyCommand(command string, t ProxyTokens) (string, error) {
	var b strings.Builder
	for i := 0; i < len(command); i++ {
		if command[i] != '%' {
			b.WriteByte(command[i])
			continue
		}
		if i+1 == len(command) {
			return "", errors.New("ends with a lone % (write %% for a literal %)")
		}
		i++
		switch command[i] {
		case '%':
			b.WriteByte('%')
		case 'h':
			b.WriteString(t.Host)
		case 'p':
			b.WriteString(strconv.Itoa(t.Port))
		case 'r':
			b.WriteString(t.User)
		case 'n':
			b.WriteString(t.Node)
		default:
			return "", fmt.Errorf("unknown token %%%c (known: %%h host, %%p port, %%r user, %%n node, %%%% a literal %%)", command[i])
		}
	}
	return b.String(), nil
}

// proxyStderrLines is how many of a ProxyCommand's last stderr lines an
// error quotes.
const proxyStderrLines = 4

// dialProxyCommand starts command (already expanded) as OpenSSH runs a
// ProxyCommand (`/bin/sh -c "exec COMMAND"`), and returns a connection over its stdin and
// stdout. The command runs in a process group of its own that Close ends.
// Its addresses are addr (host:port), as the host key check expects.
func dialProxyCommand(command, addr string) (net.Conn, error) {
	// Our ends are *os.File pipes, so that deadlines work on them.
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	// The command lives as long as the connection, not as the dial's ctx.
	ctx, cancel := context.WithCancel(context.Background())
	cmd := proc.Command(ctx, "/bin/sh", "-c", "exec "+command)
	c := &proxyConn{command: command, addr: addr, cmd: cmd, in: inW, out: outR, cancel: cancel, exited: make(chan struct{})}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, &c.stderr
	err = cmd.Start()
	// The child has its own copies of its ends now.
	inR.Close()
	outW.Close()
	if err != nil {
		cancel()
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("ProxyCommand %q: %w", command, err)
	}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// proxyConn is a net.Conn over the pipes of a ProxyCommand.
type proxyConn struct {
	command string
	addr    string
	in      *os.File // the command's stdin
	out     *os.File // the command's stdout
	stderr  lastlines.Writer
	cmd     *exec.Cmd
	cancel  context.CancelFunc
	exited  chan struct{}
	waitErr error // set before exited is closed

	closeOnce sync.Once
}

func (c *proxyConn) Read(p []byte) (int, error) {
	n, err := c.out.Read(p)
	if errors.Is(err, io.EOF) {
		return n, c.ended(err)
	}
	return n, err
}

func (c *proxyConn) Write(p []byte) (int, error) {
	n, err := c.in.Write(p)
	if err != nil {
		return n, c.ended(err)
	}
	return n, nil
}

// ended explains why reading or writing failed: when the command exited,
// err comes back wrapped with its exit status and last stderr, so the user
// sees why.
func (c *proxyConn) ended(err error) error {
	t := time.NewTimer(200 * time.Millisecond)
	defer t.Stop()
	select {
	case <-c.exited:
	case <-t.C:
		return err
	}
	status := "ended"
	if c.waitErr != nil {
		status = c.waitErr.Error()
		var ee *exec.ExitError
		if errors.As(c.waitErr, &ee) {
			status = ee.ProcessState.String()
		}
	}
	msg := fmt.Sprintf("ProxyCommand %q %s", c.command, status)
	if last := c.stderr.Last(proxyStderrLines); len(last) > 0 {
		msg += ": " + strings.Join(last, "; ")
	}
	return &proxyEndedError{msg: msg, err: err}
}

// proxyEndedError is the end of a ProxyCommand, with why. It is the end
// of the connection (io.EOF) whether reading saw the end of its output or
// writing a broken pipe, so that Dial retries a command that exits while
// the node boots.
type proxyEndedError struct {
	msg string
	err error
}

func (e *proxyEndedError) Error() string   { return e.msg }
func (e *proxyEndedError) Unwrap() []error { return []error{e.err, io.EOF} }

// Close closes the command's stdin and stdout and ends its process group
// (OpenSSH sends SIGHUP), since a relay such as `nc` may not notice the end
// of its input, and what it started in the background may hold its output.
func (c *proxyConn) Close() error {
	c.closeOnce.Do(func() {
		c.in.Close()
		c.out.Close()
		c.cancel() // a command still running: SIGTERM to its group
		t := time.NewTimer(100 * time.Millisecond)
		defer t.Stop()
		select {
		case <-c.exited:
		case <-t.C:
			// The command ended but left processes holding its stderr
			// (Wait waits for them), or ignores SIGTERM.
			_ = proc.KillGroup(c.cmd)
			<-c.exited
		}
	})
	return nil
}

func (c *proxyConn) LocalAddr() net.Addr  { return proxyAddr(c.addr) }
func (c *proxyConn) RemoteAddr() net.Addr { return proxyAddr(c.addr) }

func (c *proxyConn) SetDeadline(t time.Time) error {
	return errors.Join(c.in.SetWriteDeadline(t), c.out.SetReadDeadline(t))
}
func (c *proxyConn) SetReadDeadline(t time.Time) error  { return c.out.SetReadDeadline(t) }
func (c *proxyConn) SetWriteDeadline(t time.Time) error { return c.in.SetWriteDeadline(t) }

// proxyAddr is the host:port a ProxyCommand connection stands for.
type proxyAddr string

func (a proxyAddr) Network() string { return "proxycommand" }
func (a proxyAddr) String() string  { return string(a) }
