package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// maxUserData is EC2's limit on user data (before base64), less a margin.
const maxUserData = 16384 - 512

// hostKey is a node's SSH host key pair, made here so that its public half
// can be pinned before the node first boots.
type hostKey struct {
	private string // OpenSSH PEM
	public  string // authorized_keys format
}

func newHostKey(comment string) (hostKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return hostKey{}, err
	}
	block, err := gossh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return hostKey{}, err
	}
	sshPub, err := gossh.NewPublicKey(pub)
	if err != nil {
		return hostKey{}, err
	}
	return hostKey{private: string(pem.EncodeToMemory(block)),
		public: strings.TrimSpace(string(gossh.MarshalAuthorizedKey(sshPub)))}, nil
}

// bootConfig is what every instance of one RunInstances runs at boot.
type bootConfig struct {
	cluster string // id (uid), for the header comment
	// hostKeys[i] is the host key of the instance with launch index i.
	hostKeys []hostKey
	// expires is when the instances shut down (and so terminate).
	expires time.Time
	// user is the login user; authorizedKey is set when the image's
	// cloud-init does not give that user the key pair's key itself.
	user, authorizedKey string
}

// userData renders cfg as cloud-config with a Jinja header, which
// cloud-init renders on each instance with the instance's own metadata
// before it applies it:
//
//   - ssh_keys: the host key of the instance's launch index
//     (ds.meta_data.ami_launch_index), instead of keys generated at boot,
//     so the core pins the right key before the first login. One
//     RunInstances launches every node of a role with the same user data;
//     the launch index tells them apart.
//   - bootcmd, on every boot: `shutdown -P` at cfg.expires. The instances
//     are launched with InstanceInitiatedShutdownBehavior=terminate, so the
//     cluster's lifespan holds even if nobody runs e2e destroy.
//   - for the user root: disable_root false; for a user the image does not
//     make: that user, with sudo and the core's public key.
//
// The private host keys are in the user data, readable by whoever may
// call DescribeInstanceAttribute in the account and by processes on the
// instance (IMDS): they are the nodes' host keys, not credentials.
func userData(cfg bootConfig) string {
	var b strings.Builder
	b.WriteString("## template: jinja\n#cloud-config\n")
	fmt.Fprintf(&b, "# Written by e2e-backend-aws for cluster %s.\n", cfg.cluster)
	b.WriteString("ssh_deletekeys: true\nssh_genkeytypes: []\n")
	b.WriteString("{% set i = ds.meta_data.ami_launch_index | int %}\n")
	for i, k := range cfg.hostKeys {
		if i == 0 {
			fmt.Fprintf(&b, "{%% if i == %d %%}\n", i)
		} else {
			fmt.Fprintf(&b, "{%% elif i == %d %%}\n", i)
		}
		b.WriteString("ssh_keys:\n  ed25519_private: |\n")
		for _, line := range strings.Split(strings.TrimSpace(k.private), "\n") {
			b.WriteString("    " + line + "\n")
		}
		b.WriteString("  ed25519_public: " + k.public + "\n")
	}
	if len(cfg.hostKeys) > 0 {
		b.WriteString("{% endif %}\n")
	}
	switch {
	case cfg.user == "root":
		b.WriteString("disable_root: false\n")
	case cfg.authorizedKey != "":
		fmt.Fprintf(&b, "users:\n  - default\n  - name: %s\n    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n    shell: /bin/bash\n    ssh_authorized_keys:\n      - %s\n",
			cfg.user, cfg.authorizedKey)
	}
	b.WriteString("bootcmd:\n")
	fmt.Fprintf(&b, "  - [sh, -c, '%s']\n", lifespanCommand(cfg.expires))
	return b.String()
}

// lifespanCommand schedules the shutdown at expires (now when it has
// passed), counted from the instance's clock at each boot.
func lifespanCommand(expires time.Time) string {
	return fmt.Sprintf(`e=%d; n=$(date +%%s); m=$(( (e - n + 59) / 60 )); if [ "$m" -le 0 ]; then shutdown -P now; else shutdown -P "+$m" "e2e: the cluster lifespan ends at %s"; fi`,
		expires.Unix(), expires.UTC().Format(time.RFC3339))
}
