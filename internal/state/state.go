// Package state keeps what the core must remember about each cluster and a
// backend cannot: the generated SSH key pair, the pinned host keys and the
// non-secret metadata needed to find the cluster again.
//
// Layout under the root directory:
//
//	clusters/<id>/e2e-reserved   owner record written when the id is reserved
//	clusters/<id>/cluster.json   committed metadata (its presence means "created")
//	clusters/<id>/id_ed25519     generated private key (0600) and id_ed25519.pub
//	clusters/<id>/known_hosts    pinned host keys
//	locks/<id>.lock              flock held while a process works on <id>
//
// Every file is written atomically, and every change to a cluster's record
// happens under its lock, so concurrent e2e processes never see or produce a
// half-written state.
package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/e2e-tool/e2e/sdk"
)

var (
	// ErrExists means a committed record of the cluster id already exists.
	ErrExists = errors.New("cluster already exists")
	// ErrNotFound means there is no committed record of the cluster id.
	ErrNotFound = errors.New("no such cluster")
)

const (
	metadataFile = "cluster.json"
	// reservedFile is written first in every cluster directory: it proves
	// e2e made the directory, so that e2e removes nothing else.
	reservedFile   = "e2e-reserved"
	knownHostsFile = "known_hosts"
	privateKeyFile = "id_ed25519"
	publicKeyFile  = "id_ed25519.pub"
	clustersDir    = "clusters"
	locksDir       = "locks"
)

// ValidateID reports whether id is a valid cluster id; a valid id is also a
// single path element that cannot be "." or "..".
func ValidateID(id string) error { return sdk.ValidateClusterID(id) }

// DefaultRoot returns the state directory: $E2E_HOME if set; else
// $XDG_STATE_HOME/e2e; else $HOME/.local/state/e2e.
func DefaultRoot() (string, error) {
	if d := os.Getenv("E2E_HOME"); d != "" {
		return d, nil
	}
	// The XDG spec says relative paths in XDG_* variables are invalid and must be ignored.
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "e2e"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find state directory: set E2E_HOME: %w", err)
	}
	return filepath.Join(home, ".local", "state", "e2e"), nil
}

// Counts is the number of nodes of each role.
type Counts struct {
	Masters      int `json:"masters"`
	Agents       int `json:"agents"`
	PublicAgents int `json:"public_agents"`
}

// NodeRecord is what the core remembers of a node: the record a cluster's
// handle on the node (cluster.Node) is made from again on every Get.
type NodeRecord struct {
	Role           sdk.Role `json:"role"`
	Index          int      `json:"index"`
	Name           string   `json:"name"`
	Hostname       string   `json:"hostname"`
	PrivateAddress string   `json:"private_address"`
	PublicAddress  string   `json:"public_address"`
	SSHHost        string   `json:"ssh_host"`
	SSHPort        int      `json:"ssh_port"`
	SSHUser        string   `json:"ssh_user"`
	// HostKeyAlias is the name the node's host keys are pinned under in the
	// cluster's known_hosts, instead of its SSH address; empty when they
	// are pinned by address (keys the backend did not vouch for, or a
	// cluster recorded by an e2e from before aliases).
	HostKeyAlias string `json:"host_key_alias,omitempty"`
}

