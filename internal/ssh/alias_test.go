package ssh_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/internal/ssh"
	"github.com/e2e-tool/e2e/internal/ssh/sshdtest"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// alias is the name the tests pin host keys under, as the core names a
// node: e2e-<cluster id>-<node>.
const alias = "e2e-web-master_0"

// aliasKnownHosts writes a known_hosts file that pins keys under alias
// only, as OpenSSH writes an entry for a HostKeyAlias (the bare name).
func aliasKnownHosts(t *testing.T, keys ...gossh.PublicKey) string {
	t.Helper()
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(knownhosts.Line([]string{alias}, k) + "\n")
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func withAlias(ep ssh.Endpoint) ssh.Endpoint {
	ep.HostKeyAlias = alias
	return ep
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestHostKeyAlias: a key pinned under a node's alias is found whatever
// address or port the node has now (a restarted container gets a new
// published port), as with OpenSSH's HostKeyAlias; a different key under
// the alias is refused with the command that clears the entry.
func TestHostKeyAlias(t *testing.T) {
	first := sshdtest.Start(t, sshdtest.Options{})
	kh := aliasKnownHosts(t, first.HostKey)
	pinned := readFile(t, kh)
	cfg := ssh.Config{Signers: []gossh.Signer{first.Signer}, KnownHosts: []string{kh}}

	c, err := ssh.Dial(testContext(t, 10*time.Second), withAlias(first.Endpoint), cfg)
	if err != nil {
		t.Fatalf("Dial with the key pinned under the alias: %v", err)
	}
	c.Close()

	// Without the alias the lookup is by address, which is not pinned.
	_, err = ssh.Dial(testContext(t, 10*time.Second), first.Endpoint, cfg)
	var unknown *ssh.UnknownHostError
	if !errors.As(err, &unknown) || unknown.Alias != "" {
		t.Fatalf("Dial without the alias returned %v, want an UnknownHostError for the address", err)
	}

	// The same machine moves to another port, with its key: accepted, and
	// nothing is recorded, even with accept-new.
	first.Stop()
	moved := sshdtest.Start(t, sshdtest.Options{HostKeyFile: first.HostKeyFile, AuthorizedKeys: []string{authorizedLine(first.Signer)}})
	if moved.Endpoint.Port == first.Endpoint.Port {
		t.Fatalf("the moved server has the old port %d", moved.Endpoint.Port)
	}
	for _, acceptNew := range []bool{false, true} {
		cfg.AcceptNew = acceptNew
		c, err = ssh.Dial(testContext(t, 10*time.Second), withAlias(moved.Endpoint), cfg)
		if err != nil {
			t.Fatalf("AcceptNew=%v: Dial to the node on its new port %d: %v", acceptNew, moved.Endpoint.Port, err)
		}
		c.Close()
	}
	if got := readFile(t, kh); got != pinned {
		t.Errorf("known_hosts changed from %q to %q", pinned, got)
	}

	// Another machine with another key answers there: refused under the
	// alias, and the advice names the alias, not the address.
	moved.Stop()
	other := sshdtest.Start(t, sshdtest.Options{AuthorizedKeys: []string{authorizedLine(first.Signer)}})
	for _, acceptNew := range []bool{false, true} {
		cfg.AcceptNew = acceptNew
		_, err = ssh.Dial(testContext(t, 10*time.Second), withAlias(other.Endpoint), cfg)
		var changed *ssh.HostKeyChangedError
		if !errors.As(err, &changed) {
			t.Fatalf("AcceptNew=%v: Dial returned %v, want a HostKeyChangedError", acceptNew, err)
		}
		if changed.Alias != alias || changed.Addr != other.Endpoint.Addr() || changed.KnownHosts != kh || changed.Line != 1 {
			t.Errorf("error %+v, want alias %s, address %s, %s line 1", changed, alias, other.Endpoint.Addr(), kh)
		}
		msg := err.Error()
		wantStart := fmt.Sprintf("host key of %s at %s does not match the key pinned in %s", alias, other.Endpoint.Addr(), kh)
		wantCmd := fmt.Sprintf("ssh-keygen -R %s -f %s", alias, kh)
		if !strings.HasPrefix(msg, wantStart) || !strings.HasSuffix(msg, wantCmd) {
			t.Errorf("message %q\nwant it to start %q and end %q", msg, wantStart, wantCmd)
		}
	}
	if got := readFile(t, kh); got != pinned {
		t.Errorf("known_hosts changed from %q to %q", pinned, got)
	}
}

// TestHostKeyAliasAcceptNew: accept-new records a key under the alias, in
// the bare form OpenSSH writes for a HostKeyAlias, so a later dial on
// another port finds it.
func TestHostKeyAliasAcceptNew(t *testing.T) {
	first := sshdtest.Start(t, sshdtest.Options{})
	kh := filepath.Join(t.TempDir(), "known_hosts") // does not exist yet
	cfg := ssh.Config{Signers: []gossh.Signer{first.Signer}, KnownHosts: []string{kh}}

	_, err := ssh.Dial(testContext(t, 10*time.Second), withAlias(first.Endpoint), cfg)
	var unknown *ssh.UnknownHostError
	if !errors.As(err, &unknown) || unknown.Alias != alias {
		t.Fatalf("Dial returned %v, want an UnknownHostError for the alias", err)
	}
	if want := alias + " at " + first.Endpoint.Addr(); !strings.Contains(err.Error(), want) {
		t.Errorf("message %q does not name %q", err, want)
	}

	cfg.AcceptNew = true
	c, err := ssh.Dial(testContext(t, 10*time.Second), withAlias(first.Endpoint), cfg)
	if err != nil {
		t.Fatalf("Dial with AcceptNew: %v", err)
	}
	c.Close()
	if got, want := readFile(t, kh), knownhosts.Line([]string{alias}, first.HostKey)+"\n"; got != want {
		t.Fatalf("known_hosts holds %q, want %q", got, want)
	}

	first.Stop()
	moved := sshdtest.Start(t, sshdtest.Options{HostKeyFile: first.HostKeyFile, AuthorizedKeys: []string{authorizedLine(first.Signer)}})
	cfg.AcceptNew = false
	c, err = ssh.Dial(testContext(t, 10*time.Second), withAlias(moved.Endpoint), cfg)
	if err != nil {
		t.Fatalf("Dial on the new port %d without AcceptNew: %v", moved.Endpoint.Port, err)
	}
	c.Close()
}

// TestHostKeyAliasAlgorithms: the host key algorithms asked for come from
// the keys pinned under the alias, so a server with several keys presents
// the pinned one.
func TestHostKeyAliasAlgorithms(t *testing.T) {
	keys := map[string]gossh.Signer{"ed25519": ed25519Signer(t), "ecdsa": ecdsaSigner(t), "rsa": rsaSigner(t)}
	srv := newFakeServer(t, keys["ed25519"], keys["ecdsa"], keys["rsa"])
	srv.listen(t, "127.0.0.1:0")
	for _, name := range []string{"ed25519", "ecdsa", "rsa"} {
		t.Run(name, func(t *testing.T) {
			cfg := ssh.Config{Signers: []gossh.Signer{srv.clientKey}, KnownHosts: []string{aliasKnownHosts(t, keys[name].PublicKey())}}
			c, err := ssh.Dial(testContext(t, 10*time.Second), withAlias(srv.ep), cfg)
			if err != nil {
				t.Fatalf("Dial with only the %s key pinned under the alias: %v", name, err)
			}
			c.Close()
		})
	}
}
