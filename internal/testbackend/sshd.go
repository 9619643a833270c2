package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/e2e-tool/e2e/sdk"
	"golang.org/x/crypto/ssh"
)

// sshdPoolEnv names a JSON file of real sshd servers ([]poolNode) that
// stand in for the nodes' sshd: node i of a cluster (counted across roles)
// is server i, and "launching" it authorises the cluster's key there. Set,
// the backend declares NodesRunSSHD, so sdktest's SSH checks run against
// it.
const sshdPoolEnv = "E2E_TEST_BACKEND_SSHD"

// Faults of the ssh_fault option.
const (
	faultWrongHostKey = "wrong_host_key"
	faultKeepNodes    = "keep_nodes"
	faultLeakOnCancel = "leak_on_cancel"
)

// poolNode is one sshd of the pool.
type poolNode struct {
	Port           int    `json:"port"`
	AuthorizedKeys string `json:"authorized_keys"` // the file sshd reads for root
	HostKey        string `json:"host_key"`        // authorized_keys format
}

func pool() ([]poolNode, error) {
	path := os.Getenv(sshdPoolEnv)
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var p []poolNode
	return p, json.Unmarshal(b, &p)
}

// poolPort is the SSH port of node i when there is a pool.
func poolPort(i int) (int, bool) {
	p, err := pool()
	if err != nil || i >= len(p) {
		return 0, false
	}
	return p[i].Port, true
}

// pooledNode makes node n (number i of its cluster) server i of the pool,
// with key authorised there; without a pool it does nothing.
func pooledNode(n *sdk.Node, i int, key, fault string) error {
	p, err := pool()
	if err != nil || p == nil {
		return err
	}
	if i >= len(p) {
		return fmt.Errorf("the sshd pool has %d servers, node %d needs one more", len(p), i)
	}
	n.SSH.Port = p[i].Port
	n.HostKeys = []string{p[i].HostKey + " root@" + n.Name} // with a comment, as ssh-keygen writes it
	if fault == faultWrongHostKey {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		sp, err := ssh.NewPublicKey(pub)
		if err != nil {
			return err
		}
		n.HostKeys = []string{strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))}
	}
	return editKeys(p[i].AuthorizedKeys, func(lines []string) []string {
		if slices.Contains(lines, key) {
			return lines
		}
		return append(lines, key)
	})
}

// unpool takes key off the pool servers of nodes.
func unpool(nodes []sdk.Node, key string) error {
	p, err := pool()
	if err != nil || p == nil || key == "" {
		return err
	}
	for i := range nodes {
		if i >= len(p) {
			break
		}
		if err := editKeys(p[i].AuthorizedKeys, func(lines []string) []string {
			return slices.DeleteFunc(lines, func(l string) bool { return l == key })
		}); err != nil {
			return err
		}
	}
	return nil
}

func editKeys(path string, edit func([]string) []string) error {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	lines := slices.DeleteFunc(strings.Split(string(b), "\n"), func(l string) bool { return l == "" })
	out := strings.Join(edit(lines), "\n") + "\n"
	return os.WriteFile(path, []byte(out), 0o600)
}
