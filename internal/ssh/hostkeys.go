package ssh

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// hostKeyChecker checks server host keys against a Config's known_hosts
// files, read once per Dial.
type hostKeyChecker struct {
	files     []string
	acceptNew bool
	db        gossh.HostKeyCallback
	// recorded is the key accept-new appended in an earlier attempt of
	// the same Dial (db does not see it): a retry must not append it again.
	recorded gossh.PublicKey
}

func newHostKeyChecker(cfg Config) (*hostKeyChecker, error) {
	var existing []string
	for _, f := range cfg.KnownHosts {
		switch _, err := os.Stat(f); {
		case errors.Is(err, fs.ErrNotExist):
			// Missing files are empty: accept-new creates KnownHosts[0].
		case err != nil:
			return nil, fmt.Errorf("known hosts: %w", err)
		default:
			existing = append(existing, f)
		}
	}
	if cfg.AcceptNew {
		if len(cfg.KnownHosts) == 0 {
			return nil, errors.New("accept-new needs a known_hosts file to record new host keys in")
		}
		dir := filepath.Dir(cfg.KnownHosts[0])
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("known hosts file %s: directory %s does not exist", cfg.KnownHosts[0], dir)
		}
	}
	db, err := knownhosts.New(existing...)
	if err != nil {
		return nil, fmt.Errorf("read known hosts: %w", err)
	}
	return &hostKeyChecker{files: cfg.KnownHosts, acceptNew: cfg.AcceptNew, db: db}, nil
}

// algorithms returns the host key algorithms of the keys pinned for name
// (an address, or an alias as hostKeyName gives it), or nil when none is. Asking the server for exactly these makes it present a
// key we can check: otherwise a server with, say, ed25519 and ECDSA keys
// presents ed25519 while the ECDSA one is pinned, a false "changed key".
func (h *hostKeyChecker) algorithms(name string) []string {
	var ke *knownhosts.KeyError
	if !errors.As(h.db(name, tcpAddr(name), probeKey{}), &ke) {
		return nil
	}
	var algos []string
	for _, k := range ke.Want {
		for _, a := range algorithmsFor(k.Key.Type()) {
			if !slices.Contains(algos, a) {
				algos = append(algos, a)
			}
		}
	}
	return algos
}

func algorithmsFor(keyType string) []string {
	if keyType == gossh.KeyAlgoRSA {
		// An RSA key signs with SHA-2 on any sshd of the last decade.
		return []string{gossh.KeyAlgoRSASHA512, gossh.KeyAlgoRSASHA256, gossh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// callback checks the key presented by ep against the entries for its
// host key name: the alias when ep has one, else the address dialled.
func (h *hostKeyChecker) callback(ep Endpoint) gossh.HostKeyCallback {
	addr, name := ep.Addr(), ep.hostKeyName()
	return func(_ string, remote net.Addr, key gossh.PublicKey) error {
		err := h.db(name, remote, key)
		if err == nil {
			return nil
		}
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case errors.As(err, &ke) && len(ke.Want) == 0 && h.recorded != nil:
			if bytes.Equal(h.recorded.Marshal(), key.Marshal()) {
				return nil
			}
			return &HostKeyChangedError{Addr: addr, Alias: ep.HostKeyAlias, KnownHosts: h.files[0], Key: key}
		case errors.As(err, &ke) && len(ke.Want) == 0:
			if !h.acceptNew {
				return &UnknownHostError{Addr: addr, Alias: ep.HostKeyAlias, KnownHosts: h.files, Key: key}
			}
			if err := appendKnownHost(h.files[0], name, key); err != nil {
				return fmt.Errorf("record host key of %s: %w", addr, err)
			}
			h.recorded = key
			return nil
		case errors.As(err, &ke):
			old := ke.Want[0]
			for _, k := range ke.Want {
				if k.Key.Type() == key.Type() {
					old = k
					break
				}
			}
			return &HostKeyChangedError{Addr: addr, Alias: ep.HostKeyAlias, KnownHosts: old.Filename, Line: old.Line, Key: key}
		case errors.As(err, &re):
			return fmt.Errorf("host key of %s (%s) is marked @revoked in %s line %d", describeHost(addr, ep.HostKeyAlias), fingerprint(key), re.Revoked.Filename, re.Revoked.Line)
		default:
			return fmt.Errorf("check host key of %s: %w", describeHost(addr, ep.HostKeyAlias), err)
		}
	}
}

// appendKnownHost adds one line for name (host:port, or an alias on port 22,
// which is written bare) with a single O_APPEND write, so concurrent Dials
// (fan-out to new nodes) never interleave their entries.
func appendKnownHost(file, name string, key gossh.PublicKey) error {
	line := knownhosts.Line([]string{knownhosts.Normalize(name)}, key) + "\n"
	f, err := os.OpenFile(file, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, fi.Size()-1); err == nil && last[0] != '\n' {
			line = "\n" + line
		}
	}
	if _, err := f.WriteString(line); err != nil {
		return err
	}
	return f.Close()
}

// probeKey matches no known_hosts entry, so checking it yields the entries
// known for an address.
type probeKey struct{}

func (probeKey) Type() string    { return "probe@e2e.invalid" }
func (probeKey) Marshal() []byte { return []byte("\x00\x00\x00\x11probe@e2e.invalid") }
func (probeKey) Verify([]byte, *gossh.Signature) error {
	return errors.New("probe key verifies nothing")
}
func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }

// tcpAddr is a net.Addr for an address that has not been dialled yet.
type tcpAddr string
