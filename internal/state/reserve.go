package state

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Reservation is the exclusive right to create cluster id: it holds the id's
// lock until Release or Abort. A Reservation is meant for one goroutine.
type Reservation struct {
	s       *Store
	id      string
	dir     string
	lock    *fileLock // nil once released
	aborted bool
}

// Reserve takes the exclusive lock of id (waiting until ctx is done if another
// process holds it) and creates the cluster directory. It fails with an error
// wrapping ErrExists if a committed record of id exists. A directory left by an
// interrupted create (one without cluster.json) is emptied and reused.
//
// Reserve tries the lock once even if ctx is already done, so that cleanup
// paths running after a cancellation still work when nobody else holds it.
func (s *Store) Reserve(ctx context.Context, id string) (*Reservation, error) {
	l, err := s.lock(ctx, id)
	if err != nil {
		return nil, err
	}
	dir := s.ClusterDir(id)
	_, err = os.Stat(filepath.Join(dir, metadataFile))
	switch {
	case err == nil:
		l.unlock()
		return nil, fmt.Errorf("cluster %q: %w", id, ErrExists)
	case !errors.Is(err, fs.ErrNotExist):
		l.unlock()
		return nil, fmt.Errorf("reserve cluster %q: %w", id, err)
	}
	// We hold the lock and there is no record: what is here is a leftover
	// of an interrupted create, removed only if its marker proves it.
	if err := s.removeDir(id); err != nil {
		l.unlock()
		return nil, fmt.Errorf("reserve cluster %q: clean interrupted create: %w", id, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		l.unlock()
		return nil, fmt.Errorf("reserve cluster %q: %w", id, err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, reservedFile), []byte("reserved by e2e pid "+strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		_ = os.Remove(dir)
		l.unlock()
		return nil, fmt.Errorf("reserve cluster %q: %w", id, err)
	}
	return &Reservation{s: s, id: id, dir: dir, lock: l}, nil
}

// Dir returns the cluster directory.
func (r *Reservation) Dir() string { return r.dir }

func (r *Reservation) active() error {
	if r.lock == nil {
		return fmt.Errorf("reservation of cluster %q was already released", r.id)
	}
	return nil
}

// GenerateKey makes an ed25519 key pair in the cluster directory: id_ed25519
// (OpenSSH format, 0600) and id_ed25519.pub. It returns the public key as an
// authorized_keys line (without a trailing newline) and the private key's path.
func (r *Reservation) GenerateKey() (authorizedKey string, privateKeyPath string, err error) {
	if err := r.active(); err != nil {
		return "", "", err
	}
	privPath := filepath.Join(r.dir, privateKeyFile)
	// Refuse to replace a key whose public half may already be on nodes.
	if _, err := os.Lstat(privPath); err == nil {
		return "", "", fmt.Errorf("generate key for cluster %q: %s already exists", r.id, privPath)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("generate key for cluster %q: %w", r.id, err)
	}
	comment := "e2e-" + r.id
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return "", "", fmt.Errorf("generate key for cluster %q: %w", r.id, err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", "", fmt.Errorf("generate key for cluster %q: %w", r.id, err)
	}
	line := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(sshPub)), "\n") + " " + comment
	if err := WriteFileAtomic(privPath, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", "", fmt.Errorf("generate key for cluster %q: %w", r.id, err)
	}
	if err := WriteFileAtomic(filepath.Join(r.dir, publicKeyFile), []byte(line+"\n"), 0o644); err != nil {
		return "", "", fmt.Errorf("generate key for cluster %q: %w", r.id, err)
	}
	return line, privPath, nil
}

// Commit writes cluster.json atomically (0600); from then on the cluster
// exists for Load, List and Reserve. An empty m.ID is set to the reserved id;
// a different one is refused. Commit may be called again to replace the record.
func (r *Reservation) Commit(m Metadata) error {
	if err := r.active(); err != nil {
		return err
	}
	if m.ID == "" {
		m.ID = r.id
	}
	if m.ID != r.id {
		return fmt.Errorf("commit cluster %q: metadata names cluster %q", r.id, m.ID)
	}
	return r.s.writeMetadata(r.id, m)
}

// Abort removes the cluster directory (everything Reserve, GenerateKey and
// Commit made) and releases the lock. Aborting twice is a no-op; aborting
// after Release is an error, since the lock no longer protects the directory.
func (r *Reservation) Abort() error {
	if r.aborted {
		return nil
	}
	if err := r.active(); err != nil {
		return err
	}
	l := r.lock
	r.lock = nil
	defer l.unlock()
	// A failed removal leaves a directory without a record: the next Reserve cleans it.
	if err := r.s.removeDir(r.id); err != nil {
		return err
	}
	r.aborted = true
	return l.remove()
}

// Release releases the lock. It is a no-op after Abort or a previous Release.
// Releasing without Commit leaves a directory that the next Reserve cleans.
func (r *Reservation) Release() {
	if r.lock != nil {
		r.lock.unlock()
		r.lock = nil
	}
}
