// Command e2e-backend-roundtrip is the backend of package host's tests: it
// implements every optional interface, returns a cluster with every field
// set, and fails on request, so that the tests see what crosses the wire
// between a real plugin process and the core's Client.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/e2e-tool/e2e/sdk"
)

type backend struct{}

func (backend) Info() sdk.Info {
	return sdk.Info{
		Name: "roundtrip", Version: "1.2.3", Commit: "abc1234", Summary: "the backend of package host's tests",
		NodesRunSSHD: true, InstallMethods: []sdk.InstallMethod{sdk.InstallFromURL},
		Options: sdk.Schema{
			sdk.DurationOption("timeout", "a duration with a default").WithDefault("10m"),
			sdk.IntOption("memory", "an int").WithDefault(512),
			sdk.StringOption("token", "a secret").MarkSecret("E2E_ROUNDTRIP_TOKEN"),
		},
	}
}

// full is a cluster with every field set; the tests expect exactly this.
func full(id string) *sdk.Cluster {
	return &sdk.Cluster{
		ID: id, UID: "3f2a9c",
		Nodes: []sdk.Node{
			{Role: sdk.RoleMaster, Index: 0, Name: "m0", Hostname: "master-0", PrivateAddress: "10.0.0.2",
				PublicAddress: "203.0.113.2", SSH: sdk.SSHEndpoint{Host: "127.0.0.1", Port: 32768, User: "root"},
				HostKeys: []string{"ssh-ed25519 AAAAC3Nza m0"}, State: sdk.NodeRunning},
			{Role: sdk.RoleAgent, Index: 0, Name: "a0", State: sdk.NodeStopped},
			{Role: sdk.RolePublicAgent, Index: 0, Name: "p0", State: sdk.NodeMissing},
		},
		Record:    []byte{0, 1, 0xff},
		Details:   map[string]string{"network": "e2e-net"},
		CreatedAt: time.Date(2024, 3, 1, 12, 30, 45, 123456789, time.UTC),
		Transport: sdk.TransportExec,
	}
}

// failure returns the error a cluster id asks for, or nil.
func failure(id string) error {
	switch id {
	case "notfound":
		return fmt.Errorf("cluster %q: %w", id, sdk.ErrNotFound)
	case "diags":
		return &sdk.DiagnosticsError{Diagnostics: []sdk.Diagnostic{
			sdk.Errorf("memory", `option "memory": too much`),
			{Severity: sdk.SeverityWarning, Option: "timeout", Summary: "long", Detail: "in minutes"},
		}}
	case "canceled":
		return fmt.Errorf("making node 2: %w", context.Canceled)
	case "plain":
		return errors.New("docker: no space left on device")
	case "panic":
		panic("boom")
	}
	return nil
}

func (backend) Create(_ context.Context, req sdk.CreateRequest, r sdk.Reporter) (*sdk.Cluster, error) {
	if err := failure(req.ClusterID); err != nil {
		return nil, err
	}
	r.Progress("launch nodes", "m0", 1, 3)
	r.Infof("given: masters=%v agents=%v user=%s key=%s retain=%v memory=%d",
		req.CountGiven(sdk.RoleMaster), req.CountGiven(sdk.RoleAgent), req.SSHUser, req.SSHPublicKey, req.Retain, req.Options.Int("memory"))
	r.Warnf("counts %d %d %d", req.Masters, req.Agents, req.PublicAgents)
	return full(req.ClusterID), nil
}

func (backend) Get(_ context.Context, ref sdk.ClusterRef) (*sdk.Cluster, error) {
	if err := failure(ref.ClusterID); err != nil {
		return nil, err
	}
	c := full(ref.ClusterID)
	c.UID, c.Record = ref.UID, ref.Record
	c.Details["memory"] = strconv.Itoa(ref.Options.Int("memory"))
	return c, nil
}

func (backend) List(context.Context, sdk.Options) ([]*sdk.Cluster, error) {
	return []*sdk.Cluster{full("a"), full("b")}, nil
}

func (backend) Destroy(_ context.Context, ref sdk.ClusterRef, r sdk.Reporter) error {
	r.Infof("destroyed %s", ref.ClusterID)
	return failure(ref.ClusterID)
}

func (backend) Start(_ context.Context, ref sdk.ClusterRef, r sdk.Reporter) error {
	r.Infof("started %s", ref.ClusterID)
	return failure(ref.ClusterID)
}

func (backend) Stop(_ context.Context, ref sdk.ClusterRef, r sdk.Reporter) error {
	r.Infof("stopped %s", ref.ClusterID)
	return failure(ref.ClusterID)
}

func (backend) Clean(_ context.Context, keep []sdk.ClusterRef, dryRun bool, r sdk.Reporter) error {
	r.Infof("keep %d, dry run %v", len(keep), dryRun)
	return nil
}

func (backend) BaseConfig(context.Context, sdk.ClusterRef) (sdk.BaseConfig, error) {
	return sdk.BaseConfig{ConfigYAML: "platform: roundtrip\n", IPDetectScript: "#!/bin/sh\necho 10.0.0.2\n"}, nil
}

// Exec copies stdin to stdout, writes its node and user to stderr and
// exits with the code its first argument names.
func (backend) Exec(_ context.Context, _ sdk.ClusterRef, req sdk.ExecRequest) (int, error) {
	if _, err := io.Copy(req.Stdout, req.Stdin); err != nil {
		return -1, err
	}
	fmt.Fprintf(req.Stderr, "%s as %s tty=%v env=%s", req.Node, req.User, req.TTY, req.Env["K"])
	return strconv.Atoi(req.Argv[0])
}

func (backend) Validate(_ context.Context, opts sdk.Options) []sdk.Diagnostic {
	if opts.Int("memory") < 64 {
		return []sdk.Diagnostic{sdk.Errorf("memory", `option "memory": at least 64`)}
	}
	return nil
}

func main() { sdk.Serve(backend{}) }
