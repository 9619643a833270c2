package state

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Environment of the helper process that TestReserveRaceProcesses re-executes.
const (
	helperEnv   = "E2E_STATE_TEST_HELPER"
	helperRoot  = "E2E_STATE_TEST_ROOT"
	helperID    = "E2E_STATE_TEST_ID"
	exitExists  = 3
	exitFailure = 4
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "reserve" {
		os.Exit(reserveHelper())
	}
	os.Exit(m.Run())
}

// reserveHelper waits for the parent's go (a line on stdin), then races to
// create the cluster. Exit 0: it won; exitExists: it lost to a committed record.
func reserveHelper() int {
	s, err := Open(os.Getenv(helperRoot))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitFailure
	}
	if _, err := fmt.Fscanln(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "wait for start:", err)
		return exitFailure
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := s.Reserve(ctx, os.Getenv(helperID))
	if errors.Is(err, ErrExists) {
		return exitExists
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitFailure
	}
	defer r.Release()
	// Hold the reservation a while, as a real create does, so the others wait on the lock.
	time.Sleep(100 * time.Millisecond)
	if err := r.Commit(Metadata{UID: strconv.Itoa(os.Getpid())}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitFailure
	}
	return 0
}

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func reserve(t *testing.T, s *Store, id string) *Reservation {
	t.Helper()
	r, err := s.Reserve(t.Context(), id)
	if err != nil {
		t.Fatalf("Reserve(%q): %v", id, err)
	}
	t.Cleanup(r.Release)
	return r
}

func sampleMetadata(id string) Metadata {
	return Metadata{
		ID:            id,
		UID:           "0f1e2d3c",
		Backend:       "docker",
		PluginVersion: "1.2.3",
		Options:       json.RawMessage(`{"image":"debian:bookworm","mounts":["/a:/b"]}`),
		Record:        []byte{0, 1, 2, 0xff},
		Counts:        Counts{Masters: 1, Agents: 2, PublicAgents: 1},
		Nodes: []Node{{
			Role: "master", Index: 0, Name: "e2e-" + id + "-master-0", Hostname: "master-0",
			PrivateAddress: "172.18.0.2", PublicAddress: "172.18.0.2",
			SSHHost: "127.0.0.1", SSHPort: 32768, SSHUser: "root",
		}},
		SSHUser:    "root",
		SSHKeyPath: "/home/u/.ssh/id_ed25519",
		CreatedAt:  time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
	}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat: %v", err)
	}
	return fi.Mode().Perm()
}

