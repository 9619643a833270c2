package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/internal/ssh"
	"github.com/e2e-tool/e2e/internal/testbin"
)

// listScript lists what is at $1 the same way on a node and here: each
// path (from $1's base name) with its type, mode and content; links as
// such; "missing" when there is nothing. Hidden temporary files would
// show.
const listScript = `p=$1
if [ ! -e "$p" ] && [ ! -L "$p" ]; then echo missing; exit 0; fi
cd "$(dirname "$p")" && find "$(basename "$p")" | LC_ALL=C sort | while IFS= read -r f; do
	if [ -L "$f" ]; then printf '%s link\n' "$f"
	elif [ -d "$f" ]; then printf '%s dir %s\n' "$f" "$(stat -c %a "$f")"
	else printf '%s file %s %s\n' "$f" "$(stat -c %a "$f")" "$(cat "$f")"; fi
done`

// parity is one Docker cluster of 1 master and 1 agent, reached over one
// transport, and a local directory for one case.
type parity struct {
	s         *sandbox
	transport string
	id        string
	local     string // this case's local directory
	remote    string // this case's directory on the nodes
}

func (h *parity) e2e(args ...string) testbin.Result {
	h.s.t.Helper()
	return h.s.e2e(args...)
}

// node runs a setup script on master_0.
func (h *parity) node(t *testing.T, script string) {
	t.Helper()
	r := h.e2e("run", "-c", h.id, "--", "sh", "-c", script, "sh", h.remote)
	expectCode(t, r, 0)
}

func (h *parity) container() string { return "e2e-" + h.id + "-master-0" }

// list describes a path on master_0 ("node:PATH") or here ("local:PATH").
func (h *parity) list(t *testing.T, what string) string {
	t.Helper()
	where, p, _ := strings.Cut(what, ":")
	if where == "node" {
		r := h.e2e("run", "-c", h.id, "--", "sh", "-c", listScript, "sh", p)
		expectCode(t, r, 0)
		return r.Stdout
	}
	out, err := exec.Command("sh", "-c", listScript, "sh", p).CombinedOutput()
	if err != nil {
		t.Fatalf("listing %s: %v\n%s", p, err, out)
	}
	return string(out)
}

// expand replaces L (this case's local directory) and R (its directory on
// the nodes) in s.
func (h *parity) expand(s string) string {
	return strings.NewReplacer("L/", h.local+"/", "R/", h.remote+"/").Replace(s)
}

// normalize makes two transports' messages comparable.
func (h *parity) normalize(s string) string {
	return strings.NewReplacer(h.local, "L", h.id, "ID").Replace(s)
}

// makeLocalTree writes L/build (a tree with modes kept by a copy), a tree
// with links in it, and trees with a dangling link and a link cycle.
func makeLocalTree(t *testing.T, l string) {
	t.Helper()
	for _, f := range []struct {
		path, data string
		mode       os.FileMode
	}{
		{"build/a", "a", 0o644},
		{"build/setuid", "u", 0o755 | os.ModeSetuid},
		{"build/sub/b.sh", "b", 0o755},
		{"build/sub/secret", "s", 0o600},
		{"outside.txt", "outside", 0o644},
		{"linked/real/f", "f", 0o640},
		{"dangling/f", "f", 0o644},
		{"cycle/sub/f", "f", 0o644},
	} {
		p := filepath.Join(l, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, p, f.data)
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(l, "build/sub"), 0o750); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"linked/dirlink": "real", "linked/filelink": "real/f", "linked/abs": filepath.Join(l, "outside.txt"),
		"toplink": "linked", "filetoplink": "linked/real/f",
		"dangling/broken": "nowhere", "cycle/sub/up": "..",
	} {
		if err := os.Symlink(target, filepath.Join(l, link)); err != nil {
			t.Fatal(err)
		}
	}
}

// buildTree is L/build as a copy named NAME has it.
func buildTree(name string) string {
	return strings.ReplaceAll(`NAME dir 755
NAME/a file 644 a
NAME/setuid file 4755 u
NAME/sub dir 750
NAME/sub/b.sh file 755 b
NAME/sub/secret file 600 s
`, "NAME", name)
}

