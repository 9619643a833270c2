package state

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
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