func TestDefaultRoot(t *testing.T) {
	tests := []struct {
		name               string
		e2eHome, xdg, home string
		want               string
	}{
		{name: "E2E_HOME wins", e2eHome: "/custom/e2e", xdg: "/xdg", home: "/home/u", want: "/custom/e2e"},
		{name: "XDG_STATE_HOME", xdg: "/xdg", home: "/home/u", want: "/xdg/e2e"},
		{name: "relative XDG_STATE_HOME is ignored", xdg: "rel/xdg", home: "/home/u", want: "/home/u/.local/state/e2e"},
		{name: "HOME fallback", home: "/home/u", want: "/home/u/.local/state/e2e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("E2E_HOME", tt.e2eHome)
			t.Setenv("XDG_STATE_HOME", tt.xdg)
			t.Setenv("HOME", tt.home)
			got, err := DefaultRoot()
			if err != nil {
				t.Fatalf("DefaultRoot: %v", err)
			}
			if got != tt.want {
				t.Errorf("DefaultRoot() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestOpenCreatesPrivateRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a", "b")
	s, err := Open(root)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if s.Root() != root {
		t.Errorf("Root() = %q, want %q", s.Root(), root)
	}
	if m := mode(t, root); m != 0o700 {
		t.Errorf("root mode = %v, want 0700", m)
	}
	// Reopening an existing root works and keeps it.
	if _, err := Open(root); err != nil {
		t.Errorf("second Open: %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	s := openStore(t)
	ctx := t.Context()

	r := reserve(t, s, "alpha")
	if r.Dir() != s.ClusterDir("alpha") {
		t.Errorf("Dir() = %q, want %q", r.Dir(), s.ClusterDir("alpha"))
	}
	if m := mode(t, r.Dir()); m != 0o700 {
		t.Errorf("cluster dir mode = %v, want 0700", m)
	}
	_, keyPath, err := r.GenerateKey()
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	want := sampleMetadata("alpha")
	want.SSHKeyPath = keyPath
	if err := r.Commit(want); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	r.Release()

	got, err := s.Load("alpha")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load = %+v\nwant %+v", got, want)
	}
	if m := mode(t, filepath.Join(s.ClusterDir("alpha"), "cluster.json")); m != 0o600 {
		t.Errorf("cluster.json mode = %v, want 0600", m)
	}

	list, err := s.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list) != 1 || !reflect.DeepEqual(list[0], want) {
		t.Errorf("List = %+v, want [%+v]", list, want)
	}

	if err := s.Remove(ctx, "alpha"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := os.Stat(s.ClusterDir("alpha")); !os.IsNotExist(err) {
		t.Errorf("cluster dir still there after Remove: %v", err)
	}
	if _, err := s.Load("alpha"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load after Remove: err = %v, want ErrNotFound", err)
	}
	if list, err := s.List(); err != nil || len(list) != 0 {
		t.Errorf("List after Remove = %v, %v; want empty", list, err)
	}
	if err := s.Remove(ctx, "alpha"); err != nil {
		t.Errorf("second Remove: %v, want nil (idempotent)", err)
	}
	if err := s.Remove(ctx, "never-existed"); err != nil {
		t.Errorf("Remove of unknown id: %v, want nil", err)
	}
	// The id is free again.
	r2 := reserve(t, s, "alpha")
	if err := r2.Commit(Metadata{}); err != nil {
		t.Errorf("Commit after re-Reserve: %v", err)
	}
}

func TestMetadataJSONIsSnakeCase(t *testing.T) {
	s := openStore(t)
	r := reserve(t, s, "json")
	if err := r.Commit(sampleMetadata("json")); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(s.ClusterDir("json"), "cluster.json"))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatalf("cluster.json is not JSON: %v", err)
	}
	for _, k := range []string{"id", "uid", "backend", "plugin_version", "options", "record", "counts", "nodes", "ssh_user", "ssh_key_path", "created_at"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("cluster.json has no key %q: %s", k, data)
		}
	}
	if got := raw["record"]; got != "AAEC/w==" {
		t.Errorf("record = %v, want base64 AAEC/w==", got)
	}
	if got := raw["counts"].(map[string]any)["public_agents"]; got != 1.0 {
		t.Errorf("counts.public_agents = %v, want 1", got)
	}
	node := raw["nodes"].([]any)[0].(map[string]any)
	for _, k := range []string{"role", "index", "name", "hostname", "private_address", "public_address", "ssh_host", "ssh_port", "ssh_user"} {
		if _, ok := node[k]; !ok {
			t.Errorf("node has no key %q: %v", k, node)
		}
	}
}

func TestReserveCommittedIDFails(t *testing.T) {
	s := openStore(t)
	r := reserve(t, s, "taken")
	if err := r.Commit(sampleMetadata("taken")); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	r.Release()

	_, err := s.Reserve(t.Context(), "taken")
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second Reserve: err = %v, want ErrExists", err)
	}
	if !strings.Contains(err.Error(), `"taken"`) {
		t.Errorf("error %q does not name the cluster", err)
	}
	// The failed Reserve released the lock and left the record alone.
	got, err := s.Load("taken")
	if err != nil || !reflect.DeepEqual(got, sampleMetadata("taken")) {
		t.Errorf("Load after refused Reserve = %+v, %v", got, err)
	}
	if err := s.Update(t.Context(), "taken", func(*Metadata) error { return nil }); err != nil {
		t.Errorf("Update after refused Reserve (lock should be free): %v", err)
	}
}

