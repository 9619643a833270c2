package ssh_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/internal/ssh"
	"github.com/e2e-tool/e2e/internal/ssh/sshdtest"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	plain, _ := gossh.MarshalPrivateKey(priv, "")
	locked, _ := gossh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("secret"))
	sshPub, _ := gossh.NewPublicKey(pub)
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	good := write("id_ed25519", pem.EncodeToMemory(plain), 0o600)
	open := write("id_open", pem.EncodeToMemory(plain), 0o644)
	withPassphrase := write("id_locked", pem.EncodeToMemory(locked), 0o600)
	public := write("id_ed25519.pub", gossh.MarshalAuthorizedKey(sshPub), 0o600)
	garbage := write("garbage", []byte("not a key\n"), 0o600)
	missing := filepath.Join(dir, "missing")

	s, err := ssh.LoadKey(good)
	if err != nil {
		t.Fatalf("LoadKey(%s): %v", good, err)
	}
	if string(s.PublicKey().Marshal()) != string(sshPub.Marshal()) {
		t.Error("LoadKey returned another key")
	}
	for _, tc := range []struct {
		name, path string
		want       []string // all in the message
	}{
		{"missing", missing, []string{missing, "does not exist"}},
		{"too open", open, []string{"permissions 0644 for " + open + " are too open: chmod 600 " + open}},
		{"passphrase", withPassphrase, []string{withPassphrase, "use ssh-agent (SSH_AUTH_SOCK) for keys with a passphrase"}},
		{"public key", public, []string{public, "public key"}},
		{"not a key", garbage, []string{garbage, "not a private key"}},
		{"directory", dir, []string{dir, "directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ssh.LoadKey(tc.path)
			if err == nil {
				t.Fatal("LoadKey succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestAgentSigners(t *testing.T) {
	t.Run("SSH_AUTH_SOCK unset", func(t *testing.T) {
		t.Setenv("SSH_AUTH_SOCK", "")
		_, _, err := ssh.AgentSigners()
		if err == nil || !strings.Contains(err.Error(), "SSH_AUTH_SOCK is not set") {
			t.Errorf("AgentSigners: %v, want an error saying SSH_AUTH_SOCK is not set", err)
		}
	})
	t.Run("nothing at SSH_AUTH_SOCK", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "gone.sock")
		t.Setenv("SSH_AUTH_SOCK", sock)
		if _, _, err := ssh.AgentSigners(); err == nil || !strings.Contains(err.Error(), sock) {
			t.Errorf("AgentSigners: %v, want an error naming %s", err, sock)
		}
	})
	t.Run("keys of a running agent log in", func(t *testing.T) {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		keyring := agent.NewKeyring()
		if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
			t.Fatal(err)
		}
		// A short directory: unix socket paths are limited to 108 bytes.
		dir, err := os.MkdirTemp("", "agent-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		sock := filepath.Join(dir, "agent.sock")
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					agent.ServeAgent(keyring, c)
				}()
			}
		}()
		t.Setenv("SSH_AUTH_SOCK", sock)

		signers, closer, err := ssh.AgentSigners()
		if err != nil {
			t.Fatalf("AgentSigners: %v", err)
		}
		t.Cleanup(func() { closer.Close() })
		if len(signers) != 1 {
			t.Fatalf("got %d signers, want 1", len(signers))
		}
		srv := sshdtest.Start(t, sshdtest.Options{AuthorizedKeys: []string{authorizedLine(signers[0])}})
		c, err := ssh.Dial(testContext(t, 10*time.Second), srv.Endpoint, ssh.Config{
			Signers:    signers,
			KnownHosts: []string{sshdtest.KnownHostsFile(t, srv)},
		})
		if err != nil {
			t.Fatalf("Dial with the agent's key: %v", err)
		}
		c.Close()
	})
}
