package host

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/e2e-tool/e2e/sdk"
	"github.com/e2e-tool/e2e/sdk/internal/backendv1"
	"github.com/e2e-tool/e2e/sdk/internal/wire"
	"google.golang.org/grpc"
)

// Client calls a backend plugin; dispense it from a go-plugin client made
// with ClientPlugins. It speaks in raw JSON options because the core does
// not hold the schema's Go types: the plugin parses them, with its own
// environment (secrets, defaults), at every call.
type Client struct {
	rpc backendv1.BackendClient
}

// ClusterRef finds a cluster again after Create, as the core holds it: it
// reaches the backend as an sdk.ClusterRef, with the options parsed.
type ClusterRef struct {
	ClusterID string
	// UID is the sdk.Cluster.UID Create returned, when the core knows it.
	UID string
	// OptionsJSON is the JSON object of the options the user gave, without
	// secrets; nil for none.
	OptionsJSON []byte
	// Record is the sdk.Cluster.Record Create returned, for recorded
	// clusters.
	Record []byte
}

func (r ClusterRef) proto() *backendv1.ClusterRef {
	return &backendv1.ClusterRef{ClusterId: r.ClusterID, Uid: r.UID, OptionsJson: r.OptionsJSON, Record: r.Record}
}

// CreateRequest is a Create request as the core sends it: it reaches the
// backend as an sdk.CreateRequest. A negative count means not given (the
// backend then makes one node of the role, or as many as its options
// name).
type CreateRequest struct {
	ClusterID    string
	Masters      int
	Agents       int
	PublicAgents int
	OptionsJSON  []byte
	SSHPublicKey string
	SSHUser      string
	Retain       bool
}

// Event is a progress or log event of Create, Destroy, Start, Stop or Clean.
type Event struct {
	// Step, Message, Current and Total are set for progress events.
	Step    string
	Current int64
	Total   int64
	// Level is "debug", "info", "warn" or "error" for log events, empty for
	// progress events.
	Level   string
	Message string
}

// Describe asks the plugin who it is and what it can do.
func (c *Client) Describe(ctx context.Context) (Description, error) {
	resp, err := c.rpc.Describe(ctx, &backendv1.DescribeRequest{})
	if err != nil {
		return Description{}, fromStatus(err)
	}
	return descriptionFromProto(resp), nil
}

// Validate checks options; it returns the diagnostics (possibly none).
func (c *Client) Validate(ctx context.Context, optionsJSON []byte) ([]sdk.Diagnostic, error) {
	resp, err := c.rpc.Validate(ctx, &backendv1.ValidateRequest{OptionsJson: optionsJSON})
	if err != nil {
		return nil, fromStatus(err)
	}
	diags := make([]sdk.Diagnostic, 0, len(resp.GetDiagnostics()))
	for _, d := range resp.GetDiagnostics() {
		diags = append(diags, diagFromProto(d))
	}
	return diags, nil
}

func eventFromProto(ev *backendv1.Event) (Event, bool) {
	switch {
	case ev.GetProgress() != nil:
		p := ev.GetProgress()
		return Event{Step: p.GetStep(), Message: p.GetMessage(), Current: p.GetCurrent(), Total: p.GetTotal()}, true
	case ev.GetLog() != nil:
		l := ev.GetLog()
		level := wire.Name(l.GetLevel())
		if level == "" {
			level = "info"
		}
		return Event{Level: level, Message: l.GetMessage()}, true
	}
	return Event{}, false
}

