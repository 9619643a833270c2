package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/internal/ssh"
	"github.com/e2e-tool/e2e/internal/ssh/sshdtest"
	"github.com/e2e-tool/e2e/internal/testbin"
	"github.com/e2e-tool/e2e/internal/transfer"
	"github.com/e2e-tool/e2e/sdk"
	gossh "golang.org/x/crypto/ssh"
)

// localExec does what a backend's Exec does, on this machine: a stand-in
// node for unit tests of the exec transport (the Docker tests in cmd/e2e
// run the real one). Like docker exec, a cancelled call leaves its command
// running.
func localExec(ctx context.Context, req sdk.ExecRequest) (int, error) {
	cmd := exec.Command(req.Argv[0], req.Argv[1:]...)
	cmd.Env = []string{"HOME=/root", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = req.Stdin, req.Stdout, req.Stderr
	if err := cmd.Start(); err != nil {
		return 127, nil
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			// Docker reports 128+N for a command killed by signal N.
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				return 128 + int(ws.Signal()), nil
			}
			return ee.ExitCode(), nil
		}
		return 0, err
	case <-ctx.Done():
		return -1, ctx.Err()
	}
}

// transports are the two ways onto the stand-in node (this machine).
func transports(t *testing.T) (sftp *ssh.Client, x execNode) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: the stand-in node is this machine as root (sshdtest)")
	}
	srv := sshdtest.Start(t, sshdtest.Options{})
	c, err := ssh.Dial(t.Context(), srv.Endpoint, ssh.Config{Signers: []gossh.Signer{srv.Signer},
		KnownHosts: []string{sshdtest.KnownHostsFile(t, srv)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, execNode{node: "local", user: "root", exec: localExec}
}

// listing describes what is at p: every path below it with its type,
// mode and content, or "missing".
func listing(t *testing.T, p string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(p, q)
		fi, err := os.Lstat(q)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v", rel, fi.Mode())
		if fi.Mode().IsRegular() {
			data, _ := os.ReadFile(q)
			fmt.Fprintf(&b, " %q", data)
		}
		b.WriteString("\n")
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return "missing"
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func write(t *testing.T, p, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// TestTransportsAgree: every transfer case gives the same tree and the
// same error over SFTP and over the exec transport's tar streams.
func TestTransportsAgree(t *testing.T) {
	sc, x := transports(t)
	type side struct{ src, dst string }
	for _, tc := range []struct {
		name string
		// setup makes the source under src and whatever is already at dst.
		setup    func(t *testing.T, src, dst string)
		download bool
		from, to string // below src and dst; to may end in "/"
		err      string // a fragment of the error, or "" for success
		input    bool   // the error is the caller's (InputError)
	}{
		{name: "directory to a new path", setup: func(t *testing.T, src, dst string) {
			write(t, filepath.Join(src, "build/a"), "a", 0o644)
			write(t, filepath.Join(src, "build/sub/b.sh"), "b", 0o755|os.ModeSetuid)
			os.Chmod(filepath.Join(src, "build/sub"), 0o750)
		}, from: "build", to: "opt/build"},
		{name: "directory merged into one", setup: func(t *testing.T, src, dst string) {
			write(t, filepath.Join(src, "build/a"), "new a", 0o600)
			write(t, filepath.Join(src, "build/ro/f"), "f", 0o644)
			os.Chmod(filepath.Join(src, "build/ro"), 0o555)
			os.Chmod(filepath.Join(src, "build"), 0o750)
			write(t, filepath.Join(dst, "opt/a"), "old a", 0o644)
			write(t, filepath.Join(dst, "opt/kept"), "kept", 0o644)
		}, from: "build", to: "opt"},
		{name: "file onto a file", setup: func(t *testing.T, src, dst string) {
			write(t, filepath.Join(src, "x.sh"), "new", 0o755)
			write(t, filepath.Join(dst, "x"), "old", 0o600)
		}, from: "x.sh", to: "x"},
		{name: "file into a directory/", setup: func(t *testing.T, src, dst string) {
			write(t, filepath.Join(src, "x.sh"), "x", 0o700)
		}, from: "x.sh", to: "made/"},
		{name: "file onto a directory", setup: func(t *testing.T, src, dst string) {
			write(t, filepath.Join(src, "x.sh"), "x", 0o700)
			write(t, filepath.Join(dst, "d/kept"), "kept", 0o644)
		}, from: "x.sh", to: "d", err: "is an existing directory"},
		{name: "links followed", setup: func(t *testing.T, src, dst string) {
			write(t, filepath.Join(src, "tree/real/f"), "f", 0o640)
			write(t, filepath.Join(src, "elsewhere"), "outside", 0o644)
			os.Symlink("real", filepath.Join(src, "tree/dirlink"))
			os.Symlink("real/f", filepath.Join(src, "tree/filelink"))
			os.Symlink(filepath.Join(src, "elsewhere"), filepath.Join(src, "tree/abs"))
			os.Symlink("tree", filepath.Join(src, "top"))
		}, from: "top", to: "copy"},
		{name: "dangling link", setup: func(t *testing.T, src, dst string) {
			write(t, filepath.Join(src, "tree/f"), "f", 0o644)
			os.Symlink("nowhere", filepath.Join(src, "tree/dangling"))
		}, from: "tree", to: "copy", err: "tree/dangling is a dangling symbolic link", input: true},
		{name: "link cycle", setup: func(t *testing.T, src, dst string) {
			write(t, filepath.Join(src, "tree/sub/f"), "f", 0o644)
			os.Symlink("..", filepath.Join(src, "tree/sub/up"))
		}, from: "tree", to: "copy", err: "tree/sub/up leads to", input: true},
		{name: "missing source", setup: func(t *testing.T, src, dst string) {}, from: "missing", to: "copy",
			err: "missing does not exist", input: true},
		{name: "download directory", download: true, setup: func(t *testing.T, src, dst string) {
			write(t, filepath.Join(src, "build/a"), "a", 0o644)
			write(t, filepath.Join(src, "build/empty/.keep"), "", 0o600)
			os.Symlink("a", filepath.Join(src, "build/link"))
		}, from: "build", to: "dl"},
		{name: "download file into a directory/", download: true, setup: func(t *testing.T, src, dst string) {
			write(t, filepath.Join(src, "f"), "f", 0o604)
		}, from: "f", to: "dl/"},
		{name: "download onto a local file", download: true, setup: func(t *testing.T, src, dst string) {
			write(t, filepath.Join(src, "build/a"), "a", 0o644)
			write(t, filepath.Join(dst, "dl"), "local", 0o644)
		}, from: "build", to: "dl", err: "is an existing file", input: true},
		{name: "download a dangling link", download: true, setup: func(t *testing.T, src, dst string) {
			write(t, filepath.Join(src, "build/a"), "a", 0o644)
			os.Symlink("nowhere", filepath.Join(src, "build/dangling"))
		}, from: "build", to: "dl", err: "build/dangling is a dangling symbolic link"},
		{name: "download a missing path", download: true, setup: func(t *testing.T, src, dst string) {},
			from: "missing", to: "dl", err: "missing does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			results := map[string]string{}
			for _, tp := range []string{"sftp", "exec"} {
				s := side{filepath.Join(t.TempDir(), "src"), filepath.Join(t.TempDir(), "dst")}
				os.MkdirAll(s.src, 0o755)
				os.MkdirAll(s.dst, 0o755)
				tc.setup(t, s.src, s.dst)
				from, to := filepath.Join(s.src, tc.from), filepath.Join(s.dst, tc.to)
				if strings.HasSuffix(tc.to, "/") {
					to += "/"
				}
				var out strings.Builder
				for range 2 { // twice: the second copy changes nothing
					var err error
					switch {
					case tp == "sftp" && tc.download:
						err = sc.Download(ctx, from, to, nil)
					case tp == "sftp":
						err = sc.Upload(ctx, from, to, nil)
					case tc.download:
						err = x.download(ctx, from, to, nil)
					default:
						var p *transfer.Plan
						if p, err = transfer.Walk(ctx, transfer.LocalFS{}, from); err != nil {
							err = &transfer.InputError{Err: err}
						} else {
							err = x.upload(ctx, p, to, nil)
						}
					}
					var input *transfer.InputError
					switch {
					case tc.err == "" && err != nil:
						t.Fatalf("%s: %v", tp, err)
					case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
						t.Fatalf("%s: error %v, want one with %q", tp, err, tc.err)
					case tc.err != "" && errors.As(err, &input) != tc.input:
						t.Fatalf("%s: %v: caller's mistake %v, want %v", tp, err, !tc.input, tc.input)
					}
					fmt.Fprintf(&out, "%s\n", listing(t, filepath.Join(s.dst, strings.TrimSuffix(tc.to, "/"))))
				}
				results[tp] = out.String()
				os.Chmod(filepath.Join(s.dst, tc.to, "ro"), 0o755) // for t.TempDir's removal
			}
			if results["sftp"] != results["exec"] {
				t.Errorf("the transports disagree:\nsftp:\n%s\nexec:\n%s", results["sftp"], results["exec"])
			}
			t.Logf("result:\n%s", results["sftp"])
		})
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestExecRunAsSSH: the exec transport runs SSH's command line, so exit
// codes, messages and cancellation are the same.
func TestExecRunAsSSH(t *testing.T) {
	sc, x := transports(t)
	ctx := testContext(t)
	for _, cmd := range []ssh.Cmd{
		{Argv: []string{"e2e-no-such-command"}},
		{Argv: []string{"sh", "-c", "echo out; echo err >&2; exit 42"}},
		{Argv: []string{"sh", "-c", "kill -TERM $$"}},
		{Shell: "echo $K; pwd", Env: map[string]string{"K": "v w"}},
	} {
		var so, se, xo, xe bytes.Buffer
		cmd.Stdout, cmd.Stderr = &so, &se
		sst, err := sc.Run(ctx, cmd)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = &xo, &xe
		xst, err := x.run(ctx, cmd)
		if err != nil {
			t.Fatal(err)
		}
		if sst.Code != xst.Code || so.String() != xo.String() || se.String() != xe.String() {
			t.Errorf("%q %q: SSH gave %d %q %q, exec %d %q %q", cmd.Argv, cmd.Shell, sst.Code, so.String(), se.String(), xst.Code, xo.String(), xe.String())
		}
	}
	var invalid *InvalidError
	if _, err := x.run(ctx, ssh.Cmd{Argv: []string{"true"}, Env: map[string]string{"BAD NAME": "x"}}); !errors.As(err, &invalid) {
		t.Errorf("a bad environment name: %v, want an InvalidError", err)
	}

	// Cancelled: the command is killed on the node, not left running.
	cctx, cancel := context.WithCancel(ctx)
	found := make(chan []int, 1)
	go func() {
		defer cancel()
		for {
			if pids := sleeping("977"); len(pids) > 0 {
				found <- pids
				return
			}
			select {
			case <-ctx.Done():
				found <- nil
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	_, err := x.run(cctx, ssh.Cmd{Argv: []string{"sleep", "977"}})
	pids := <-found
	if !errors.Is(err, context.Canceled) || len(pids) == 0 {
		t.Fatalf("cancelled run: %v, sleep 977 seen as %v", err, pids)
	}
	for _, pid := range pids {
		if !testbin.Gone(pid, 5*time.Second) {
			t.Errorf("sleep 977 (pid %d) still runs after the cancel", pid)
		}
	}
}

// sleeping lists the pids of running "sleep ARG" processes.
func sleeping(arg string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && string(b) == "sleep\x00"+arg+"\x00" {
			if pid, err := strconv.Atoi(e.Name()); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}
