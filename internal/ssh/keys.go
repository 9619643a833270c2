package ssh

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// LoadKey reads an unencrypted private key file (OpenSSH, PEM or PKCS#8).
// Like ssh, it refuses a key file that its owner left readable by others.
func LoadKey(path string) (gossh.Signer, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("ssh key %s does not exist", path)
	}
	if err != nil {
		return nil, fmt.Errorf("ssh key: %w", err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("ssh key %s is a directory, not a private key file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && ownedByMe(fi) {
		return nil, fmt.Errorf("permissions %04o for %s are too open: chmod 600 %s", perm, path, path)
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ssh key: %w", err)
	}
	signer, err := gossh.ParsePrivateKey(pem)
	var missing *gossh.PassphraseMissingError
	switch {
	case errors.As(err, &missing):
		return nil, fmt.Errorf("ssh key %s is protected by a passphrase: use ssh-agent (SSH_AUTH_SOCK) for keys with a passphrase", path)
	case err != nil:
		if _, _, _, _, perr := gossh.ParseAuthorizedKey(pem); perr == nil {
			return nil, fmt.Errorf("ssh key %s is a public key: give the private key (usually the same name without .pub)", path)
		}
		return nil, fmt.Errorf("ssh key %s is not a private key: %w", path, err)
	}
	return signer, nil
}

// AgentSigners returns the keys of the ssh-agent at $SSH_AUTH_SOCK. The
// signers work until closer is closed.
func AgentSigners() (signers []gossh.Signer, closer io.Closer, err error) {
	sock := os.Getenv("SSH_AUTH_SOCK")
	if sock == "" {
		return nil, nil, errors.New("no ssh-agent: SSH_AUTH_SOCK is not set (start one with eval $(ssh-agent) and ssh-add your key, or give a key file)")
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return nil, nil, fmt.Errorf("ssh-agent at SSH_AUTH_SOCK=%s: %w", sock, err)
	}
	signers, err = agent.NewClient(conn).Signers()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("ssh-agent at SSH_AUTH_SOCK=%s: list keys: %w", sock, err)
	}
	return signers, conn, nil
}
