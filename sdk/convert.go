package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/e2e-tool/e2e/sdk/internal/backendv1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
)

var roleToProto = map[Role]backendv1.Role{
	RoleMaster:      backendv1.Role_ROLE_MASTER,
	RoleAgent:       backendv1.Role_ROLE_AGENT,
	RolePublicAgent: backendv1.Role_ROLE_PUBLIC_AGENT,
}

func roleFromProto(r backendv1.Role) Role {
	for k, v := range roleToProto {
		if v == r {
			return k
		}
	}
	return ""
}

var typeToProto = map[OptionType]backendv1.OptionType{
	TypeString:   backendv1.OptionType_OPTION_TYPE_STRING,
	TypeInt:      backendv1.OptionType_OPTION_TYPE_INT,
	TypeBool:     backendv1.OptionType_OPTION_TYPE_BOOL,
	TypeDuration: backendv1.OptionType_OPTION_TYPE_DURATION,
	TypeList:     backendv1.OptionType_OPTION_TYPE_LIST,
	TypeMap:      backendv1.OptionType_OPTION_TYPE_MAP,
	TypeMounts:   backendv1.OptionType_OPTION_TYPE_MOUNTS,
}

func typeFromProto(t backendv1.OptionType) OptionType {
	for k, v := range typeToProto {
		if v == t {
			return k
		}
	}
	return OptionType(t.String())
}

var methodToProto = map[InstallMethod]backendv1.InstallMethod{
	InstallFromPath: backendv1.InstallMethod_INSTALL_METHOD_PATH,
	InstallFromURL:  backendv1.InstallMethod_INSTALL_METHOD_URL,
}

var stateToProto = map[NodeState]backendv1.NodeState{
	NodeRunning: backendv1.NodeState_NODE_STATE_RUNNING,
	NodeStopped: backendv1.NodeState_NODE_STATE_STOPPED,
	NodeMissing: backendv1.NodeState_NODE_STATE_MISSING,
}

// stateFromProto reads a node state; unspecified (an older plugin) is the
// empty state, which means running.
func stateFromProto(s backendv1.NodeState) NodeState {
	for k, v := range stateToProto {
		if v == s {
			return k
		}
	}
	return ""
}

// implemented says which optional interfaces a backend implements: the
// capabilities the SDK derives instead of trusting Info.
type implemented struct {
	exec, clean, startStop bool
}

func implementedBy(b Backend) implemented {
	_, exec := b.(Executor)
	_, clean := b.(Cleaner)
	_, startStop := b.(StartStopper)
	return implemented{exec: exec, clean: clean, startStop: startStop}
}

