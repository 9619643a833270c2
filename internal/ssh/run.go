package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/e2e-tool/e2e/internal/shell"
	"github.com/e2e-tool/e2e/internal/transfer"
	gossh "golang.org/x/crypto/ssh"
)

// Cmd is a command to run on a node.
type Cmd struct {
	// Argv is quoted for the remote POSIX shell (see shell.Quote).
	Argv []string
	// Shell is a shell command line used as is, run by the login user's
	// shell ($SHELL -c) whoever it runs as. Exactly one of Argv and Shell
	// is set.
	Shell string
	// Env is set with `env K=V …` in the remote command, sorted by key:
	// sshd's default AcceptEnv would drop variables sent the SSH way. The
	// command also gets E2E_RUN_ID, by which a cancelled command is found.
	Env map[string]string
	// User runs the command as this user via `sudo -n -H -u USER --`.
	User string
	// Sudo runs the command as root via `sudo -n -H --`; nothing is added
	// when logged in as root (or as User).
	Sudo bool
	// TTY requests a pty: TERM from Env or the local environment, the size
	// of the local terminal when Stdin is one (else 80x24). When Stdin is a
	// terminal it is put in raw mode for the duration, like ssh -t does.
	TTY bool
	// Stdin is streamed to the command; nil means none (closed at once).
	// Run returns when the command ends, without waiting for Stdin to be
	// drained: a Read on it that blocks (a terminal) finishes on its own.
	Stdin io.Reader
	// Stdout and Stderr receive output live; nil discards it.
	Stdout, Stderr io.Writer
}

// ExitStatus is how the remote command ended.
type ExitStatus struct {
	// Code is the remote exit code; 128+N when it died of signal N.
	Code int
	// Signal is the signal's name without "SIG" ("TERM"), if it died of one.
	Signal string
}

// signalNumber is the Linux number of a signal RFC 4254 names.
func signalNumber(name string) (int, bool) {
	switch name {
	case "HUP":
		return 1, true
	case "INT":
		return 2, true
	case "QUIT":
		return 3, true
	case "ILL":
		return 4, true
	case "ABRT":
		return 6, true
	case "FPE":
		return 8, true
	case "KILL":
		return 9, true
	case "USR1":
		return 10, true
	case "SEGV":
		return 11, true
	case "USR2":
		return 12, true
	case "PIPE":
		return 13, true
	case "ALRM":
		return 14, true
	case "TERM":
		return 15, true
	}
	return 0, false
}

// Run runs cmd and returns its exit status. The error is non-nil only when
// SSH itself failed (no status to report) or ctx ended; on ctx's end the
// command gets SIGTERM, the session is closed and ctx's error is returned.
func (c *Client) Run(ctx context.Context, cmd Cmd) (ExitStatus, error) {
	addr := c.ep.Addr()
	runID := NewRunID()
	line, err := cmd.Line(c.ep.User, runID)
	if err != nil {
		return ExitStatus{}, fmt.Errorf("run on %s: %w", addr, err)
	}
	if err := ctx.Err(); err != nil {
		return ExitStatus{}, fmt.Errorf("run on %s: %w", addr, err)
	}
	select {
	case c.sessions <- struct{}{}:
		defer func() { <-c.sessions }()
	case <-ctx.Done():
		return ExitStatus{}, fmt.Errorf("run on %s: %w", addr, ctx.Err())
	case <-c.done:
		return ExitStatus{}, fmt.Errorf("run on %s: connection closed", addr)
	}
	sess, err := openRetrying(ctx, c, c.conn.NewSession)
	if err != nil {
		return ExitStatus{}, fmt.Errorf("run on %s: %w", addr, c.lost(err))
	}
	defer sess.Close()
	sess.Stdout, sess.Stderr = cmd.Stdout, cmd.Stderr
	// Our own stdin pipe, not sess.Stdin: Wait would also wait for the copy
	// from Stdin, which blocks on a terminal until the next keystroke.
	var stdin io.WriteCloser
	if cmd.Stdin != nil {
		if stdin, err = sess.StdinPipe(); err != nil {
			return ExitStatus{}, fmt.Errorf("run on %s: %w", addr, err)
		}
	}
	if cmd.TTY {
		restore, err := requestPty(sess, cmd)
		if err != nil {
			return ExitStatus{}, fmt.Errorf("run on %s: request a pty: %w", addr, c.lost(err))
		}
		defer restore()
	}
	if err := sess.Start(line); err != nil {
		return ExitStatus{}, fmt.Errorf("run on %s: %w", addr, c.lost(err))
	}
	if stdin != nil {
		go func() {
			io.Copy(stdin, cmd.Stdin)
			stdin.Close()
		}()
	}
	waited := make(chan error, 1)
	go func() { waited <- sess.Wait() }()
	select {
	case err := <-waited:
		return c.exitStatus(err)
	case <-ctx.Done():
		c.terminate(sess, runID)
		t := time.NewTimer(time.Second) // output copiers finish; bounded if the node is gone
		defer t.Stop()
		select {
		case <-waited:
		case <-t.C:
		}
		return ExitStatus{}, fmt.Errorf("run on %s: %w", addr, ctx.Err())
	}
}

