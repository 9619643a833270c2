package state

import (
	"bytes"
	"context"
	"errors"
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
)

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
