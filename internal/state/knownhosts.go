package state

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKey is a node's SSH host key, pinned for the endpoint the core dials.
type HostKey struct {
	Host string
	Port int
	Key  string // authorized_keys format, e.g. "ssh-ed25519 AAAA..."
}

// AddKnownHosts appends entries for keys to the cluster's known_hosts file in
// OpenSSH format, replacing the file atomically. Entries already present are
// not repeated. The cluster directory must exist (reserved or committed);
// callers serialize with other processes through the cluster's reservation.
func (s *Store) AddKnownHosts(id string, keys []HostKey) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	lines := make([]string, 0, len(keys))
	for _, k := range keys {
		line, err := knownHostsLine(k)
		if err != nil {
			return fmt.Errorf("add known hosts of cluster %q: %w", id, err)
		}
		lines = append(lines, line)
	}
	if _, err := os.Stat(s.ClusterDir(id)); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("add known hosts: cluster %q: %w", id, ErrNotFound)
	}

	s.knownHostsMu.Lock()
	defer s.knownHostsMu.Unlock()
	path := s.KnownHostsPath(id)
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("add known hosts of cluster %q: %w", id, err)
	}
	seen := make(map[string]bool)
	for l := range strings.Lines(string(old)) {
		seen[strings.TrimSpace(l)] = true
	}
	buf := bytes.NewBuffer(old)
	if len(old) > 0 && old[len(old)-1] != '\n' {
		buf.WriteByte('\n')
	}
	for _, l := range lines {
		if seen[l] {
			continue
		}
		seen[l] = true
		buf.WriteString(l + "\n")
	}
	if err := WriteFileAtomic(path, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("add known hosts of cluster %q: %w", id, err)
	}
	return nil
}

func knownHostsLine(k HostKey) (string, error) {
	if k.Host == "" {
		return "", errors.New("host key with an empty host")
	}
	if k.Port < 1 || k.Port > 65535 {
		return "", fmt.Errorf("host key of %s: invalid port %d", k.Host, k.Port)
	}
	pub, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(k.Key))
	if err != nil {
		return "", fmt.Errorf("host key of %s: %w", net.JoinHostPort(k.Host, strconv.Itoa(k.Port)), err)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return "", fmt.Errorf("host key of %s: more than one key", net.JoinHostPort(k.Host, strconv.Itoa(k.Port)))
	}
	addr := knownhosts.Normalize(net.JoinHostPort(k.Host, strconv.Itoa(k.Port)))
	return knownhosts.Line([]string{addr}, pub), nil
}
