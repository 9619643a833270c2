package state

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKey is a node's SSH host key and the name it is pinned under.
type HostKey struct {
	// Alias, when set, is the name the key is pinned under instead of Host
	// and Port: the node's identity, so the key stays valid when its port
	// changes (OpenSSH's HostKeyAlias). It is written bare, as OpenSSH
	// writes an alias's entry.
	Alias string
	// Host and Port are the endpoint the core dials, for a key pinned by
	// address (Alias empty).
	Host string
	Port int
	Key  string // authorized_keys format, e.g. "ssh-ed25519 AAAA..."
}

// name is the host name of the key's known_hosts entry: the alias, or the
// normalised address ([host]:port unless the port is 22).
func (k HostKey) name() string {
	if k.Alias != "" {
		return k.Alias
	}
	return knownhosts.Normalize(net.JoinHostPort(k.Host, strconv.Itoa(k.Port)))
}

// AddKnownHosts appends entries for keys to the cluster's known_hosts file in
// OpenSSH format, replacing the file atomically. Entries already present are
// not repeated. The cluster directory must exist (reserved or committed);
// callers serialize with other processes through the cluster's reservation
// or lock.
func (s *Store) AddKnownHosts(id string, keys []HostKey) error {
	_, err := s.addKnownHosts(id, keys, false)
	return err
}

// PinNewHostKeys is AddKnownHosts for names that have no entry in the
// cluster's known_hosts yet: a name that has one keeps exactly the keys it
// has, so a key that differs from a pinned one is never added beside it
// (it stays refused as changed). It returns the names it pinned.
func (s *Store) PinNewHostKeys(id string, keys []HostKey) ([]string, error) {
	return s.addKnownHosts(id, keys, true)
}

func (s *Store) addKnownHosts(id string, keys []HostKey, onlyNew bool) ([]string, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	lines := make([]string, len(keys))
	for i, k := range keys {
		line, err := knownHostsLine(k)
		if err != nil {
			return nil, fmt.Errorf("add known hosts of cluster %q: %w", id, err)
		}
		lines[i] = line
	}
	if _, err := os.Stat(s.ClusterDir(id)); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("add known hosts: cluster %q: %w", id, ErrNotFound)
	}

	s.knownHostsMu.Lock()
	defer s.knownHostsMu.Unlock()
	path := s.KnownHostsPath(id)
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("add known hosts of cluster %q: %w", id, err)
	}
	seen := make(map[string]bool)
	for l := range strings.Lines(string(old)) {
		seen[strings.TrimSpace(l)] = true
	}
	pinned, err := pinnedNames(old)
	if err != nil {
		return nil, fmt.Errorf("add known hosts of cluster %q: %s: %w", id, path, err)
	}
	buf := bytes.NewBuffer(old)
	if len(old) > 0 && old[len(old)-1] != '\n' {
		buf.WriteByte('\n')
	}
	var added []string
	for i, l := range lines {
		name := keys[i].name()
		if seen[l] || (onlyNew && pinned[name]) {
			continue
		}
		seen[l] = true
		buf.WriteString(l + "\n")
		if !slices.Contains(added, name) {
			added = append(added, name)
		}
	}
	if len(added) == 0 && len(old) > 0 {
		return nil, nil
	}
	if err := WriteFileAtomic(path, buf.Bytes(), 0o600); err != nil {
		return nil, fmt.Errorf("add known hosts of cluster %q: %w", id, err)
	}
	return added, nil
}

// pinnedNames returns the host names that known_hosts data pins keys for,
// as written (e2e writes no hashed or wildcard entries). Data it cannot
// read is an error: a name it missed could get a second key.
func pinnedNames(data []byte) (map[string]bool, error) {
	names := map[string]bool{}
	for {
		marker, hosts, _, _, rest, err := ssh.ParseKnownHosts(data)
		if errors.Is(err, io.EOF) {
			return names, nil
		}
		if err != nil {
			return nil, err
		}
		if marker == "" {
			for _, h := range hosts {
				names[h] = true
			}
		}
		data = rest
	}
}

// aliasForbidden are the characters known_hosts gives a meaning to in a
// host name (lists, wildcards, negation, brackets, markers, comments).
const aliasForbidden = ",*?![]|@#"

func knownHostsLine(k HostKey) (string, error) {
	switch {
	case k.Alias != "":
		if strings.ContainsAny(k.Alias, aliasForbidden) || strings.IndexFunc(k.Alias, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
			return "", fmt.Errorf("host key alias %q: not usable as a known_hosts host name", k.Alias)
		}
	case k.Host == "":
		return "", errors.New("host key with an empty host")
	case k.Port < 1 || k.Port > 65535:
		return "", fmt.Errorf("host key of %s: invalid port %d", k.Host, k.Port)
	}
	pub, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(k.Key))
	if err != nil {
		return "", fmt.Errorf("host key of %s: %w", k.name(), err)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return "", fmt.Errorf("host key of %s: more than one key", k.name())
	}
	return knownhosts.Line([]string{k.name()}, pub), nil
}