// terminate sends SIGTERM to a cancelled command and closes its session
// (closing alone would leave a command without a pty running on the node).
// OpenSSH refuses signals in sessions of root logins ("session signalling
// requires privilege separation"), so when the signal is refused the
// processes carrying the command's E2E_RUN_ID are killed from a new session.
func (c *Client) terminate(sess *gossh.Session, runID string) {
	// Bounded throughout: the node may be the reason for the cancel.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	signalled := make(chan bool, 1)
	go func() {
		ok, err := sess.SendRequest("signal", true, gossh.Marshal(struct{ Signal string }{string(gossh.SIGTERM)}))
		signalled <- ok && err == nil
	}()
	ok := false
	select {
	case ok = <-signalled:
	case <-ctx.Done():
	}
	sess.Close()
	if ok || ctx.Err() != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Outside the session limit: the cancelled session still holds a slot.
		kill, err := openRetrying(ctx, c, c.conn.NewSession)
		if err != nil {
			return
		}
		defer kill.Close()
		kill.Run(KillLine(runID))
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// runIDVar names the variable that marks a command's processes.
const runIDVar = "E2E_RUN_ID"

// NewRunID returns a fresh id for one command, by which KillLine finds its
// processes.
func NewRunID() string { return transfer.RandomSuffix() }

// KillLine is a shell line that sends SIGTERM to every process whose
// environment holds E2E_RUN_ID=runID: a cancelled command and everything
// it started that kept its environment.
func KillLine(runID string) string {
	return "grep -lzx " + shell.Quote(runIDVar+"="+runID) +
		" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 | xargs -r kill -TERM 2>/dev/null; true"
}

func (c *Client) exitStatus(err error) (ExitStatus, error) {
	var exit *gossh.ExitError
	var missing *gossh.ExitMissingError
	switch {
	case err == nil:
		return ExitStatus{}, nil
	case errors.As(err, &exit):
		sig := exit.Signal()
		if sig == "" {
			return ExitStatus{Code: exit.ExitStatus()}, nil
		}
		sig = strings.TrimPrefix(sig, "SIG")
		if n, ok := signalNumber(sig); ok {
			return ExitStatus{Code: 128 + n, Signal: sig}, nil
		}
		return ExitStatus{Code: exit.ExitStatus(), Signal: sig}, nil
	case errors.As(err, &missing):
		return ExitStatus{}, fmt.Errorf("run on %s: %w", c.ep.Addr(), c.lost(errors.New("the command ended without an exit status")))
	default:
		return ExitStatus{}, fmt.Errorf("run on %s: %w", c.ep.Addr(), c.lost(err))
	}
}

// CheckEnvName accepts the names a POSIX shell and env(1) agree on
// (letters, digits and _, not starting with a digit), except E2E_RUN_ID,
// which e2e sets.
func CheckEnvName(k string) error {
	for i, r := range k {
		switch {
		case r == '_', 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z':
		case '0' <= r && r <= '9' && i > 0:
		default:
			return fmt.Errorf("invalid environment variable name %q: use letters, digits and _, not starting with a digit", k)
		}
	}
	switch k {
	case "":
		return errors.New("empty environment variable name")
	case runIDVar:
		return fmt.Errorf("environment variable %s is set by e2e", k)
	}
	return nil
}

// Check reports what makes cmd impossible to run (no command, or both
// Argv and Shell; a bad environment variable name; a NUL byte), before
// anything runs.
func (cmd Cmd) Check() error {
	_, err := cmd.Line("", "")
	return err
}

// Line is the command line sshd hands to the login shell for cmd, run as
// loginUser and marked with runID:
// [sudo …] env E2E_RUN_ID=… [K=V …] (ARGV… | "$SHELL" -c SHELL).
// The exec transport runs the very same line with /bin/sh -c.
func (cmd Cmd) Line(loginUser, runID string) (string, error) {
	switch {
	case len(cmd.Argv) > 0 && cmd.Shell != "":
		return "", errors.New("command has both Argv and Shell")
	case len(cmd.Argv) == 0 && cmd.Shell == "":
		return "", errors.New("no command given")
	}
	for _, a := range cmd.Argv {
		if strings.ContainsRune(a, 0) {
			return "", fmt.Errorf("argument %q contains a NUL byte", a)
		}
	}
	var words []string
	runAs := cmd.User
	if runAs == "" && cmd.Sudo {
		runAs = "root"
	}
	switch {
	case runAs == "" || runAs == loginUser:
	case runAs == "root":
		words = append(words, "sudo", "-n", "-H", "--")
	default:
		words = append(words, "sudo", "-n", "-H", "-u", runAs, "--")
	}
	// env comes after sudo, whose env_reset would drop the variables.
	words = append(words, "env", runIDVar+"="+runID)
	for _, k := range slices.Sorted(maps.Keys(cmd.Env)) {
		v := cmd.Env[k]
		if err := CheckEnvName(k); err != nil {
			return "", err
		}
		if strings.ContainsRune(v, 0) {
			return "", fmt.Errorf("environment variable %s contains a NUL byte", k)
		}
		words = append(words, k+"="+v)
	}
	if cmd.Shell != "" {
		// $SHELL is expanded by the login shell, before sudo.
		return shell.Quote(words...) + ` "${SHELL:-/bin/sh}" -c ` + shell.Quote(cmd.Shell), nil
	}
	return shell.Quote(append(words, cmd.Argv...)...), nil
}

// The pty size when Stdin is not a terminal.
const ptyWidth, ptyHeight = 80, 24

func requestPty(sess *gossh.Session, cmd Cmd) (restore func(), err error) {
	termName := cmd.Env["TERM"]
	if termName == "" {
		termName = os.Getenv("TERM")
	}
	if termName == "" {
		termName = "xterm"
	}
	w, h, restore := localTerminal(cmd.Stdin, sess)
	modes := gossh.TerminalModes{gossh.ECHO: 1, gossh.TTY_OP_ISPEED: 14400, gossh.TTY_OP_OSPEED: 14400}
	if err := sess.RequestPty(termName, h, w, modes); err != nil {
		restore()
		return nil, err
	}
	return restore, nil
}
