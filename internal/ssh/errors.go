package ssh

import (
	"fmt"
	"strings"
	"time"

	"github.com/e2e-tool/e2e/internal/shell"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyChangedError reports a host whose key differs from the one pinned
// for it: a rebuilt machine, or someone in the middle.
type HostKeyChangedError struct {
	Addr string
	// Alias is the name the key is pinned under (Endpoint.HostKeyAlias),
	// empty when it is pinned under Addr.
	Alias      string
	KnownHosts string // the file with the old entry
	Line       int    // its line in that file
	Key        gossh.PublicKey
}

func (e *HostKeyChangedError) Error() string {
	where := ""
	if e.Line > 0 {
		where = fmt.Sprintf("line %d; ", e.Line)
	}
	return fmt.Sprintf("host key of %s does not match the key pinned in %s (%sthe host now presents %s): "+
		"if the machine was rebuilt, remove the old entry with ssh-keygen -R %s -f %s",
		describeHost(e.Addr, e.Alias), e.KnownHosts, where, fingerprint(e.Key),
		shell.Quote(entryName(e.Addr, e.Alias)), shell.Quote(e.KnownHosts))
}

// UnknownHostError reports a host with no entry in any known_hosts file
// while Config.AcceptNew is off.
type UnknownHostError struct {
	Addr string
	// Alias is the name looked up instead of Addr, if any.
	Alias      string
	KnownHosts []string
	Key        gossh.PublicKey
}

func (e *UnknownHostError) Error() string {
	files := "no known_hosts file"
	if len(e.KnownHosts) > 0 {
		files = strings.Join(e.KnownHosts, ", ")
	}
	return fmt.Sprintf("host %s (key %s) is not in %s: add its key there, or accept new hosts on first contact (accept-new)",
		describeHost(e.Addr, e.Alias), fingerprint(e.Key), files)
}

// describeHost names a host in messages: its address, and the alias its
// key is pinned under when there is one ("e2e-x-master_0 at 127.0.0.1:2222").
func describeHost(addr, alias string) string {
	if alias == "" {
		return addr
	}
	return alias + " at " + addr
}

// entryName is the host name of a known_hosts entry, as ssh-keygen -R
// takes it: the bare alias, else the normalised address ([host]:port).
func entryName(addr, alias string) string {
	if alias != "" {
		return alias
	}
	return knownhosts.Normalize(addr)
}

// AuthError reports that sshd refused every offered key.
type AuthError struct {
	User, Addr string
	Keys       []string // fingerprints of the offered keys
	Err        error
}

func (e *AuthError) Error() string {
	keys := "no keys were offered"
	if len(e.Keys) > 0 {
		keys = strings.Join(e.Keys, ", ")
	}
	return fmt.Sprintf("SSH login as %s at %s was refused: none of the offered keys (%s) is authorised", e.User, e.Addr, keys)
}

func (e *AuthError) Unwrap() error { return e.Err }

// UnreachableError reports that sshd did not answer until Config.RetryFor
// ran out (or on the only attempt when RetryFor is 0).
type UnreachableError struct {
	Addr  string
	After time.Duration
	Err   error // the last attempt's error
}

func (e *UnreachableError) Error() string {
	if e.After < time.Second {
		return fmt.Sprintf("cannot reach sshd at %s: %v", e.Addr, e.Err)
	}
	return fmt.Sprintf("cannot reach sshd at %s (gave up after %s): %v", e.Addr, e.After.Round(100*time.Millisecond), e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

func fingerprint(k gossh.PublicKey) string {
	if k == nil {
		return "none"
	}
	return k.Type() + " " + gossh.FingerprintSHA256(k)
}
