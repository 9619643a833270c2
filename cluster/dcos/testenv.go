package dcos

import (
	"fmt"
	"strings"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/internal/shell"
)

// testDir is DC/OS's integration-test directory.
const testDir = "/opt/mesosphere/active/dcos-integration-test"

// TestEnv returns the shell prefix that runs a command the way DC/OS
// E2E's run_with_test_environment did: DC/OS's environment sourced, in the
// integration-test directory, with the cluster's hosts in variables
// (MASTER_HOSTS, SLAVE_HOSTS, PUBLIC_SLAVE_HOSTS: comma-separated private
// addresses; DCOS_DNS_ADDRESS, DCOS_NUM_MASTERS...).
func TestEnv(c *cluster.Cluster) (prefix string, env map[string]string) {
	join := func(nodes []cluster.Node) string {
		addrs := make([]string, 0, len(nodes))
		for _, n := range nodes {
			addrs = append(addrs, n.PrivateAddress)
		}
		return strings.Join(addrs, ",")
	}
	env = map[string]string{
		"MASTER_HOSTS":            join(c.Masters()),
		"SLAVE_HOSTS":             join(c.Agents()),
		"PUBLIC_SLAVE_HOSTS":      join(c.PublicAgents()),
		"PUBLIC_MASTER_HOSTS":     join(c.Masters()),
		"DCOS_NUM_MASTERS":        fmt.Sprint(len(c.Masters())),
		"DCOS_NUM_AGENTS":         fmt.Sprint(len(c.Agents()) + len(c.PublicAgents())),
		"DCOS_PROVIDER":           "onprem",
		"PYTHONUNBUFFERED":        "true",
		"PYTHONDONTWRITEBYTECODE": "true",
	}
	if ms := c.Masters(); len(ms) > 0 {
		env["DCOS_DNS_ADDRESS"] = "http://" + ms[0].PrivateAddress
	}
	prefix = `. /opt/mesosphere/environment.export && ` +
		`{ . ` + testDir + `/util/test_env.export 2>/dev/null || . ` + testDir + `/test_env.export 2>/dev/null || true; } && ` +
		`cd ` + testDir + ` && `
	return prefix, env
}

// WithTestEnv returns cmd changed to run in the DC/OS test environment of
// the cluster (see TestEnv); cmd's own Env wins.
func WithTestEnv(c *cluster.Cluster, cmd cluster.Command) cluster.Command {
	prefix, env := TestEnv(c)
	for k, v := range cmd.Env {
		env[k] = v
	}
	line := cmd.Shell
	if line == "" {
		line = shell.Quote(cmd.Argv...)
	}
	cmd.Argv, cmd.Shell, cmd.Env = nil, prefix+line, env
	return cmd
}
