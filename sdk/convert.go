package sdk

import (
	"context"
	"errors"
	"time"

	"github.com/e2e-tool/e2e/sdk/internal/backendv1"
	"github.com/e2e-tool/e2e/sdk/internal/wire"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
)

// This file is the plugin's half of the translation between the SDK's
// types and the protocol; the core's half is in package host. The enums
// travel by the naming rule of package wire.

// capabilities derives the protocol's capabilities from what the backend
// implements (the calls) and what its Info declares (the facts).
func capabilities(b Backend, info Info) *backendv1.Capabilities {
	_, destroy := b.(Destroyer)
	_, list := b.(Lister)
	_, exec := b.(Executor)
	_, clean := b.(Cleaner)
	_, startStop := b.(StartStopper)
	_, nodeLogs := b.(NodeLogger)
	_, doctor := b.(Doctor)
	caps := &backendv1.Capabilities{
		Destroy: destroy, TracksClusters: list, Exec: exec, Clean: clean, StartStop: startStop, NodeLogs: nodeLogs, Doctor: doctor,
		VerifySsh: info.NodesRunSSHD,
	}
	for _, m := range info.InstallMethods {
		caps.InstallMethods = append(caps.InstallMethods, wire.Value[backendv1.InstallMethod](string(m)))
	}
	return caps
}

func describeResponse(b Backend, info Info) *backendv1.DescribeResponse {
	resp := &backendv1.DescribeResponse{
		Name: info.Name, Version: info.Version, Commit: info.Commit, Summary: info.Summary,
		Protocol: ProtocolVersion, Capabilities: capabilities(b, info),
	}
	for _, o := range info.Options {
		spec := &backendv1.OptionSpec{Name: o.Name, Type: wire.Value[backendv1.OptionType](string(o.Type)), Help: o.Help,
			Required: o.Required, Secret: o.Secret, Env: o.Env}
		if o.Default != nil {
			if b, err := defaultJSON(o); err == nil {
				spec.DefaultJson = string(b)
			}
		}
		resp.Options = append(resp.Options, spec)
	}
	return resp
}

func clusterToProto(c *Cluster) *backendv1.Cluster {
	if c == nil {
		return nil
	}
	pc := &backendv1.Cluster{Id: c.ID, Uid: c.UID, Record: c.Record, Details: c.Details,
		Transport: wire.Value[backendv1.Transport](string(c.Transport))}
	if !c.CreatedAt.IsZero() {
		pc.CreatedAt = c.CreatedAt.UTC().Format(time.RFC3339Nano)
	}
	if !c.ExpiresAt.IsZero() {
		pc.ExpiresAt = c.ExpiresAt.UTC().Format(time.RFC3339Nano)
	}
	for _, n := range c.Nodes {
		pc.Nodes = append(pc.Nodes, &backendv1.Node{
			Role: wire.Value[backendv1.Role](string(n.Role)), Index: int32(n.Index), Name: n.Name, Hostname: n.Hostname,
			PrivateAddress: n.PrivateAddress, PublicAddress: n.PublicAddress,
			Ssh:      &backendv1.SSHEndpoint{Host: n.SSH.Host, Port: int32(n.SSH.Port), User: n.SSH.User},
			HostKeys: n.HostKeys, State: wire.Value[backendv1.NodeState](string(n.State)),
		})
	}
	return pc
}

func diagToProto(d Diagnostic) *backendv1.Diagnostic {
	sev := backendv1.Severity_SEVERITY_ERROR
	if d.Severity == SeverityWarning {
		sev = backendv1.Severity_SEVERITY_WARNING
	}
	return &backendv1.Diagnostic{Severity: sev, Option: d.Option, Summary: d.Summary, Detail: d.Detail}
}

// toStatus turns a backend's error into the gRPC status the core turns
// back into the same kind of error: a *DiagnosticsError keeps its
// diagnostics (as status details), ErrNotFound and the context errors keep
// their identity (NOT_FOUND, CANCELLED, DEADLINE_EXCEEDED), a gRPC status
// passes through, and anything else is UNKNOWN with the message as it is.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	var de *DiagnosticsError
	switch {
	case errors.As(err, &de):
		st := status.New(codes.InvalidArgument, de.Error())
		details := make([]protoadapt.MessageV1, 0, len(de.Diagnostics))
		for _, d := range de.Diagnostics {
			details = append(details, protoadapt.MessageV1Of(diagToProto(d)))
		}
		if withDetails, derr := st.WithDetails(details...); derr == nil {
			st = withDetails
		}
		return st.Err()
	case errors.Is(err, ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Unknown, err.Error())
}