func TestReserveRaceGoroutines(t *testing.T) {
	s := openStore(t)
	const n = 8
	var (
		wg     sync.WaitGroup
		wins   atomic.Int32
		exists atomic.Int32
		winner atomic.Value
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			r, err := s.Reserve(t.Context(), "race")
			if errors.Is(err, ErrExists) {
				exists.Add(1)
				return
			}
			if err != nil {
				t.Errorf("goroutine %d: Reserve: %v", i, err)
				return
			}
			defer r.Release()
			time.Sleep(20 * time.Millisecond)
			if err := r.Commit(Metadata{UID: strconv.Itoa(i)}); err != nil {
				t.Errorf("goroutine %d: Commit: %v", i, err)
				return
			}
			wins.Add(1)
			winner.Store(strconv.Itoa(i))
		})
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 || exists.Load() != n-1 {
		t.Fatalf("wins = %d, ErrExists = %d; want 1 and %d", wins.Load(), exists.Load(), n-1)
	}
	m, err := s.Load("race")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if m.UID != winner.Load() {
		t.Errorf("record UID = %q, want the winner's %q", m.UID, winner.Load())
	}
}

func TestReserveRaceProcesses(t *testing.T) {
	s := openStore(t)
	const n = 4
	type proc struct {
		cmd    *exec.Cmd
		stdin  *os.File
		stderr bytes.Buffer
	}
	procs := make([]*proc, n)
	for i := range procs {
		p := &proc{cmd: exec.Command(os.Args[0], "-test.run=^$")}
		p.cmd.Env = append(os.Environ(), helperEnv+"=reserve", helperRoot+"="+s.Root(), helperID+"=shared")
		p.cmd.Stderr = &p.stderr
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		p.cmd.Stdin = pr
		p.stdin = pw
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("start helper: %v", err)
		}
		pr.Close()
		t.Cleanup(func() {
			pw.Close()
			if p.cmd.ProcessState == nil {
				p.cmd.Process.Kill()
				p.cmd.Wait()
			}
		})
		procs[i] = p
	}
	// Let them all go at once.
	for _, p := range procs {
		if _, err := p.stdin.WriteString("\n"); err != nil {
			t.Fatal(err)
		}
		p.stdin.Close()
	}
	wins, lost := 0, 0
	winnerPID := ""
	for i, p := range procs {
		err := p.cmd.Wait()
		var exitErr *exec.ExitError
		switch {
		case err == nil:
			wins++
			winnerPID = strconv.Itoa(p.cmd.Process.Pid)
		case errors.As(err, &exitErr) && exitErr.ExitCode() == exitExists:
			lost++
		default:
			t.Errorf("helper %d: %v; stderr: %s", i, err, p.stderr.String())
		}
	}
	if wins != 1 || lost != n-1 {
		t.Fatalf("winners = %d, losers with ErrExists = %d; want 1 and %d", wins, lost, n-1)
	}
	m, err := s.Load("shared")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if m.UID != winnerPID {
		t.Errorf("record UID = %q, want the winner's pid %s", m.UID, winnerPID)
	}
}

func TestReserveWaitsForLock(t *testing.T) {
	s := openStore(t)
	r := reserve(t, s, "busy")

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := s.Reserve(ctx, "busy")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Reserve of a locked id: err = %v, want DeadlineExceeded", err)
	}
	if want := `another e2e process is working on cluster "busy"`; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	// Update and Remove also wait for the lock instead of touching a create in progress.
	ctx2, cancel2 := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel2()
	if err := s.Remove(ctx2, "busy"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Remove of a locked id: err = %v, want DeadlineExceeded", err)
	}
	if _, err := os.Stat(r.Dir()); err != nil {
		t.Errorf("Remove touched a reserved dir: %v", err)
	}

	// A waiter gets the id as soon as the holder gives it up.
	done := make(chan error, 1)
	go func() {
		r2, err := s.Reserve(t.Context(), "busy")
		if err == nil {
			r2.Release()
		}
		done <- err
	}()
	time.Sleep(30 * time.Millisecond)
	if err := r.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("waiting Reserve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiting Reserve did not get the lock after Abort")
	}
}