// nodeTree is the tree parityCase.nodeSetup makes at R/tree.
const nodeTree = `mkdir -p "$1/tree/sub" && echo a >"$1/tree/a" && echo b >"$1/tree/sub/b" && chmod 600 "$1/tree/sub/b" && ln -s a "$1/tree/link"`

// TestTransferAndRunParity runs every transfer and run case through the
// e2e binary on two Docker clusters, one reached over SSH and one over
// transport=exec, and checks both give the same, expected outcome: exit
// code, the resulting tree (content and modes) on the node or here, the
// error line.
// longName is a file name of 250 bytes, near Linux's NAME_MAX (255).
var longName = strings.Repeat("n", 250)

func TestTransferAndRunParity(t *testing.T) {
	s := newSandbox(t)
	suffix := randomSuffix(t)
	transports := []*parity{{s: s, transport: "ssh", id: "par-ssh-" + suffix}, {s: s, transport: "exec", id: "par-exec-" + suffix}}
	for _, h := range transports {
		args := []string{"--masters", "1", "--agents", "1", "--public-agents", "0"}
		if h.transport == "exec" {
			args = append(args, "-o", "transport=exec")
		}
		dockerCluster(t, s, h.id, args...)
	}

	for _, tc := range []struct {
		name  string
		node  string     // setup script on master_0 ($1 is R)
		steps [][]string // e2e commands (after the cluster id), in order; all but the last must succeed
		code  int
		// errs are fragments of the one error line (L and R expanded);
		// stderr are fragments of a command's own stderr.
		errs, stderr []string
		// look is what to list afterwards ("node:R/x" or "local:L/x") and
		// want what it must be.
		look, want string
		stdout     func(t *testing.T, out string)
		do         func(t *testing.T, h *parity) testbin.Result
	}{
		{name: "send-file a directory twice: no nesting",
			steps: [][]string{{"send-file", "--node", "master_0", "L/build", "R/build"}, {"send-file", "--node", "master_0", "L/build", "R/build"}},
			look:  "node:R/build", want: buildTree("build")},
		{name: "send-file into an existing directory: merged, nothing deleted",
			node:  `mkdir -p "$1/dst/sub" && echo old >"$1/dst/a" && echo kept >"$1/dst/kept" && echo old >"$1/dst/sub/b.sh"`,
			steps: [][]string{{"send-file", "--node", "master_0", "L/build", "R/dst"}},
			look:  "node:R/dst", want: "dst dir 755\ndst/a file 644 a\ndst/kept file 644 kept\ndst/setuid file 4755 u\ndst/sub dir 750\ndst/sub/b.sh file 755 b\ndst/sub/secret file 600 s\n"},
		{name: "send-file a file onto a file: replaced with its mode",
			node:  `echo old >"$1/f" && chmod 600 "$1/f"`,
			steps: [][]string{{"send-file", "--node", "master_0", "L/build/sub/b.sh", "R/f"}},
			look:  "node:R/f", want: "f file 755 b\n"},
		{name: "send-file a file to dir/: into it, made",
			steps: [][]string{{"send-file", "--node", "master_0", "L/build/a", "R/d/"}},
			look:  "node:R/d", want: "d dir 755\nd/a file 644 a\n"},
		{name: "send-file a file onto a directory: refused",
			node:  `mkdir "$1/d"`,
			steps: [][]string{{"send-file", "--node", "master_0", "L/build/a", "R/d"}},
			code:  1, errs: []string{"master_0", "L/build/a", "R/d", "is an existing directory"},
			look: "node:R/d", want: "d dir 755\n"},
		{name: "send-file a directory onto a file: refused",
			node:  `echo keep >"$1/f"`,
			steps: [][]string{{"send-file", "--node", "master_0", "L/build", "R/f"}},
			code:  1, errs: []string{"master_0", "L/build", "R/f", "is an existing file"},
			look: "node:R/f", want: "f file 644 keep\n"},
		{name: "send-file of a missing source to two nodes: said once",
			steps: [][]string{{"send-file", "L/missing", "R/m"}},
			code:  2, errs: []string{"L/missing does not exist"},
			look: "node:R/m", want: "missing\n"},
		{name: "send-file follows links inside a tree and at its top",
			steps: [][]string{{"send-file", "--node", "master_0", "L/toplink", "R/copy"}},
			look:  "node:R/copy", want: "copy dir 755\ncopy/abs file 644 outside\ncopy/dirlink dir 755\ncopy/dirlink/f file 640 f\ncopy/filelink file 640 f\ncopy/real dir 755\ncopy/real/f file 640 f\n"},
		{name: "send-file of a top-level link to a file",
			steps: [][]string{{"send-file", "--node", "master_0", "L/filetoplink", "R/g"}},
			look:  "node:R/g", want: "g file 640 f\n"},
		{name: "send-file of a tree with a dangling link: refused before anything moves",
			steps: [][]string{{"send-file", "--node", "master_0", "L/dangling", "R/dangling"}},
			code:  2, errs: []string{"L/dangling/broken is a dangling symbolic link"},
			look: "node:R/dangling", want: "missing\n"},
		{name: "send-file of a tree with a link cycle: refused",
			steps: [][]string{{"send-file", "--node", "master_0", "L/cycle", "R/cycle"}},
			code:  2, errs: []string{"L/cycle/sub/up leads to", "L/cycle"},
			look: "node:R/cycle", want: "missing\n"},
		{name: "download a directory twice: no nesting, links followed",
			node:  nodeTree,
			steps: [][]string{{"download", "--node", "master_0", "R/tree", "L/dl"}, {"download", "--node", "master_0", "R/tree", "L/dl"}},
			look:  "local:L/dl", want: "dl dir 755\ndl/a file 644 a\ndl/link file 644 a\ndl/sub dir 755\ndl/sub/b file 600 b\n"},
		{name: "download a file",
			node:  `echo f >"$1/file" && chmod 604 "$1/file"`,
			steps: [][]string{{"download", "--node", "master_0", "R/file", "L/got"}},
			look:  "local:L/got", want: "got file 604 f\n"},
		{name: "a file whose name is near NAME_MAX, both ways (its temporary name stays within the limit)",
			node: `echo long >"$1/` + longName + `"`,
			steps: [][]string{{"download", "--node", "master_0", "R/" + longName, "L/long/"},
				{"send-file", "--node", "master_0", "L/long/" + longName, "R/up/"}},
			look: "node:R/up", want: "up dir 755\nup/" + longName + " file 644 long\n"},
		{name: "download a file to dir/",
			node:  `echo f >"$1/file"`,
			steps: [][]string{{"download", "--node", "master_0", "R/file", "L/into/"}},
			look:  "local:L/into", want: "into dir 755\ninto/file file 644 f\n"},
		{name: "download of a tree with a dangling link: refused, nothing written",
			node:  `mkdir "$1/dtree" && echo a >"$1/dtree/a" && ln -s nowhere "$1/dtree/broken"`,
			steps: [][]string{{"download", "--node", "master_0", "R/dtree", "L/dd"}},
			code:  1, errs: []string{"master_0", "R/dtree/broken is a dangling symbolic link"},
			look: "local:L/dd", want: "missing\n"},
		{name: "download of a directory onto a local file: bad input",
			node:  nodeTree,
			steps: [][]string{{"download", "--node", "master_0", "R/tree", "L/build/a"}},
			code:  2, errs: []string{"R/tree", "L/build/a", "is an existing file"},
			look: "local:L/build/a", want: "a file 644 a\n"},
		{name: "download of a missing path",
			steps: [][]string{{"download", "--node", "master_0", "R/nothing", "L/n"}},
			code:  1, errs: []string{"master_0", "R/nothing does not exist"},
			look: "local:L/n", want: "missing\n"},
		{name: "run with a bad environment name: nothing runs",
			steps: [][]string{{"run", "-e", "BAD NAME=x", "--", "touch", "R/ran"}},
			code:  2, errs: []string{`"BAD NAME=x"`, `invalid environment variable name "BAD NAME"`},
			look: "node:R/ran", want: "missing\n"},
		{name: "run of a missing command: 127",
			steps: [][]string{{"run", "--", "e2e-no-such-command", "arg"}},
			code:  127, look: "node:R/none", want: "missing\n",
			stderr: []string{"e2e-no-such-command", "No such file or directory"},
			stdout: func(t *testing.T, out string) {
				if out != "" {
					t.Errorf("stdout %q", out)
				}
			}},
		{name: "run exit code 42",
			steps: [][]string{{"run", "--", "sh", "-c", "echo out; exit 42"}},
			code:  42, look: "node:R/none", want: "missing\n",
			stdout: func(t *testing.T, out string) {
				if out != "out\n" {
					t.Errorf("stdout %q", out)
				}
			}},
		{name: "run killed by a signal: 128+N",
			steps: [][]string{{"run", "--", "sh", "-c", "kill -TERM $$"}},
			code:  143, look: "node:R/none", want: "missing\n"},
		{name: "run --all of long lines: whole, prefixed once, cut past 1 MiB",
			steps: [][]string{{"run", "--all", "--", "sh", "-c", `head -c 200000 /dev/zero | tr "\0" x; echo; head -c 1100000 /dev/zero | tr "\0" y; echo; printf last`}},
			look:  "node:R/none", want: "missing\n",
			stdout: func(t *testing.T, out string) {
				want := []string{strings.Repeat("x", 200000), strings.Repeat("y", ssh.MaxLine) + ssh.LineContinues,
					strings.Repeat("y", 1100000-ssh.MaxLine), "last"}
				checkNodeLines(t, out, want)
			}},
		{name: "run --all passes bytes that are not UTF-8",
			steps: [][]string{{"run", "--all", "--", "printf", `\377\376 caf\303\251 \200\n`}},
			look:  "node:R/none", want: "missing\n",
			stdout: func(t *testing.T, out string) { checkNodeLines(t, out, []string{"\xff\xfe café \x80"}) }},
		{name: "run passes bytes that are not UTF-8 on one node",
			steps: [][]string{{"run", "--", "printf", `\377\376 caf\303\251 \200`}},
			look:  "node:R/none", want: "missing\n",
			stdout: func(t *testing.T, out string) {
				if out != "\xff\xfe café \x80" {
					t.Errorf("stdout %q", out)
				}
			}},
		{name: "Ctrl-C on run -- sleep 1000 ends it on the node",
			code: 130, look: "node:R/none", want: "missing\n",
			do: interruptSleep},
	} {
		t.Run(tc.name, func(t *testing.T) {
			results := map[string]testbin.Result{}
			for _, h := range transports {
				h.local = t.TempDir()
				h.remote = "/tmp/parity-" + suffix + "/" + strings.NewReplacer(" ", "-", "/", "-", ":", "", ",", "").Replace(tc.name)
				makeLocalTree(t, h.local)
				h.node(t, `rm -rf "$1" && mkdir -p "$1" && `+orTrue(tc.node))
				var r testbin.Result
				if tc.do != nil {
					r = tc.do(t, h)
				}
				for j, step := range tc.steps {
					args := []string{step[0], "-c", h.id}
					for _, a := range step[1:] {
						args = append(args, h.expand(a))
					}
					r = h.e2e(args...)
					if j < len(tc.steps)-1 {
						expectCode(t, r, 0)
					}
				}
				if r.Code != tc.code {
					t.Fatalf("%s: exit code %d, want %d\nstderr: %s", h.transport, r.Code, tc.code, r.Stderr)
				}
				if tc.code != 0 && len(tc.errs) > 0 {
					frags := make([]string, len(tc.errs))
					for i, f := range tc.errs {
						frags[i] = h.expand(f)
					}
					oneErrorLine(t, r, frags...)
					if strings.Count(r.Stderr, "e2e: ") != 1 {
						t.Errorf("%s: said %d times:\n%s", h.transport, strings.Count(r.Stderr, "e2e: "), r.Stderr)
					}
				}
				for _, f := range tc.stderr {
					if !strings.Contains(r.Stderr, f) {
						t.Errorf("%s: stderr %q lacks %q", h.transport, r.Stderr, f)
					}
				}
				if tc.stdout != nil {
					tc.stdout(t, r.Stdout)
				}
				if got, want := h.list(t, h.expand(tc.look)), tc.want; got != want {
					t.Errorf("%s: %s is\n%s\nwant\n%s", h.transport, tc.look, got, want)
				}
				r.Stderr = h.normalize(r.Stderr)
				if len(tc.steps) > 0 && slices.Contains(tc.steps[len(tc.steps)-1], "--all") {
					// Nodes take turns line by line in any order; each
					// node's order is checked by tc.stdout.
					lines := strings.SplitAfter(r.Stdout, "\n")
					sort.Strings(lines)
					r.Stdout = strings.Join(lines, "")
				}
				results[h.transport] = r
			}
			if a, b := results["ssh"], results["exec"]; a.Code != b.Code || a.Stdout != b.Stdout || a.Stderr != b.Stderr {
				t.Errorf("the transports disagree:\nssh:  %d %.300q %q\nexec: %d %.300q %q", a.Code, a.Stdout, a.Stderr, b.Code, b.Stdout, b.Stderr)
			}
		})
	}

	// The Go API refuses a bad environment name on both transports, before
	// anything runs.
	c, err := cluster.New(cluster.Options{Home: s.home, PluginDirs: []string{built.pluginDir}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, h := range transports {
		cl, err := c.Get(t.Context(), h.id)
		if err != nil {
			t.Fatal(err)
		}
		n, err := cl.Node("master_0")
		if err != nil {
			t.Fatal(err)
		}
		_, err = n.Run(t.Context(), cluster.Command{Argv: []string{"touch", "/tmp/parity-" + suffix + "/ran"}, Env: map[string]string{"BAD NAME": "x"}})
		if !cluster.IsInvalid(err) || !strings.Contains(err.Error(), `"BAD NAME"`) {
			t.Errorf("%s: Run with a bad environment name: %v, want an invalid-input error naming it", h.transport, err)
		}
		cl.Close()
		h.remote = "/tmp/parity-" + suffix
		if got := h.list(t, "node:"+h.remote+"/ran"); got != "missing\n" {
			t.Errorf("%s: the command ran: %s", h.transport, got)
		}
	}
}

func orTrue(script string) string {
	if script == "" {
		return "true"
	}
	return script
}

// checkNodeLines checks the output of run --all on master_0 and agent_0:
// each node's lines, in order, each whole with its prefix once.
func checkNodeLines(t *testing.T, out string, want []string) {
	t.Helper()
	got := map[string][]string{}
	for _, line := range strings.SplitAfter(out, "\n") {
		if line == "" {
			continue
		}
		if !strings.HasSuffix(line, "\n") {
			t.Errorf("output does not end with a newline: %.80q", line)
		}
		ref, rest, ok := strings.Cut(strings.TrimSuffix(line, "\n"), ": ")
		if !ok || (ref != "master_0" && ref != "agent_0") {
			t.Fatalf("line without a node prefix: %.80q", line)
		}
		got[ref] = append(got[ref], rest)
	}
	for _, ref := range []string{"master_0", "agent_0"} {
		if len(got[ref]) != len(want) {
			t.Errorf("%s: %d lines, want %d", ref, len(got[ref]), len(want))
			continue
		}
		for i := range want {
			if got[ref][i] != want[i] {
				t.Errorf("%s line %d: %d bytes %.40q…, want %d bytes %.40q…", ref, i, len(got[ref][i]), got[ref][i], len(want[i]), want[i])
			}
		}
	}
}

// interruptSleep starts `e2e run -- sleep 1000`, sends it SIGINT once the
// sleep runs on the node, and checks that it is gone from the node after.
func interruptSleep(t *testing.T, h *parity) testbin.Result {
	t.Helper()
	cmd := exec.Command(built.e2e, "--plugin-dir", built.pluginDir, "run", "-c", h.id, "--", "sleep", "1000")
	cmd.Env = h.s.env()
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	sleeping := func() bool {
		return exec.Command("docker", "exec", h.container(), "pgrep", "-f", "^sleep 1000$").Run() == nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for !sleeping() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: sleep 1000 never ran on the node; stderr: %s", h.transport, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	code := exitCodeOf(t, cmd)
	for deadline = time.Now().Add(5 * time.Second); sleeping(); {
		if time.Now().After(deadline) {
			t.Errorf("%s: sleep 1000 still runs on the node after Ctrl-C", h.transport)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return testbin.Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: code}
}
