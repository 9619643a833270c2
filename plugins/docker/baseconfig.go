package main

import (
	"context"

	"github.com/e2e-tool/e2e/sdk"
)

// bootstrapDir is where the core puts genconf/serve on every node for a
// path install (bootstrap_url file://...).
const bootstrapDir = "/opt/dcos_install_tmp"

// baseConfigYAML is the DC/OS installer config this backend needs, as DC/OS
// E2E's Docker backend had it. check_time is off because a container's
// clock is the host's and DC/OS cannot check or adjust it.
const baseConfigYAML = `platform: docker
bootstrap_url: file://` + bootstrapDir + `
check_time: false
cluster_name: DCOS
exhibitor_storage_backend: static
master_discovery: static
process_timeout: 10000
resolvers:
- 8.8.8.8
ssh_port: 22
ssh_user: root
`

// ipDetectScript prints a node's address on the cluster network: the
// first IPv4 address of eth0, the interface of the container's network.
const ipDetectScript = `#!/usr/bin/env bash
set -o nounset -o errexit -o pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
ip -4 -o addr show dev eth0 | awk '{split($4, a, "/"); print a[1]; exit}'
`

// BaseConfig returns the installer defaults for DC/OS on Docker nodes.
func (backend) BaseConfig(context.Context, sdk.ClusterRef) (sdk.BaseConfig, error) {
	return sdk.BaseConfig{ConfigYAML: baseConfigYAML, IPDetectScript: ipDetectScript}, nil
}