// Abort and Remove delete lock files while holding them; mutual exclusion
// must survive that.
func TestLockExclusiveWhileLockFilesAreDeleted(t *testing.T) {
	s := openStore(t)
	var (
		inside atomic.Int32
		wg     sync.WaitGroup
	)
	for g := range 6 {
		wg.Go(func() {
			for i := range 20 {
				r, err := s.Reserve(t.Context(), "mutex")
				if err != nil {
					t.Errorf("goroutine %d round %d: Reserve: %v", g, i, err)
					return
				}
				if n := inside.Add(1); n != 1 {
					t.Errorf("%d holders of the same id at once", n)
				}
				time.Sleep(time.Millisecond)
				inside.Add(-1)
				if i%2 == 0 {
					err = r.Abort()
				} else {
					r.Release()
					err = s.Remove(t.Context(), "mutex")
				}
				if err != nil {
					t.Errorf("goroutine %d round %d: %v", g, i, err)
				}
			}
		})
	}
	wg.Wait()
	if _, err := os.Stat(s.lockPath("mutex")); !os.IsNotExist(err) {
		t.Errorf("lock file left after the last Abort/Remove: %v", err)
	}
}

// A process that opened the lock file just before its holder deleted it must
// not believe it holds the lock once the deleted file is unlocked.
func TestStaleLockFileIsNotALock(t *testing.T) {
	s := openStore(t)
	path := s.lockPath("stale")
	r := reserve(t, s, "stale")
	waiter, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer waiter.Close()
	if err := r.Abort(); err != nil { // deletes the lock file, then unlocks it
		t.Fatal(err)
	}
	r2 := reserve(t, s, "stale") // a newcomer locks a fresh lock file
	held, err := waiter.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := isCurrent(held, path); err != nil || ok {
		t.Fatalf("the deleted lock file counts as the lock (%v, %v) while %s is reserved", ok, err, r2.Dir())
	}
	// Retrying the proper way waits for the real holder.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Reserve(ctx, "stale"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Reserve while reserved: err = %v, want DeadlineExceeded", err)
	}
}

func TestReserveCleansInterruptedCreate(t *testing.T) {
	tests := []struct {
		name      string
		interrupt func(t *testing.T, s *Store)
	}{
		{
			name: "leftover directory",
			interrupt: func(t *testing.T, s *Store) {
				dir := s.ClusterDir("crashed")
				if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "id_ed25519"), []byte("stale"), 0o600); err != nil {
					t.Fatal(err)
				}
				// What Reserve writes first: the proof that e2e made it.
				if err := os.WriteFile(filepath.Join(dir, reservedFile), []byte("reserved\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "released without commit",
			interrupt: func(t *testing.T, s *Store) {
				r := reserve(t, s, "crashed")
				if _, _, err := r.GenerateKey(); err != nil {
					t.Fatal(err)
				}
				r.Release()
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t)
			tt.interrupt(t, s)

			if list, err := s.List(); err != nil || len(list) != 0 {
				t.Errorf("List shows an uncommitted create: %v, %v", list, err)
			}
			if _, err := s.Load("crashed"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Load of an uncommitted create: err = %v, want ErrNotFound", err)
			}
			r := reserve(t, s, "crashed")
			entries, err := os.ReadDir(r.Dir())
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Name() != reservedFile {
				t.Errorf("reused dir not cleaned: %v", entries)
			}
			if m := mode(t, r.Dir()); m != 0o700 {
				t.Errorf("cluster dir mode = %v, want 0700", m)
			}
			if _, _, err := r.GenerateKey(); err != nil {
				t.Errorf("GenerateKey in the reused dir: %v", err)
			}
		})
	}
}

// TestReserveLeavesForeignDirectory: a directory in the clusters folder
// that e2e did not make (no record, no reservation marker) is never
// removed; Reserve and Remove say so and leave it as it is.
func TestReserveLeavesForeignDirectory(t *testing.T) {
	s := openStore(t)
	dir := s.ClusterDir("mine")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "thesis.tex")
	if err := os.WriteFile(data, []byte("years of work"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(context.Background(), "mine"); err == nil || !strings.Contains(err.Error(), "not made by e2e") {
		t.Errorf("Reserve over a foreign directory: err = %v, want one saying it was not made by e2e", err)
	}
	if err := s.Remove(context.Background(), "mine"); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("Remove of a foreign directory: err = %v, want one naming %s", err, dir)
	}
	if b, err := os.ReadFile(data); err != nil || string(b) != "years of work" {
		t.Errorf("the user's file changed: %q, %v", b, err)
	}
}