func infoToProto(info Info, impl implemented) *backendv1.DescribeResponse {
	resp := &backendv1.DescribeResponse{
		Name: info.Name, Version: info.Version, Commit: info.Commit, Summary: info.Summary,
		Protocol: ProtocolVersion,
		Capabilities: &backendv1.Capabilities{
			Destroy:        info.Capabilities.Destroy,
			TracksClusters: info.Capabilities.TracksClusters,
			Exec:           impl.exec,
			VerifySsh:      info.Capabilities.VerifySSH,
			Clean:          impl.clean,
			StartStop:      impl.startStop,
		},
	}
	for _, m := range info.Capabilities.InstallMethods {
		resp.Capabilities.InstallMethods = append(resp.Capabilities.InstallMethods, methodToProto[m])
	}
	for _, o := range info.Options {
		spec := &backendv1.OptionSpec{Name: o.Name, Type: typeToProto[o.Type], Help: o.Help,
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

// Description is what Describe returns, as the core sees it.
type Description struct {
	Info
	Protocol int
	// Exec is true when the backend has a native exec transport.
	Exec bool
	// Clean is true when the backend can remove its leftovers.
	Clean bool
	// StartStop is true when the backend can stop and start clusters.
	StartStop bool
}

func infoFromProto(resp *backendv1.DescribeResponse) Description {
	d := Description{Protocol: int(resp.GetProtocol()), Exec: resp.GetCapabilities().GetExec(),
		Clean: resp.GetCapabilities().GetClean(), StartStop: resp.GetCapabilities().GetStartStop()}
	d.Name, d.Version, d.Commit, d.Summary = resp.GetName(), resp.GetVersion(), resp.GetCommit(), resp.GetSummary()
	caps := resp.GetCapabilities()
	d.Capabilities = Capabilities{Destroy: caps.GetDestroy(), TracksClusters: caps.GetTracksClusters(),
		VerifySSH: caps.GetVerifySsh()}
	for _, m := range caps.GetInstallMethods() {
		for k, v := range methodToProto {
			if v == m {
				d.Capabilities.InstallMethods = append(d.Capabilities.InstallMethods, k)
			}
		}
	}
	for _, spec := range resp.GetOptions() {
		o := Option{Name: spec.GetName(), Type: typeFromProto(spec.GetType()), Help: spec.GetHelp(),
			Required: spec.GetRequired(), Secret: spec.GetSecret(), Env: spec.GetEnv()}
		if spec.GetDefaultJson() != "" {
			var v any
			dec := json.NewDecoder(strings.NewReader(spec.GetDefaultJson()))
			dec.UseNumber()
			if dec.Decode(&v) == nil {
				o.Default = v
			}
		}
		d.Options = append(d.Options, o)
	}
	return d
}

func clusterToProto(c *Cluster) *backendv1.Cluster {
	if c == nil {
		return nil
	}
	pc := &backendv1.Cluster{Id: c.ID, Uid: c.UID, Record: c.Record, Details: c.Details}
	if !c.CreatedAt.IsZero() {
		pc.CreatedAt = c.CreatedAt.UTC().Format(time.RFC3339Nano)
	}
	for _, n := range c.Nodes {
		pc.Nodes = append(pc.Nodes, &backendv1.Node{
			Role: roleToProto[n.Role], Index: int32(n.Index), Name: n.Name, Hostname: n.Hostname,
			PrivateAddress: n.PrivateAddress, PublicAddress: n.PublicAddress,
			Ssh:      &backendv1.SSHEndpoint{Host: n.SSH.Host, Port: int32(n.SSH.Port), User: n.SSH.User},
			HostKeys: n.HostKeys, State: stateToProto[n.State],
		})
	}
	return pc
}

func clusterFromProto(pc *backendv1.Cluster) *Cluster {
	if pc == nil {
		return nil
	}
	c := &Cluster{ID: pc.GetId(), UID: pc.GetUid(), Record: pc.GetRecord(), Details: pc.GetDetails()}
	if t, err := time.Parse(time.RFC3339Nano, pc.GetCreatedAt()); err == nil {
		c.CreatedAt = t
	}
	for _, n := range pc.GetNodes() {
		c.Nodes = append(c.Nodes, Node{
			Role: roleFromProto(n.GetRole()), Index: int(n.GetIndex()), Name: n.GetName(),
			Hostname: n.GetHostname(), PrivateAddress: n.GetPrivateAddress(), PublicAddress: n.GetPublicAddress(),
			SSH:      SSHEndpoint{Host: n.GetSsh().GetHost(), Port: int(n.GetSsh().GetPort()), User: n.GetSsh().GetUser()},
			HostKeys: n.GetHostKeys(), State: stateFromProto(n.GetState()),
		})
	}
	return c
}

func diagToProto(d Diagnostic) *backendv1.Diagnostic {
	sev := backendv1.Severity_SEVERITY_ERROR
	if d.Severity == SeverityWarning {
		sev = backendv1.Severity_SEVERITY_WARNING
	}
	return &backendv1.Diagnostic{Severity: sev, Option: d.Option, Summary: d.Summary, Detail: d.Detail}
}

func diagFromProto(d *backendv1.Diagnostic) Diagnostic {
	sev := SeverityError
	if d.GetSeverity() == backendv1.Severity_SEVERITY_WARNING {
		sev = SeverityWarning
	}
	return Diagnostic{Severity: sev, Option: d.GetOption(), Summary: d.GetSummary(), Detail: d.GetDetail()}
}

// toStatus turns a backend's error into a gRPC status the client turns back.
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

// RemoteError is an error a plugin returned, with its message as the plugin
// wrote it (no gRPC decoration).
type RemoteError struct {
	Code    codes.Code
	Message string
}

func (e *RemoteError) Error() string { return e.Message }

// fromStatus turns a gRPC error back into the error the backend returned:
// *DiagnosticsError, ErrNotFound, context errors, or *RemoteError.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.InvalidArgument:
		de := &DiagnosticsError{}
		for _, d := range st.Details() {
			if pd, ok := d.(*backendv1.Diagnostic); ok {
				de.Diagnostics = append(de.Diagnostics, diagFromProto(pd))
			}
		}
		if len(de.Diagnostics) == 0 {
			de.Diagnostics = []Diagnostic{{Severity: SeverityError, Summary: st.Message()}}
		}
		return de
	case codes.NotFound:
		return &remoteSentinel{msg: st.Message(), target: ErrNotFound}
	case codes.Canceled:
		return &remoteSentinel{msg: st.Message(), target: context.Canceled}
	case codes.DeadlineExceeded:
		return &remoteSentinel{msg: st.Message(), target: context.DeadlineExceeded}
	}
	return &RemoteError{Code: st.Code(), Message: st.Message()}
}

// remoteSentinel keeps the plugin's message as it is while errors.Is still
// matches the sentinel it stands for.
type remoteSentinel struct {
	msg    string
	target error
}

func (e *remoteSentinel) Error() string { return e.msg }
func (e *remoteSentinel) Unwrap() error { return e.target }