// Create asks the plugin to make a cluster; onEvent (may be nil) sees
// every progress and log event.
func (c *Client) Create(ctx context.Context, call CreateRequest, onEvent func(Event)) (*sdk.Cluster, error) {
	stream, err := c.rpc.Create(ctx, &backendv1.CreateRequest{
		ClusterId: call.ClusterID,
		Counts: &backendv1.NodeCounts{Masters: count(call.Masters), Agents: count(call.Agents),
			PublicAgents: count(call.PublicAgents)},
		OptionsJson: call.OptionsJSON, SshPublicKey: call.SSHPublicKey, SshUser: call.SSHUser, Retain: call.Retain,
	})
	if err != nil {
		return nil, fromStatus(err)
	}
	var cluster *sdk.Cluster
	if err := readEvents(stream, onEvent, func(pc *backendv1.Cluster) { cluster = clusterFromProto(pc) }); err != nil {
		return nil, err
	}
	if cluster == nil {
		return nil, errors.New("the plugin ended Create without returning the cluster")
	}
	return cluster, nil
}

// readEvents reads an event stream to its end: progress and log events go
// to onEvent, a cluster to onCluster (either may be nil).
func readEvents(stream grpc.ServerStreamingClient[backendv1.Event], onEvent func(Event), onCluster func(*backendv1.Cluster)) error {
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fromStatus(err)
		}
		if pc := ev.GetCluster(); pc != nil {
			if onCluster != nil {
				onCluster(pc)
			}
			continue
		}
		if e, ok := eventFromProto(ev); ok && onEvent != nil {
			onEvent(e)
		}
	}
}

// count encodes a node count; negative means not given.
func count(n int) *int32 {
	if n < 0 {
		return nil
	}
	v := int32(n)
	return &v
}

// Get returns a cluster; the error wraps sdk.ErrNotFound when it does not
// exist.
func (c *Client) Get(ctx context.Context, ref ClusterRef) (*sdk.Cluster, error) {
	resp, err := c.rpc.Get(ctx, &backendv1.GetRequest{Ref: ref.proto()})
	if err != nil {
		return nil, fromStatus(err)
	}
	return clusterFromProto(resp.GetCluster()), nil
}

// List returns the clusters the plugin sees with the given options. Only
// for backends whose Description.Calls.List is set (others answer with a
// *RemoteError of code Unimplemented).
func (c *Client) List(ctx context.Context, optionsJSON []byte) ([]*sdk.Cluster, error) {
	resp, err := c.rpc.List(ctx, &backendv1.ListRequest{OptionsJson: optionsJSON})
	if err != nil {
		return nil, fromStatus(err)
	}
	out := make([]*sdk.Cluster, 0, len(resp.GetClusters()))
	for _, pc := range resp.GetClusters() {
		out = append(out, clusterFromProto(pc))
	}
	return out, nil
}

// Destroy removes a cluster; onEvent may be nil. Only for backends whose
// Description.Calls.Destroy is set.
func (c *Client) Destroy(ctx context.Context, ref ClusterRef, onEvent func(Event)) error {
	stream, err := c.rpc.Destroy(ctx, &backendv1.DestroyRequest{Ref: ref.proto()})
	if err != nil {
		return fromStatus(err)
	}
	return readEvents(stream, onEvent, nil)
}

// Start starts the nodes of a cluster that are not running; onEvent may be
// nil. Only for backends whose Description.Calls.StartStop is set (others
// answer with a *RemoteError of code Unimplemented).
func (c *Client) Start(ctx context.Context, ref ClusterRef, onEvent func(Event)) error {
	stream, err := c.rpc.Start(ctx, &backendv1.StartRequest{Ref: ref.proto()})
	if err != nil {
		return fromStatus(err)
	}
	return readEvents(stream, onEvent, nil)
}

// Stop stops every node of a cluster; onEvent may be nil. Only for
// backends whose Description.Calls.StartStop is set.
func (c *Client) Stop(ctx context.Context, ref ClusterRef, onEvent func(Event)) error {
	stream, err := c.rpc.Stop(ctx, &backendv1.StopRequest{Ref: ref.proto()})
	if err != nil {
		return fromStatus(err)
	}
	return readEvents(stream, onEvent, nil)
}