// Metadata is a cluster's committed record, stored as cluster.json.
type Metadata struct {
	ID            string `json:"id"`
	UID           string `json:"uid"`
	Backend       string `json:"backend"`
	PluginVersion string `json:"plugin_version"`
	// Options are the backend options without secrets; the caller strips
	// them. Load returns them in compact form.
	Options json.RawMessage `json:"options,omitempty"`
	// Record is the backend's opaque cluster record (base64 in JSON).
	Record []byte       `json:"record,omitempty"`
	Counts Counts       `json:"counts"`
	Nodes  []NodeRecord `json:"nodes"`
	// SSHUser and SSHKeyPath are the credentials the core uses: the generated
	// key in the cluster directory, or the user's own.
	SSHUser    string `json:"ssh_user"`
	SSHKeyPath string `json:"ssh_key_path,omitempty"`
	// SSHAgent says the keys of the user's ssh-agent are offered too.
	SSHAgent bool `json:"ssh_agent,omitempty"`
	// KnownHosts are the user's known_hosts files consulted besides the
	// cluster's own.
	KnownHosts []string `json:"known_hosts,omitempty"`
	// SSHProxyCommand, when set, carries SSH to the nodes instead of a
	// dial (OpenSSH's ProxyCommand, with its % tokens unexpanded).
	SSHProxyCommand string `json:"ssh_proxy_command,omitempty"`
	// Installed names what e2e installed on the nodes ("dcos"), if anything.
	Installed string    `json:"installed,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Store is the state directory. Its methods are safe for concurrent use, and
// its locks also exclude other processes.
type Store struct {
	root string
	// knownHostsMu serializes known_hosts read-modify-writes within this
	// process; those happen while a Reservation holds the file lock, so they
	// cannot take it themselves.
	knownHostsMu sync.Mutex
}

// Open opens the state directory root, creating it (0700) if needed.
func Open(root string) (*Store, error) {
	if root == "" {
		return nil, errors.New("open state directory: empty path")
	}
	// Absolute, so that key paths recorded in metadata stay valid from any working directory.
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open state directory %s: %w", root, err)
	}
	for _, d := range []string{abs, filepath.Join(abs, clustersDir), filepath.Join(abs, locksDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open state directory: %w", err)
		}
	}
	return &Store{root: abs}, nil
}

// Root returns the absolute path of the state directory.
func (s *Store) Root() string { return s.root }

// ClusterDir returns the directory of cluster id, or "" if id is invalid (so
// that a bad id can never name a path outside the root).
func (s *Store) ClusterDir(id string) string {
	if ValidateID(id) != nil {
		return ""
	}
	return filepath.Join(s.root, clustersDir, id)
}

// KnownHostsPath returns the known_hosts file of cluster id, or "" if id is invalid.
func (s *Store) KnownHostsPath(id string) string {
	if ValidateID(id) != nil {
		return ""
	}
	return filepath.Join(s.ClusterDir(id), knownHostsFile)
}

func (s *Store) lockPath(id string) string {
	return filepath.Join(s.root, locksDir, id+".lock")
}

// lock takes the exclusive lock of id, after checking id, waiting until
// ctx is done.
func (s *Store) lock(ctx context.Context, id string) (*fileLock, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	l, err := acquireLock(ctx, s.lockPath(id))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return nil, fmt.Errorf("another e2e process is working on cluster %q: %w", id, err)
		}
		return nil, fmt.Errorf("lock cluster %q: %w", id, err)
	}
	return l, nil
}

// Busy reports whether another e2e process (or another Reservation of
// this one) holds the lock of cluster id: it is being created or destroyed
// right now. It does not wait.
func (s *Store) Busy(id string) bool {
	if ValidateID(id) != nil {
		return false
	}
	l, err := tryLockPath(s.lockPath(id))
	if err != nil || l == nil {
		return l == nil && err == nil
	}
	l.unlock()
	return false
}

// Load returns the committed record of cluster id; the error wraps ErrNotFound
// if there is none. It takes no lock: records are replaced atomically.
func (s *Store) Load(id string) (Metadata, error) {
	if err := ValidateID(id); err != nil {
		return Metadata{}, err
	}
	return s.load(id)
}

func (s *Store) load(id string) (Metadata, error) {
	path := filepath.Join(s.ClusterDir(id), metadataFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Metadata{}, fmt.Errorf("cluster %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Metadata{}, fmt.Errorf("read cluster %q: %w", id, err)
	}
	var m Metadata
	if err := json.Unmarshal(data, &m); err != nil {
		return Metadata{}, fmt.Errorf("read cluster %q: %s is corrupt: %w", id, path, err)
	}
	if m.ID != id {
		return Metadata{}, fmt.Errorf("read cluster %q: %s records cluster %q", id, path, m.ID)
	}
	// The file is indented for people; callers get the options back compact.
	if len(m.Options) > 0 {
		var b bytes.Buffer
		if err := json.Compact(&b, m.Options); err != nil {
			return Metadata{}, fmt.Errorf("read cluster %q: %s is corrupt: %w", id, path, err)
		}
		m.Options = b.Bytes()
	}
	return m, nil
}

// List returns the committed records, sorted by ID. Directories of creates in
// progress (or interrupted) have no record and are not listed.
func (s *Store) List() ([]Metadata, error) {
	entries, err := os.ReadDir(filepath.Join(s.root, clustersDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	var out []Metadata
	for _, e := range entries {
		if !e.IsDir() || ValidateID(e.Name()) != nil {
			continue
		}
		m, err := s.load(e.Name())
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list clusters: %w", err)
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Metadata) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Update applies fn to the record of cluster id under its lock and writes the
// result atomically. Nothing is written if fn returns an error.
func (s *Store) Update(ctx context.Context, id string, fn func(*Metadata) error) error {
	l, err := s.lock(ctx, id)
	if err != nil {
		return err
	}
	defer l.unlock()
	m, err := s.load(id)
	if err != nil {
		return err
	}
	if err := fn(&m); err != nil {
		return fmt.Errorf("update cluster %q: %w", id, err)
	}
	if m.ID != id {
		return fmt.Errorf("update cluster %q: the id cannot change (got %q)", id, m.ID)
	}
	return s.writeMetadata(id, m)
}

// Remove deletes everything stored about cluster id, under its lock. Removing
// an unknown id is not an error.
func (s *Store) Remove(ctx context.Context, id string) error {
	l, err := s.lock(ctx, id)
	if err != nil {
		return err
	}
	defer l.unlock()
	if err := s.removeDir(id); err != nil {
		return err
	}
	return l.remove()
}

// removeDir deletes the cluster directory. The record goes first, so that a
// removal interrupted half-way leaves what Reserve treats as an interrupted
// create, never a committed record with its key missing. A directory that
// holds neither the record nor the reservation marker was not made by e2e
// and is left alone, with an error naming it.
func (s *Store) removeDir(id string) error {
	dir := s.ClusterDir(id)
	if !s.madeByE2E(dir) {
		if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove cluster %q: %s was not made by e2e (no %s or %s in it): move it away", id, dir, metadataFile, reservedFile)
	}
	if err := os.Remove(filepath.Join(dir, metadataFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove cluster %q: %w", id, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove cluster %q: %w", id, err)
	}
	return nil
}

// madeByE2E reports whether dir is a real directory (not a link) holding
// the record or the reservation marker as regular files.
func (s *Store) madeByE2E(dir string) bool {
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
		return false
	}
	for _, f := range []string{metadataFile, reservedFile} {
		if fi, err := os.Lstat(filepath.Join(dir, f)); err == nil && fi.Mode().IsRegular() {
			return true
		}
	}
	return false
}

func (s *Store) writeMetadata(id string, m Metadata) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("write cluster %q: %w", id, err)
	}
	data = append(data, '\n')
	if err := WriteFileAtomic(filepath.Join(s.ClusterDir(id), metadataFile), data, 0o600); err != nil {
		return fmt.Errorf("write cluster %q: %w", id, err)
	}
	return nil
}
