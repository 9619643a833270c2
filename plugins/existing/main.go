// Command e2e-backend-existing makes clusters of machines that already
// exist: it only records their addresses; e2e never creates or destroys
// them.
//
// This build declares the backend's options; recording nodes arrives with
// the existing-nodes issue, and until then Create says so clearly.
package main

import (
	"context"
	"errors"

	"github.com/e2e-tool/e2e/sdk"
)

// Set with -ldflags from plugins/existing/VERSION.
var (
	version = "0.0.0-dev"
	commit  = ""
)

type backend struct{}

func (backend) Info() sdk.Info {
	return sdk.Info{
		Name: "existing", Version: version, Commit: commit,
		Summary:      "machines that already exist, reached over SSH",
		Capabilities: sdk.Capabilities{Destroy: false, TracksClusters: false},
		Options: sdk.Schema{
			sdk.ListOption("masters", "master hosts, host[:port] (repeat -o masters=... for more)"),
			sdk.ListOption("agents", "agent hosts, host[:port]"),
			sdk.ListOption("public_agents", "public agent hosts, host[:port]"),
		},
	}
}

var errNotYet = errors.New("the existing backend cannot record clusters yet in this build of e2e-backend-existing (it lands with the existing-nodes issue)")

func (backend) Create(context.Context, sdk.CreateRequest, sdk.Reporter) (*sdk.Cluster, error) {
	return nil, errNotYet
}

func (backend) Get(context.Context, sdk.ClusterRef) (*sdk.Cluster, error) {
	return nil, sdk.ErrNotFound
}

func (backend) List(context.Context, sdk.Options) ([]*sdk.Cluster, error) { return nil, nil }

// Destroy is refused by the SDK: this backend cannot destroy.
func (backend) Destroy(context.Context, sdk.ClusterRef, sdk.Reporter) error {
	return errors.New("e2e did not create these machines")
}

func main() { sdk.Serve(backend{}) }
