package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
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
		Nodes: []NodeRecord{{
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

func TestUpdate(t *testing.T) {
	s := openStore(t)
	r := reserve(t, s, "upd")
	if err := r.Commit(sampleMetadata("upd")); err != nil {
		t.Fatal(err)
	}
	r.Release()
	ctx := t.Context()

	if err := s.Update(ctx, "upd", func(m *Metadata) error {
		m.Nodes = append(m.Nodes, NodeRecord{Role: "agent", Index: 0, SSHHost: "127.0.0.1", SSHPort: 32769})
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

// TestBusy: a cluster id whose lock another holder has (a create or a
// destroy in progress) is busy; once released it is not, and asking takes
// no lock of its own.
func TestBusy(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if s.Busy("web") {
		t.Fatal("an id nobody works on is busy")
	}
	r, err := s.Reserve(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if !s.Busy("web") {
		t.Error("an id being created is not busy")
	}
	if s.Busy("other") {
		t.Error("another id is busy")
	}
	if err := r.Abort(); err != nil {
		t.Fatal(err)
	}
	if s.Busy("web") {
		t.Error("an id is still busy after its create was aborted")
	}
	if s.Busy("no/slashes") {
		t.Error("an invalid id is busy")
	}
}
