package dcos

import (
	"strings"
	"testing"

	"github.com/e2e-tool/e2e/cluster"
)

// TestWithTestEnv: a command runs as run_with_test_environment ran it,
// with the cluster's hosts, and the caller's variables win.
func TestWithTestEnv(t *testing.T) {
	c := &cluster.Cluster{Nodes: []cluster.Node{
		{Role: cluster.RoleMaster, Index: 0, PrivateAddress: "10.0.0.1"},
		{Role: cluster.RoleAgent, Index: 0, PrivateAddress: "10.0.0.2"},
		{Role: cluster.RoleAgent, Index: 1, PrivateAddress: "10.0.0.3"},
		{Role: cluster.RolePublicAgent, Index: 0, PrivateAddress: "10.0.0.4"},
	}}
	for _, tt := range []struct {
		name      string
		cmd       cluster.Command
		wantShell string
		wantEnv   map[string]string
	}{
		{"argv", cluster.Command{Argv: []string{"pytest", "a b.py"}},
			"cd " + testDir + " && pytest 'a b.py'",
			map[string]string{"MASTER_HOSTS": "10.0.0.1", "SLAVE_HOSTS": "10.0.0.2,10.0.0.3", "PUBLIC_SLAVE_HOSTS": "10.0.0.4",
				"DCOS_DNS_ADDRESS": "http://10.0.0.1", "DCOS_NUM_MASTERS": "1", "DCOS_NUM_AGENTS": "3"}},
		{"shell, own env wins", cluster.Command{Shell: "echo $X", Env: map[string]string{"X": "1", "DCOS_NUM_AGENTS": "9"}},
			"cd " + testDir + " && echo $X",
			map[string]string{"X": "1", "DCOS_NUM_AGENTS": "9", "MASTER_HOSTS": "10.0.0.1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := WithTestEnv(c, tt.cmd)
			if got.Argv != nil || !strings.HasPrefix(got.Shell, ". /opt/mesosphere/environment.export && ") || !strings.HasSuffix(got.Shell, tt.wantShell) {
				t.Errorf("argv %q, shell %q; want a shell line ending in %q", got.Argv, got.Shell, tt.wantShell)
			}
			for k, v := range tt.wantEnv {
				if got.Env[k] != v {
					t.Errorf("%s = %q, want %q", k, got.Env[k], v)
				}
			}
		})
	}
}

// TestCheckInstallMethod: a backend that cannot take the installer the
// way it is given says which way it can.
func TestCheckInstallMethod(t *testing.T) {
	path, url := Options{Installer: "x.sh"}, Options{InstallerURL: "https://example.com/x.sh"}
	both := []cluster.InstallMethod{cluster.InstallFromPath, cluster.InstallFromURL}
	for _, tt := range []struct {
		name    string
		methods []cluster.InstallMethod
		opts    Options
		err     string
	}{
		{"path", both, path, ""},
		{"url", both, url, ""},
		{"none", nil, path, "the b backend cannot install DC/OS: e2e did not make its machines"},
		{"url only", []cluster.InstallMethod{cluster.InstallFromURL}, path, "the b backend installs only from url (use --installer-url URL)"},
		{"path only", []cluster.InstallMethod{cluster.InstallFromPath}, url, "the b backend installs only from path (use --installer PATH)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := checkInstallMethod("b", tt.methods, tt.opts)
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("err = %v, want none", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || !cluster.IsInvalid(err)):
				t.Errorf("err = %v, want an invalid-input error saying %q", err, tt.err)
			}
		})
	}
}
