// Command e2e-backend-aws is e2e's EC2 backend: each node is an EC2
// instance, launched with one RunInstances per role, found again from its
// tags alone, and terminated by itself when the cluster's lifespan
// (deploy_timeout) ends even if nobody destroys it.
//
// The files: options.go declares and checks the options, ec2.go builds
// the EC2 client (credentials, region, endpoint, retries), create.go makes
// a cluster, userdata.go writes what each instance runs at first boot
// (host keys, lifespan), find.go turns tagged resources back into
// clusters, destroy.go removes them, image.go picks the image and its SSH
// user, errors.go turns EC2's errors into one line.
package main

import (
	"context"

	"github.com/e2e-tool/e2e/sdk"
)

// Set with -ldflags from plugins/aws/VERSION.
var (
	version = "0.0.0-dev"
	commit  = ""
)

// backend is stateless: every call builds its own EC2 client and finds
// what exists from tags, so a cluster made by one e2e process (or machine)
// is found by another.
type backend struct {
	// newEC2 makes the EC2 client of a call; tests put a fake here.
	newEC2 func(ctx context.Context, s settings) (ec2API, error)
}

func (backend) Info() sdk.Info {
	return sdk.Info{
		Name: "aws", Version: version, Commit: commit,
		Summary: "nodes are EC2 instances",
		// The backend is a Destroyer and a Lister (tags) by its methods.
		NodesRunSSHD: true,
		// The nodes fetch the installer themselves.
		InstallMethods: []sdk.InstallMethod{sdk.InstallFromURL},
		Options:        schema(),
	}
}

func main() { sdk.Serve(backend{newEC2: newEC2Client}) }
