package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/e2e-tool/e2e/internal/shell"
	"github.com/e2e-tool/e2e/internal/ssh"
	"github.com/e2e-tool/e2e/internal/transfer"
)

// execFS is a node's file system seen through the exec transport, for
// transfer.Walk and transfer.Resolve: one shell on the node (a single
// exec) answers every question in turn, with GNU find, realpath and pwd,
// so walking a tree costs a round trip per directory and per link, not an
// exec each. Answers are NUL-separated fields (names may hold any other
// byte): records "R" FIELD…, then "E" EXIT-CODE MESSAGE.
type execFS struct {
	mu     sync.Mutex // one question at a time
	in     *io.PipeWriter
	out    *bufio.Reader
	done   chan struct{}
	err    error         // how the shell ended, once done is closed
	stderr limitedBuffer // read only once done is closed
	home   string
}

// execFSFuncs are the shell functions the node's shell answers with. Each
// runs its tool with stdout on fd 3 (the answer stream) and catches the
// tool's stderr as the message; nothing reads the shell's stdin, which is
// the questions.
const execFSFuncs = `exec 3>&1
_e2e_end() { printf 'E\0%s\0%s\0' "$1" "$2"; }
_e2e_stat() { _e2e_o=$(find -L "$1" -maxdepth 0 -printf 'R\0%Y\0%m\0%s\0' 2>&1 >&3 </dev/null); _e2e_end $? "$_e2e_o"; }
_e2e_lstat() { _e2e_o=$(find "$1" -maxdepth 0 -printf 'R\0%y\0%m\0%s\0' 2>&1 >&3 </dev/null); _e2e_end $? "$_e2e_o"; }
_e2e_list() { _e2e_o=$(find -H "$1" -mindepth 1 -maxdepth 1 -printf 'R\0%y\0%m\0%s\0%f\0' 2>&1 >&3 </dev/null); _e2e_end $? "$_e2e_o"; }
_e2e_real() { if _e2e_o=$(realpath -e -- "$1" 2>&1 </dev/null && printf .); then printf 'R\0%s\0' "$_e2e_o"; _e2e_end 0 ''; else _e2e_end 1 "$_e2e_o"; fi; }
_e2e_home() { _e2e_o=$(pwd -P && printf .); printf 'R\0%s\0' "$_e2e_o"; _e2e_end 0 ''; }
`

// openExecFS starts the node's shell; Close ends it.
func openExecFS(ctx context.Context, x execNode) (*execFS, error) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	f := &execFS{in: inW, out: bufio.NewReader(outR), done: make(chan struct{})}
	go func() {
		st, err := x.run(ctx, ssh.Cmd{Argv: []string{"/bin/sh"}, Env: map[string]string{"LC_ALL": "C"},
			Stdin: inR, Stdout: outW, Stderr: &f.stderr})
		if err == nil {
			err = fmt.Errorf("the shell answering file questions ended (exit %d)", st.Code)
		}
		f.err = err
		outW.CloseWithError(err)
		inR.CloseWithError(err)
		close(f.done)
	}()
	if _, err := io.WriteString(inW, execFSFuncs); err != nil {
		f.Close()
		return nil, f.failure(err)
	}
	recs, err := f.ask(1, "_e2e_home")
	if err == nil && len(recs) != 1 {
		err = fmt.Errorf("the node's shell answered %d records for its home", len(recs))
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	f.home = strings.TrimSuffix(recs[0][0], "\n.")
	return f, nil
}

// Close ends the shell (its stdin closes) and waits a moment for it.
func (f *execFS) Close() {
	f.in.Close()
	select {
	case <-f.done:
	case <-time.After(killTimeout):
	}
}

// failure explains an error of the answer stream by how the shell ended.
func (f *execFS) failure(err error) error {
	select {
	case <-f.done:
		if msg := strings.TrimSpace(f.stderr.String()); msg != "" {
			return fmt.Errorf("%w: %s", f.err, msg)
		}
		return f.err
	case <-time.After(time.Second):
		return err
	}
}

// answer is the end of one answer: the tool's exit code and message.
type answer struct {
	code int
	msg  string
}

// ask sends one question (a function name and its arguments) and returns
// the records of its answer, each of width fields, and the tool's end.
func (f *execFS) ask(width int, fn string, args ...string) ([][]string, error) {
	recs, a, err := f.askEnd(width, fn, args...)
	if err == nil && a.code != 0 {
		err = fmt.Errorf("%s", a.msg)
	}
	return recs, err
}

