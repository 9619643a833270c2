package main

import (
	"context"

	"github.com/e2e-tool/e2e/sdk"
)

// baseConfigYAML is the DC/OS installer config for EC2 nodes: the core
// puts genconf/serve on every node (bootstrap_url file://), masters are
// the static list, and the resolver is the VPC's (Amazon's DNS at its
// link-local address).
const baseConfigYAML = `platform: aws
bootstrap_url: file:///opt/dcos_install_tmp
cluster_name: DCOS
exhibitor_storage_backend: static
master_discovery: static
resolvers:
- 169.254.169.253
`

// ipDetectScript prints the node's private address, as the instance
// metadata service (IMDSv2) knows it, as DC/OS E2E's AWS ip-detect did.
const ipDetectScript = `#!/bin/sh
set -eu
token=$(curl -fsS -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token)
curl -fsS -H "X-aws-ec2-metadata-token: $token" http://169.254.169.254/latest/meta-data/local-ipv4
`

// BaseConfig returns the installer defaults for DC/OS on EC2 nodes.
func (backend) BaseConfig(context.Context, sdk.ClusterRef) (sdk.BaseConfig, error) {
	return sdk.BaseConfig{ConfigYAML: baseConfigYAML, IPDetectScript: ipDetectScript}, nil
}
