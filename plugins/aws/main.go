// Command e2e-backend-aws is e2e's EC2 backend.
//
// This build declares the backend's options; launching instances arrives
// with the AWS backend issue, and until then Create says so clearly.
package main

import (
	"context"
	"errors"

	"github.com/e2e-tool/e2e/sdk"
)

// Set with -ldflags from plugins/aws/VERSION.
var (
	version = "0.0.0-dev"
	commit  = ""
)

type backend struct{}

func (backend) Info() sdk.Info {
	return sdk.Info{
		Name: "aws", Version: version, Commit: commit,
		Summary:        "nodes are EC2 instances",
		InstallMethods: []sdk.InstallMethod{sdk.InstallFromURL},
		Options: sdk.Schema{
			sdk.StringOption("region", "AWS region").FromEnv("AWS_REGION"),
			sdk.StringOption("ami", "image id of the nodes"),
			sdk.StringOption("instance_type", "EC2 instance type").WithDefault("m5.xlarge"),
			sdk.StringOption("endpoint_url", "EC2 API endpoint (for an emulator)").FromEnv("E2E_AWS_ENDPOINT_URL"),
			sdk.StringOption("access_key_id", "AWS access key id").MarkSecret("AWS_ACCESS_KEY_ID"),
			sdk.StringOption("secret_access_key", "AWS secret access key").MarkSecret("AWS_SECRET_ACCESS_KEY"),
			sdk.MapOption("tags", "extra tags KEY=VALUE on every resource"),
		},
	}
}

var errNotYet = errors.New("the aws backend cannot create clusters yet in this build of e2e-backend-aws (EC2 support lands with the AWS backend issue)")

func (backend) Create(context.Context, sdk.CreateRequest, sdk.Reporter) (*sdk.Cluster, error) {
	return nil, errNotYet
}

func (backend) Get(context.Context, sdk.ClusterRef) (*sdk.Cluster, error) {
	return nil, sdk.ErrNotFound
}

func (backend) List(context.Context, sdk.Options) ([]*sdk.Cluster, error) { return nil, nil }

// Destroy has nothing to remove: this build never creates anything.
func (backend) Destroy(context.Context, sdk.ClusterRef, sdk.Reporter) error { return nil }

func main() { sdk.Serve(backend{}) }