func (f *execFS) askEnd(width int, fn string, args ...string) ([][]string, answer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range args {
		if !strings.HasPrefix(a, "/") {
			return nil, answer{}, fmt.Errorf("%q is not an absolute path", a)
		}
	}
	if _, err := io.WriteString(f.in, fn+" "+shell.Quote(args...)+"\n"); err != nil {
		return nil, answer{}, f.failure(err)
	}
	var recs [][]string
	for {
		tag, err := f.field()
		if err != nil {
			return nil, answer{}, err
		}
		switch tag {
		case "R":
			rec := make([]string, width)
			for i := range rec {
				if rec[i], err = f.field(); err != nil {
					return nil, answer{}, err
				}
			}
			recs = append(recs, rec)
		case "E":
			code, err := f.field()
			if err != nil {
				return nil, answer{}, err
			}
			msg, err := f.field()
			if err != nil {
				return nil, answer{}, err
			}
			n, err := strconv.Atoi(code)
			if err != nil {
				return nil, answer{}, fmt.Errorf("the node's shell answered %q for an exit code", code)
			}
			return recs, answer{code: n, msg: strings.TrimSpace(msg)}, nil
		default:
			return nil, answer{}, fmt.Errorf("the node's shell answered %q for a record tag", tag)
		}
	}
}

func (f *execFS) field() (string, error) {
	b, err := f.out.ReadBytes(0)
	if err != nil {
		return "", f.failure(err)
	}
	return string(b[:len(b)-1]), nil
}

// findMode turns find's %y (or %Y) type letter and %m octal mode into an
// fs.FileMode; "N" (a dangling link) and "L" (a loop of links) are errors.
func findMode(name, typ, perm string) (fs.FileMode, error) {
	bits, err := strconv.ParseUint(perm, 8, 32)
	if err != nil {
		return 0, fmt.Errorf("%s: find answered %q for a mode", name, perm)
	}
	mode := fs.FileMode(bits) & fs.ModePerm
	for bit, m := range map[uint64]fs.FileMode{0o4000: fs.ModeSetuid, 0o2000: fs.ModeSetgid, 0o1000: fs.ModeSticky} {
		if bits&bit != 0 {
			mode |= m
		}
	}
	switch typ {
	case "f":
	case "d":
		mode |= fs.ModeDir
	case "l":
		mode |= fs.ModeSymlink
	case "p":
		mode |= fs.ModeNamedPipe
	case "s":
		mode |= fs.ModeSocket
	case "b":
		mode |= fs.ModeDevice
	case "c":
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case "N":
		return 0, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	case "L":
		return 0, fmt.Errorf("%s: a loop of symbolic links", name)
	default:
		mode |= fs.ModeIrregular
	}
	return mode, nil
}

func (f *execFS) stat(fn, name string) (transfer.Info, error) {
	recs, a, err := f.askEnd(3, fn, name)
	switch {
	case err != nil:
		return transfer.Info{}, err
	case a.code != 0 && strings.HasSuffix(a.msg, "No such file or directory"):
		return transfer.Info{}, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	case a.code != 0:
		return transfer.Info{}, errors.New(a.msg)
	case len(recs) != 1:
		return transfer.Info{}, fmt.Errorf("%s: find answered %d records", name, len(recs))
	}
	mode, err := findMode(name, recs[0][0], recs[0][1])
	if err != nil {
		return transfer.Info{}, err
	}
	size, _ := strconv.ParseInt(recs[0][2], 10, 64)
	return transfer.Info{Mode: mode, Size: size}, nil
}

func (f *execFS) Stat(_ context.Context, name string) (transfer.Info, error) {
	return f.stat("_e2e_stat", name)
}

func (f *execFS) Lstat(_ context.Context, name string) (transfer.Info, error) {
	return f.stat("_e2e_lstat", name)
}

func (f *execFS) ReadDir(_ context.Context, name string) ([]transfer.Entry, error) {
	recs, err := f.ask(4, "_e2e_list", name)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", name, err)
	}
	out := make([]transfer.Entry, 0, len(recs))
	for _, r := range recs {
		mode, err := findMode(path.Join(name, r[3]), r[0], r[1])
		if err != nil {
			return nil, err
		}
		size, _ := strconv.ParseInt(r[2], 10, 64)
		out = append(out, transfer.Entry{Name: r[3], Info: transfer.Info{Mode: mode, Size: size}})
	}
	return out, nil
}

func (f *execFS) RealPath(_ context.Context, name string) (string, error) {
	recs, err := f.ask(1, "_e2e_real", name)
	if err == nil && len(recs) != 1 {
		err = fmt.Errorf("realpath answered %d records", len(recs))
	}
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", name, err)
	}
	return strings.TrimSuffix(recs[0][0], "\n."), nil
}

func (*execFS) Join(dir, rel string) string { return path.Join(dir, rel) }
func (*execFS) Base(name string) string     { return path.Base(name) }
