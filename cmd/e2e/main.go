// Command e2e creates throw-away clusters for end-to-end tests through
// backend plugins. It is a thin layer over the cluster package.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/term"
)

// Set with -ldflags.
var (
	version = "0.0.0-dev"
	commit  = ""
)

// Exit codes, as README.md lists them.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// env is what every command gets: the cluster manager and where to write.
type env struct {
	ctx      context.Context
	manager  *cluster.Manager
	stdout   io.Writer
	stderr   io.Writer
	isTTY    bool
	progress *progress
	verbose  int // -v count
	// pluginDirs are the --plugin-dir directories, for processes e2e
	// starts that look for plugins as it does (the reaper).
	pluginDirs []string
	// doing says what the command is doing, and outcome what became of it
	// when it was interrupted, for the line Ctrl-C ends with.
	doing, outcome string
}

// now records what the command is doing ("creating cluster \"x\""), so
// that an interruption says what it interrupted.
func (e *env) now(format string, args ...any) { e.doing = fmt.Sprintf(format, args...) }

// say writes a message line to stderr, after any progress line: what
// was being done is done.
func (e *env) say(format string, args ...any) {
	e.progress.finish(true)
	if e.progress.quiet {
		return
	}
	fmt.Fprintf(e.stderr, format+"\n", args...)
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first Ctrl-C, a second one ends e2e at once (the plugins'
	// parent-death watchdog then winds them down).
	context.AfterFunc(ctx, stop)

	cli, kctx, code, ok := parseArgs(args, stdout, stderr)
	if !ok {
		return code
	}

	logger := hclog.New(&hclog.LoggerOptions{
		Name: "e2e", Output: stderr, Level: logLevel(cli.Verbose),
		Color: hclog.ColorOff, DisableTime: cli.Verbose < 2,
	})
	if cli.Quiet && cli.Verbose > 0 {
		fmt.Fprintln(stderr, "e2e: -q and -v cannot be given together (-q silences what -v adds): give one")
		return exitUsage
	}
	prog := newProgress(stderr, liveTerminal(stderr), cli.Verbose)
	prog.quiet = cli.Quiet
	manager, err := cluster.New(cluster.Options{PluginDirs: cli.PluginDir, Logger: logger, Events: prog.event})
	if err != nil {
		fmt.Fprintf(stderr, "e2e: %v\n", oneLine(err))
		return exitCode(ctx, err)
	}
	e := &env{ctx: ctx, manager: manager, stdout: stdout, stderr: stderr, isTTY: isTerminal(stdout), progress: prog, verbose: cli.Verbose, pluginDirs: cli.PluginDir}
	err = kctx.Run(e)
	// Every plugin is stopped before e2e exits, whatever happened.
	manager.Close()
	prog.finish(err == nil)
	var ee exitError
	switch {
	case ctx.Err() != nil:
		fmt.Fprintf(stderr, "e2e: %s\n", interrupted(e, err))
	case err != nil && !(errors.As(err, &ee) && ee.quiet):
		fmt.Fprintf(stderr, "e2e: %v\n", oneLine(err))
	}
	if err != nil && cli.Verbose > 0 {
		fmt.Fprintf(stderr, "e2e: (detail) %+v\n", err)
	}
	return exitCode(ctx, err)
}

// interrupted is the one line after Ctrl-C (or SIGTERM): what was
// interrupted, what became of it, and any other failure than the
// interruption itself.
func interrupted(e *env, err error) string {
	msg := "interrupted"
	if e.doing != "" {
		msg += " while " + e.doing
	}
	var ee exitError
	switch {
	case e.outcome != "":
		msg += "; " + e.outcome
	case err != nil && !errors.Is(err, context.Canceled) && !(errors.As(err, &ee) && ee.quiet):
		msg += ": " + oneLine(err)
	}
	return msg
}

// exitCode maps an error to e2e's exit codes (README.md).
func exitCode(ctx context.Context, err error) int {
	var ec exitError
	switch {
	case ctx.Err() != nil:
		return exitInterrupted
	case err == nil:
		return exitOK
	case errors.As(err, &ec):
		return ec.code
	case cluster.IsInvalid(err):
		return exitUsage
	}
	return exitFailure
}

// exitError asks for a specific exit code; quiet ones print nothing (a
// remote command's own exit code).
type exitError struct {
	code  int
	err   error
	quiet bool
}

func (e exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit code %d", e.code)
	}
	return e.err.Error()
}
func (e exitError) Unwrap() error { return e.err }

// oneLine keeps errors to one line unless they carry output lines on
// purpose (a crashed plugin's last words are joined with " | ").
func oneLine(err error) string {
	return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", " ")
}

func logLevel(v int) hclog.Level {
	switch {
	case v >= 3:
		return hclog.Trace
	case v == 2:
		return hclog.Debug
	case v == 1:
		return hclog.Info
	}
	return hclog.Warn
}

// liveTerminal reports whether w is a terminal that live progress can be
// drawn on: one that says how wide it is (a pseudo-terminal nobody sized
// gets the one line per step of CI instead).
func liveTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false
	}
	cols, rows, err := term.GetSize(int(f.Fd()))
	return err == nil && cols > 0 && rows > 0
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