func TestAbortRemovesEverything(t *testing.T) {
	s := openStore(t)
	r := reserve(t, s, "gone")
	if _, _, err := r.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	if err := s.AddKnownHosts("gone", []HostKey{{Host: "127.0.0.1", Port: 2222, Key: newHostKey(t)}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Commit(sampleMetadata("gone")); err != nil {
		t.Fatal(err)
	}
	if err := r.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if _, err := os.Stat(r.Dir()); !os.IsNotExist(err) {
		t.Errorf("cluster dir still there after Abort: %v", err)
	}
	if _, err := s.Load("gone"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load after Abort: err = %v, want ErrNotFound", err)
	}
	if err := r.Abort(); err != nil {
		t.Errorf("second Abort: %v, want nil", err)
	}
	r.Release() // no-op after Abort
	if err := r.Commit(Metadata{}); err == nil {
		t.Error("Commit after Abort succeeded, want an error")
	}
	if _, _, err := r.GenerateKey(); err == nil {
		t.Error("GenerateKey after Abort succeeded, want an error")
	}
	// The lock was released: the id can be reserved at once.
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	r2, err := s.Reserve(ctx, "gone")
	if err != nil {
		t.Fatalf("Reserve after Abort: %v", err)
	}
	r2.Release()
}

func TestCommitRejectsOtherID(t *testing.T) {
	s := openStore(t)
	r := reserve(t, s, "mine")
	if err := r.Commit(Metadata{ID: "other"}); err == nil {
		t.Error("Commit with another cluster's id succeeded, want an error")
	}
	if err := r.Commit(Metadata{Backend: "docker"}); err != nil {
		t.Fatalf("Commit with empty id: %v", err)
	}
	m, err := s.Load("mine")
	if err != nil || m.ID != "mine" || m.Backend != "docker" {
		t.Errorf("Load = %+v, %v; want id mine, backend docker", m, err)
	}
}

func TestGenerateKey(t *testing.T) {
	s := openStore(t)
	r := reserve(t, s, "keys")
	authorized, privPath, err := r.GenerateKey()
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	if privPath != filepath.Join(r.Dir(), "id_ed25519") {
		t.Errorf("private key path = %q, want id_ed25519 in %q", privPath, r.Dir())
	}
	if m := mode(t, privPath); m != 0o600 {
		t.Errorf("private key mode = %v, want 0600", m)
	}
	pemBytes, err := os.ReadFile(privPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(pemBytes, []byte("-----BEGIN OPENSSH PRIVATE KEY-----")) {
		t.Errorf("private key is not in OpenSSH format: %.40q", pemBytes)
	}
	signer, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		t.Fatalf("ParsePrivateKey: %v", err)
	}
	if signer.PublicKey().Type() != ssh.KeyAlgoED25519 {
		t.Errorf("key type = %s, want ed25519", signer.PublicKey().Type())
	}
	pubFile, err := os.ReadFile(filepath.Join(r.Dir(), "id_ed25519.pub"))
	if err != nil {
		t.Fatal(err)
	}
	filePub, _, _, _, err := ssh.ParseAuthorizedKey(pubFile)
	if err != nil {
		t.Fatalf("parse id_ed25519.pub: %v", err)
	}
	retPub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(authorized))
	if err != nil {
		t.Fatalf("parse returned authorized key: %v", err)
	}
	want := signer.PublicKey().Marshal()
	if !bytes.Equal(filePub.Marshal(), want) || !bytes.Equal(retPub.Marshal(), want) {
		t.Error("public key in .pub or returned line differs from the private key's")
	}
	if strings.Contains(authorized, "\n") {
		t.Errorf("authorized key line %q contains a newline", authorized)
	}
	// A second key would orphan the public key already handed to the backend.
	if _, _, err := r.GenerateKey(); err == nil {
		t.Error("second GenerateKey succeeded, want an error")
	}
}

func newHostKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(ssh.MarshalAuthorizedKey(sp))
}