// Clean asks the plugin to remove (or list, dryRun) its leftovers; every
// resource is reported through onEvent. Only for backends whose
// Description.Calls.Clean is set.
func (c *Client) Clean(ctx context.Context, keep []ClusterRef, dryRun bool, onEvent func(Event)) error {
	req := &backendv1.CleanRequest{DryRun: dryRun}
	for _, r := range keep {
		req.Keep = append(req.Keep, r.proto())
	}
	stream, err := c.rpc.Clean(ctx, req)
	if err != nil {
		return fromStatus(err)
	}
	return readEvents(stream, onEvent, nil)
}

// Doctor runs the backend's checks with the given options (a JSON object,
// nil for none). Only for backends whose Description.Calls.Doctor is set
// (others answer with a *RemoteError of code Unimplemented).
func (c *Client) Doctor(ctx context.Context, optionsJSON []byte) ([]sdk.Check, error) {
	resp, err := c.rpc.Doctor(ctx, &backendv1.DoctorRequest{OptionsJson: optionsJSON})
	if err != nil {
		return nil, fromStatus(err)
	}
	out := make([]sdk.Check, 0, len(resp.GetChecks()))
	for _, pc := range resp.GetChecks() {
		out = append(out, sdk.Check{Name: pc.GetName(), OK: pc.GetOk(), Detail: pc.GetDetail(), Fix: pc.GetFix()})
	}
	return out, nil
}

// BaseConfig returns the backend's DC/OS installer defaults; a backend
// that is no sdk.BaseConfiger answers with a *RemoteError of code
// Unimplemented.
func (c *Client) BaseConfig(ctx context.Context, ref ClusterRef) (sdk.BaseConfig, error) {
	resp, err := c.rpc.BaseConfig(ctx, &backendv1.BaseConfigRequest{Ref: ref.proto()})
	if err != nil {
		return sdk.BaseConfig{}, fromStatus(err)
	}
	return sdk.BaseConfig{ConfigYAML: resp.GetConfigYaml(), IPDetectScript: resp.GetIpDetectScript()}, nil
}

// Exec runs a command on a node through the plugin's transport and returns
// its exit code. req.Stdin may be nil. Only for backends whose
// Description.Calls.Exec is set.
func (c *Client) Exec(ctx context.Context, ref ClusterRef, req sdk.ExecRequest) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.Exec(ctx)
	if err != nil {
		return -1, fromStatus(err)
	}
	if err := stream.Send(&backendv1.ExecInput{Input: &backendv1.ExecInput_Start{Start: &backendv1.ExecStart{
		Ref: ref.proto(), Node: req.Node, Argv: req.Argv, Env: req.Env, User: req.User, Tty: req.TTY,
	}}}); err != nil {
		return -1, fromStatus(err)
	}
	var sendMu sync.Mutex
	go func() {
		if req.Stdin != nil {
			buf := make([]byte, 32*1024)
			for {
				n, err := req.Stdin.Read(buf)
				if n > 0 {
					sendMu.Lock()
					serr := stream.Send(&backendv1.ExecInput{Input: &backendv1.ExecInput_Stdin{Stdin: append([]byte(nil), buf[:n]...)}})
					sendMu.Unlock()
					if serr != nil {
						return
					}
				}
				if err != nil {
					break
				}
			}
		}
		sendMu.Lock()
		_ = stream.Send(&backendv1.ExecInput{Input: &backendv1.ExecInput_CloseStdin{CloseStdin: true}})
		sendMu.Unlock()
	}()
	for {
		out, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return -1, errors.New("the plugin ended Exec without an exit code")
			}
			return -1, fromStatus(err)
		}
		switch o := out.GetOutput().(type) {
		case *backendv1.ExecOutput_Stdout:
			if req.Stdout != nil {
				if _, err := req.Stdout.Write(o.Stdout); err != nil {
					return -1, err
				}
			}
		case *backendv1.ExecOutput_Stderr:
			if req.Stderr != nil {
				if _, err := req.Stderr.Write(o.Stderr); err != nil {
					return -1, err
				}
			}
		case *backendv1.ExecOutput_ExitCode:
			return int(o.ExitCode), nil
		}
	}
}
