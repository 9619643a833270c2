package state

import (
	"errors"
	"net"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// checkKey looks key up under name (an alias, or host:port) as the core's
// SSH client does, through the knownhosts package.
func checkKey(t *testing.T, path, name, key string) error {
	t.Helper()
	check, err := knownhosts.New(path)
	if err != nil {
		t.Fatalf("knownhosts.New: %v", err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := net.SplitHostPort(name); err != nil {
		name = net.JoinHostPort(name, "22") // an alias, looked up bare
	}
	return check(name, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, pub)
}

// Keys pinned under an alias are written bare, as OpenSSH writes a
// HostKeyAlias entry, and found under the alias whatever the address.
func TestAddKnownHostsAlias(t *testing.T) {
	s := openStore(t)
	reserve(t, s, "kh")
	keyA, keyB := newHostKey(t), newHostKey(t)
	if err := s.AddKnownHosts("kh", []HostKey{
		{Alias: "e2e-kh-master_0", Key: keyA},
		{Host: "127.0.0.1", Port: 2222, Key: keyB},
	}); err != nil {
		t.Fatalf("AddKnownHosts: %v", err)
	}
	path := s.KnownHostsPath("kh")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "e2e-kh-master_0 ssh-ed25519 ") || !strings.HasPrefix(lines[1], "[127.0.0.1]:2222 ssh-ed25519 ") {
		t.Fatalf("known_hosts:\n%s\nwant an alias entry and an address entry", data)
	}
	for _, tt := range []struct {
		name, key string
		ok        bool
	}{
		{"e2e-kh-master_0", keyA, true},
		{"e2e-kh-master_0", keyB, false},
		{"127.0.0.1:2222", keyB, true},
		// The alias pins nothing for an address.
		{"127.0.0.1:3333", keyA, false},
	} {
		err := checkKey(t, path, tt.name, tt.key)
		var ke *knownhosts.KeyError
		switch {
		case tt.ok && err != nil:
			t.Errorf("%s: %v, want accepted", tt.name, err)
		case !tt.ok && !errors.As(err, &ke):
			t.Errorf("%s: %v, want a KeyError", tt.name, err)
		}
	}
}

// PinNewHostKeys adds keys only for names with no entry: a key that
// differs from a pinned one is never added beside it, where it would be
// accepted.
func TestPinNewHostKeys(t *testing.T) {
	s := openStore(t)
	reserve(t, s, "kh")
	pinnedKey, changedKey, newKey := newHostKey(t), newHostKey(t), newHostKey(t)
	if err := s.AddKnownHosts("kh", []HostKey{{Alias: "e2e-kh-master_0", Key: pinnedKey}}); err != nil {
		t.Fatal(err)
	}
	path := s.KnownHostsPath("kh")
	got, err := s.PinNewHostKeys("kh", []HostKey{
		{Alias: "e2e-kh-master_0", Key: changedKey},
		{Alias: "e2e-kh-agent_0", Key: newKey},
	})
	if err != nil {
		t.Fatalf("PinNewHostKeys: %v", err)
	}
	if !slices.Equal(got, []string{"e2e-kh-agent_0"}) {
		t.Errorf("pinned %v, want [e2e-kh-agent_0]", got)
	}
	if err := checkKey(t, path, "e2e-kh-master_0", changedKey); err == nil {
		t.Error("the changed key of master_0 is accepted")
	}
	if err := checkKey(t, path, "e2e-kh-master_0", pinnedKey); err != nil {
		t.Errorf("the pinned key of master_0: %v", err)
	}
	if err := checkKey(t, path, "e2e-kh-agent_0", newKey); err != nil {
		t.Errorf("the new key of agent_0: %v", err)
	}

	// Again: nothing new, nothing written.
	before, _ := os.ReadFile(path)
	if got, err := s.PinNewHostKeys("kh", []HostKey{{Alias: "e2e-kh-agent_0", Key: newKey}}); err != nil || len(got) != 0 {
		t.Errorf("second PinNewHostKeys = %v, %v; want nothing pinned", got, err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Errorf("known_hosts changed from %q to %q", before, after)
	}

	// A file it cannot read is not guessed at.
	if err := os.WriteFile(path, append(before, "e2e-kh-public_agent_0 not-a-key\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PinNewHostKeys("kh", []HostKey{{Alias: "e2e-kh-public_agent_0", Key: newKey}}); err == nil {
		t.Error("PinNewHostKeys wrote into a known_hosts file it cannot parse")
	}
}

func TestHostKeyAliasRejectsBadNames(t *testing.T) {
	s := openStore(t)
	reserve(t, s, "kh")
	key := newHostKey(t)
	for _, alias := range []string{"a b", "a,b", "node*", "!node", "[node]:22", "@revoked", "#x", "a\tb", "a\nb"} {
		if err := s.AddKnownHosts("kh", []HostKey{{Alias: alias, Key: key}}); err == nil {
			t.Errorf("alias %q accepted", alias)
		}
	}
	if _, err := os.Stat(s.KnownHostsPath("kh")); !os.IsNotExist(err) {
		t.Errorf("known_hosts written despite the errors: %v", err)
	}
}