func TestAddKnownHosts(t *testing.T) {
	s := openStore(t)
	r := reserve(t, s, "kh")
	keyA, keyB, other := newHostKey(t), newHostKey(t), newHostKey(t)
	first := []HostKey{
		{Host: "127.0.0.1", Port: 32768, Key: keyA},
		{Host: "10.0.0.5", Port: 22, Key: keyB},
	}
	if err := s.AddKnownHosts("kh", first); err != nil {
		t.Fatalf("AddKnownHosts: %v", err)
	}
	// Adding again (a retry) and adding one more host keeps one line per entry.
	if err := s.AddKnownHosts("kh", append(first, HostKey{Host: "::1", Port: 2200, Key: keyA})); err != nil {
		t.Fatalf("second AddKnownHosts: %v", err)
	}
	if err := r.Commit(Metadata{}); err != nil {
		t.Fatal(err)
	}
	path := s.KnownHostsPath("kh")
	if path != filepath.Join(r.Dir(), "known_hosts") {
		t.Errorf("KnownHostsPath = %q", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n != 3 {
		t.Errorf("known_hosts has %d lines, want 3:\n%s", n, data)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("known_hosts mode = %v, want 0600", m)
	}

	check, err := knownhosts.New(path)
	if err != nil {
		t.Fatalf("knownhosts.New: %v", err)
	}
	parse := func(k string) ssh.PublicKey {
		p, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		addr    string
		key     string
		wantErr bool
	}{
		{"pinned key on random port", "127.0.0.1:32768", keyA, false},
		{"pinned key on port 22", "10.0.0.5:22", keyB, false},
		{"pinned key on IPv6", "[::1]:2200", keyA, false},
		{"different key", "127.0.0.1:32768", other, true},
		{"other node's key", "127.0.0.1:32768", keyB, true},
		{"same host, other port", "127.0.0.1:32769", keyA, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tcp, err := net.ResolveTCPAddr("tcp", tt.addr)
			if err != nil {
				t.Fatal(err)
			}
			err = check(tt.addr, tcp, parse(tt.key))
			if tt.wantErr {
				var ke *knownhosts.KeyError
				if !errors.As(err, &ke) {
					t.Errorf("check(%s) = %v, want a KeyError", tt.addr, err)
				}
			} else if err != nil {
				t.Errorf("check(%s) = %v, want accepted", tt.addr, err)
			}
		})
	}
}

func TestAddKnownHostsRejectsBadInput(t *testing.T) {
	s := openStore(t)
	reserve(t, s, "kh")
	good := newHostKey(t)
	tests := []struct {
		name string
		id   string
		key  HostKey
	}{
		{"unknown cluster", "nobody", HostKey{Host: "127.0.0.1", Port: 22, Key: good}},
		{"empty host", "kh", HostKey{Port: 22, Key: good}},
		{"port zero", "kh", HostKey{Host: "127.0.0.1", Key: good}},
		{"port too large", "kh", HostKey{Host: "127.0.0.1", Port: 70000, Key: good}},
		{"garbage key", "kh", HostKey{Host: "127.0.0.1", Port: 22, Key: "not a key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.AddKnownHosts(tt.id, []HostKey{tt.key}); err == nil {
				t.Error("AddKnownHosts succeeded, want an error")
			}
			if _, err := os.Stat(s.KnownHostsPath("kh")); !os.IsNotExist(err) {
				t.Errorf("known_hosts written despite the error: %v", err)
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	s := openStore(t)
	r := reserve(t, s, "upd")
	if err := r.Commit(sampleMetadata("upd")); err != nil {
		t.Fatal(err)
	}
	r.Release()
	ctx := t.Context()

	if err := s.Update(ctx, "upd", func(m *Metadata) error {
		m.Nodes = append(m.Nodes, Node{Role: "agent", Index: 0, SSHHost: "127.0.0.1", SSHPort: 32769})
		m.Counts.Agents = 3
		return nil
	}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	m, err := s.Load("upd")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Nodes) != 2 || m.Counts.Agents != 3 || m.Backend != "docker" {
		t.Errorf("after Update: %+v", m)
	}

	tests := []struct {
		name    string
		id      string
		fn      func(*Metadata) error
		wantErr error
	}{
		{"fn fails", "upd", func(m *Metadata) error { m.Backend = "aws"; return errors.New("boom") }, nil},
		{"id changed", "upd", func(m *Metadata) error { m.ID = "x"; m.Backend = "aws"; return nil }, nil},
		{"unknown cluster", "nope", func(*Metadata) error { return nil }, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Update(ctx, tt.id, tt.fn)
			if err == nil {
				t.Fatal("Update succeeded, want an error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if got, _ := s.Load("upd"); got.Backend != "docker" {
				t.Errorf("failed Update changed the record: backend = %q", got.Backend)
			}
		})
	}
}

func TestListSortedCommittedOnly(t *testing.T) {
	s := openStore(t)
	for _, id := range []string{"zeta", "Alpha", "mid.1", "beta"} {
		r := reserve(t, s, id)
		if err := r.Commit(Metadata{}); err != nil {
			t.Fatal(err)
		}
		r.Release()
	}
	reserve(t, s, "in-progress") // reserved, never committed
	if err := os.WriteFile(filepath.Join(s.Root(), "clusters", "stray-file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	list, err := s.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var ids []string
	for _, m := range list {
		ids = append(ids, m.ID)
	}
	if want := []string{"Alpha", "beta", "mid.1", "zeta"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("List ids = %v, want %v", ids, want)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.txt")
	for _, content := range []string{"first version\n", "second, longer version\n", ""} {
		if err := WriteFileAtomic(path, []byte(content), 0o640); err != nil {
			t.Fatalf("WriteFileAtomic: %v", err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Errorf("content = %q, %v; want %q", got, err, content)
		}
	}
	if m := mode(t, path); m != 0o640 {
		t.Errorf("mode = %v, want 0640", m)
	}
	// A failed write (the target is a non-empty directory) leaves the old state and no temp file.
	blocker := filepath.Join(dir, "blocker")
	if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(blocker, []byte("data"), 0o600); err == nil {
		t.Error("WriteFileAtomic over a directory succeeded, want an error")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"blocker", "f.txt"}; !reflect.DeepEqual(names, want) {
		t.Errorf("directory holds %v, want only %v (no temp files)", names, want)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600); err == nil {
		t.Error("WriteFileAtomic into a missing directory succeeded, want an error")
	}
}

func TestInvalidIDsRefused(t *testing.T) {
	s := openStore(t)
	// A sibling of the clusters dir that a traversal would reach.
	victim := filepath.Join(s.Root(), "victim")
	if err := os.MkdirAll(victim, 0o700); err != nil {
		t.Fatal(err)
	}
	ids := []string{
		"", ".", "..", "../victim", "../../etc", "a/b", "/abs", ".hidden", "-flag", "_x",
		"has space", "tab\t", "nul\x00", "ünïcode", strings.Repeat("a", 41),
	}
	ctx := t.Context()
	for _, id := range ids {
		t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
			if _, err := s.Reserve(ctx, id); err == nil {
				t.Error("Reserve accepted it")
			}
			if _, err := s.Load(id); err == nil || errors.Is(err, ErrNotFound) {
				t.Errorf("Load: err = %v, want an invalid-id error", err)
			}
			if err := s.Update(ctx, id, func(*Metadata) error { return nil }); err == nil {
				t.Error("Update accepted it")
			}
			if err := s.Remove(ctx, id); err == nil {
				t.Error("Remove accepted it")
			}
			if err := s.AddKnownHosts(id, nil); err == nil {
				t.Error("AddKnownHosts accepted it")
			}
			if d := s.ClusterDir(id); d != "" {
				t.Errorf("ClusterDir = %q, want empty", d)
			}
			if p := s.KnownHostsPath(id); p != "" {
				t.Errorf("KnownHostsPath = %q, want empty", p)
			}
		})
	}
	if _, err := os.Stat(victim); err != nil {
		t.Errorf("directory outside clusters/ was touched: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(s.Root(), "locks")); len(entries) != 0 {
		t.Errorf("lock files created for invalid ids: %v", entries)
	}
	for _, id := range []string{"a", "default", "A.b_c-d", "0", strings.Repeat("z", 40)} {
		r, err := s.Reserve(ctx, id)
		if err != nil {
			t.Errorf("Reserve(%q) of a valid id: %v", id, err)
			continue
		}
		if err := r.Abort(); err != nil {
			t.Errorf("Abort(%q): %v", id, err)
		}
	}
}
