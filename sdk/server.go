package sdk

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"sync"

	"github.com/e2e-tool/e2e/sdk/internal/backendv1"
	"github.com/e2e-tool/e2e/sdk/internal/wire"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// server translates gRPC calls into Backend calls. It is a thin shim: the
// interesting behaviour lives in the backend and in Schema.Parse.
type server struct {
	backendv1.UnimplementedBackendServer
	backend Backend
	info    Info
	logger  hclog.Logger
	getenv  func(string) string
	// stop is closed when the plugin must wind down (its parent died).
	stop <-chan struct{}
	// inflight counts running calls, so the process waits for cleanups.
	inflight sync.WaitGroup
	busy     clusterLocks
}

// clusterLocks serialises work on one cluster id inside the plugin: a
// Destroy or Get that follows a cancelled Create waits until that Create
// has finished cleaning up, so the core can wait for it through the
// protocol.
type clusterLocks struct {
	mu   sync.Mutex
	busy map[string]chan struct{}
}

// acquire waits until no call holds id, then holds it.
func (l *clusterLocks) acquire(ctx context.Context, id string) (release func(), err error) {
	for {
		l.mu.Lock()
		if l.busy == nil {
			l.busy = map[string]chan struct{}{}
		}
		ch, held := l.busy[id]
		if !held {
			done := make(chan struct{})
			l.busy[id] = done
			l.mu.Unlock()
			return func() {
				l.mu.Lock()
				delete(l.busy, id)
				l.mu.Unlock()
				close(done)
			}, nil
		}
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// wait waits until no call holds id.
func (l *clusterLocks) wait(ctx context.Context, id string) error {
	release, err := l.acquire(ctx, id)
	if err != nil {
		return err
	}
	release()
	return nil
}

type loggerKey struct{}

// Logger returns the plugin's logger (hclog JSON on stderr, which the core
// shows with -v). It never returns nil.
func Logger(ctx context.Context) hclog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(hclog.Logger); ok {
		return l
	}
	return hclog.NewNullLogger()
}

// begin wraps a handler's context: it carries the logger and is also
// cancelled when the plugin must stop.
func (s *server) begin(ctx context.Context) (context.Context, func()) {
	s.inflight.Add(1)
	ctx = context.WithValue(ctx, loggerKey{}, s.logger)
	ctx, cancel := context.WithCancel(ctx)
	stopWatch := make(chan struct{})
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-stopWatch:
		}
	}()
	return ctx, func() {
		close(stopWatch)
		cancel()
		s.inflight.Done()
	}
}

func (s *server) parse(raw []byte) (Options, error) {
	opts, diags := s.info.Options.Parse(raw, s.getenv)
	if HasErrors(diags) {
		return Options{}, &DiagnosticsError{Diagnostics: diags}
	}
	return opts, nil
}

func checkID(id string) error {
	if err := ValidateClusterID(id); err != nil {
		return &DiagnosticsError{Diagnostics: []Diagnostic{{Severity: SeverityError, Summary: err.Error()}}}
	}
	return nil
}

func (s *server) ref(pr *backendv1.ClusterRef) (ClusterRef, error) {
	if err := checkID(pr.GetClusterId()); err != nil {
		return ClusterRef{}, err
	}
	opts, err := s.parse(pr.GetOptionsJson())
	if err != nil {
		return ClusterRef{}, err
	}
	return ClusterRef{ClusterID: pr.GetClusterId(), UID: pr.GetUid(), Options: opts, Record: pr.GetRecord()}, nil
}

func (s *server) Describe(context.Context, *backendv1.DescribeRequest) (*backendv1.DescribeResponse, error) {
	return describeResponse(s.backend, s.info), nil
}

func (s *server) Validate(ctx context.Context, req *backendv1.ValidateRequest) (*backendv1.ValidateResponse, error) {
	ctx, done := s.begin(ctx)
	defer done()
	opts, diags := s.info.Options.Parse(req.GetOptionsJson(), s.getenv)
	if v, ok := s.backend.(Validator); ok && !HasErrors(diags) {
		diags = append(diags, v.Validate(ctx, opts)...)
	}
	resp := &backendv1.ValidateResponse{}
	for _, d := range diags {
		resp.Diagnostics = append(resp.Diagnostics, diagToProto(d))
	}
	return resp, nil
}

// reporter sends events on a stream; Send is not safe for concurrent use.
type reporter struct {
	mu     sync.Mutex
	send   func(*backendv1.Event) error
	logger hclog.Logger
	// hold, when not nil, is the call's context: the first event, once
	// sent, waits until it is done (wire.HoldCreateEnv).
	hold     context.Context
	holdOnce sync.Once
}

func (r *reporter) emit(ev *backendv1.Event) {
	r.mu.Lock()
	// A failed send means the core went away; the call's context says so.
	_ = r.send(ev)
	r.mu.Unlock()
	if r.hold != nil {
		r.holdOnce.Do(func() { <-r.hold.Done() })
	}
}

func (r *reporter) Progress(step, message string, current, total int64) {
	r.emit(&backendv1.Event{Event: &backendv1.Event_Progress{Progress: &backendv1.Progress{
		Step: step, Message: message, Current: current, Total: total}}})
}

func (r *reporter) Infof(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	// The event reaches the user; the log line is for -vv only, so the
	// message is not shown twice.
	r.logger.Debug(msg)
	r.emit(&backendv1.Event{Event: &backendv1.Event_Log{Log: &backendv1.Log{Level: backendv1.Log_LEVEL_INFO, Message: msg}}})
}

func (r *reporter) Warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.logger.Debug(msg)
	r.emit(&backendv1.Event{Event: &backendv1.Event_Log{Log: &backendv1.Log{Level: backendv1.Log_LEVEL_WARN, Message: msg}}})
}

func (s *server) Create(req *backendv1.CreateRequest, stream grpc.ServerStreamingServer[backendv1.Event]) error {
	ctx, done := s.begin(stream.Context())
	defer done()
	if err := checkID(req.GetClusterId()); err != nil {
		return toStatus(err)
	}
	opts, err := s.parse(req.GetOptionsJson())
	if err != nil {
		return toStatus(err)
	}
	if v, ok := s.backend.(Validator); ok {
		if diags := v.Validate(ctx, opts); HasErrors(diags) {
			return toStatus(&DiagnosticsError{Diagnostics: diags})
		}
	}
	counts := req.GetCounts()
	if counts.GetMasters() < 0 || counts.GetAgents() < 0 || counts.GetPublicAgents() < 0 {
		return toStatus(&DiagnosticsError{Diagnostics: []Diagnostic{{Severity: SeverityError, Summary: "node counts cannot be negative"}}})
	}
	if max(counts.GetMasters(), counts.GetAgents(), counts.GetPublicAgents()) > MaxNodeIndex+1 {
		return toStatus(&DiagnosticsError{Diagnostics: []Diagnostic{{Severity: SeverityError,
			Summary: fmt.Sprintf("at most %d nodes of a role", MaxNodeIndex+1)}}})
	}
	given := map[Role]bool{
		RoleMaster: counts.Masters != nil, RoleAgent: counts.Agents != nil, RolePublicAgent: counts.PublicAgents != nil,
	}
	orOne := func(v *int32) int {
		if v == nil {
			return 1
		}
		return int(*v)
	}
	release, err := s.busy.acquire(ctx, req.GetClusterId())
	if err != nil {
		return toStatus(err)
	}
	defer release()
	if err := ctx.Err(); err != nil {
		return toStatus(err)
	}
	r := &reporter{send: stream.Send, logger: s.logger.With("cluster", req.GetClusterId())}
	if s.getenv(wire.HoldCreateEnv) == "1" {
		r.hold = ctx
	}
	c, err := s.backend.Create(ctx, CreateRequest{
		ClusterID: req.GetClusterId(), Masters: orOne(counts.Masters), Agents: orOne(counts.Agents),
		PublicAgents: orOne(counts.PublicAgents), Given: given, Options: opts,
		SSHPublicKey: req.GetSshPublicKey(), SSHUser: req.GetSshUser(), Retain: req.GetRetain(),
	}, r)
	if err != nil {
		return toStatus(err)
	}
	if c == nil {
		return status.Error(codes.Internal, "backend returned neither a cluster nor an error")
	}
	if err := s.checkCluster(c); err != nil {
		return err
	}
	return stream.Send(&backendv1.Event{Event: &backendv1.Event_Cluster{Cluster: clusterToProto(c)}})
}

func (s *server) Get(ctx context.Context, req *backendv1.GetRequest) (*backendv1.GetResponse, error) {
	ctx, done := s.begin(ctx)
	defer done()
	ref, err := s.ref(req.GetRef())
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.busy.wait(ctx, ref.ClusterID); err != nil {
		return nil, toStatus(err)
	}
	c, err := s.backend.Get(ctx, ref)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.checkCluster(c); err != nil {
		return nil, err
	}
	return &backendv1.GetResponse{Cluster: clusterToProto(c)}, nil
}

func (s *server) List(ctx context.Context, req *backendv1.ListRequest) (*backendv1.ListResponse, error) {
	ctx, done := s.begin(ctx)
	defer done()
	l, ok := s.backend.(Lister)
	if !ok {
		return nil, status.Errorf(codes.Unimplemented, "the %s backend cannot list its clusters", s.info.Name)
	}
	opts, err := s.parse(req.GetOptionsJson())
	if err != nil {
		return nil, toStatus(err)
	}
	cs, err := l.List(ctx, opts)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &backendv1.ListResponse{}
	for _, c := range cs {
		if err := s.checkCluster(c); err != nil {
			return nil, err
		}
		resp.Clusters = append(resp.Clusters, clusterToProto(c))
	}
	return resp, nil
}

func (s *server) Destroy(req *backendv1.DestroyRequest, stream grpc.ServerStreamingServer[backendv1.Event]) error {
	ctx, done := s.begin(stream.Context())
	defer done()
	d, ok := s.backend.(Destroyer)
	if !ok {
		return status.Errorf(codes.Unimplemented, "the %s backend cannot destroy clusters", s.info.Name)
	}
	ref, err := s.ref(req.GetRef())
	if err != nil {
		return toStatus(err)
	}
	release, err := s.busy.acquire(ctx, ref.ClusterID)
	if err != nil {
		return toStatus(err)
	}
	defer release()
	r := &reporter{send: stream.Send, logger: s.logger.With("cluster", ref.ClusterID)}
	return toStatus(d.Destroy(ctx, ref, r))
}

// checkCluster refuses what the protocol cannot carry, as a bug in the
// plugin: a node state or transport it does not know would travel as
// unspecified and read as running or SSH, and the exec transport needs an
// Executor.
func (s *server) checkCluster(c *Cluster) error {
	if c == nil {
		return nil
	}
	for _, n := range c.Nodes {
		if n.State != "" && wire.Value[backendv1.NodeState](string(n.State)) == 0 {
			return status.Errorf(codes.Internal, "the %s backend reported node %s in state %q, which is none of running, stopped, missing (a bug in the plugin)",
				s.info.Name, n.Name, n.State)
		}
	}
	if c.Transport != "" && wire.Value[backendv1.Transport](string(c.Transport)) == 0 {
		return status.Errorf(codes.Internal, "the %s backend reported cluster %s with transport %q, which is neither ssh nor exec (a bug in the plugin)",
			s.info.Name, c.ID, c.Transport)
	}
	if _, ok := s.backend.(Executor); c.Transport == TransportExec && !ok {
		return status.Errorf(codes.Internal, "the %s backend reported cluster %s with transport exec, but it implements no Exec (a bug in the plugin)",
			s.info.Name, c.ID)
	}
	return nil
}

func (s *server) Start(req *backendv1.StartRequest, stream grpc.ServerStreamingServer[backendv1.Event]) error {
	return s.startStop(req.GetRef(), stream, "start", StartStopper.Start)
}

func (s *server) Stop(req *backendv1.StopRequest, stream grpc.ServerStreamingServer[backendv1.Event]) error {
	return s.startStop(req.GetRef(), stream, "stop", StartStopper.Stop)
}

// startStop serves Start and Stop: like Destroy, they hold the cluster id,
// so a Get that follows waits until the nodes have changed state.
func (s *server) startStop(pr *backendv1.ClusterRef, stream grpc.ServerStreamingServer[backendv1.Event], verb string,
	call func(StartStopper, context.Context, ClusterRef, Reporter) error) error {
	ctx, done := s.begin(stream.Context())
	defer done()
	ss, ok := s.backend.(StartStopper)
	if !ok {
		return status.Errorf(codes.Unimplemented, "the %s backend cannot %s clusters", s.info.Name, verb)
	}
	ref, err := s.ref(pr)
	if err != nil {
		return toStatus(err)
	}
	release, err := s.busy.acquire(ctx, ref.ClusterID)
	if err != nil {
		return toStatus(err)
	}
	defer release()
	r := &reporter{send: stream.Send, logger: s.logger.With("cluster", ref.ClusterID)}
	return toStatus(call(ss, ctx, ref, r))
}

func (s *server) BaseConfig(ctx context.Context, req *backendv1.BaseConfigRequest) (*backendv1.BaseConfigResponse, error) {
	ctx, done := s.begin(ctx)
	defer done()
	bc, ok := s.backend.(BaseConfiger)
	if !ok {
		return nil, status.Errorf(codes.Unimplemented, "the %s backend has no DC/OS base config", s.info.Name)
	}
	ref, err := s.ref(req.GetRef())
	if err != nil {
		return nil, toStatus(err)
	}
	cfg, err := bc.BaseConfig(ctx, ref)
	if err != nil {
		return nil, toStatus(err)
	}
	return &backendv1.BaseConfigResponse{ConfigYaml: cfg.ConfigYAML, IpDetectScript: cfg.IPDetectScript}, nil
}

func (s *server) Clean(req *backendv1.CleanRequest, stream grpc.ServerStreamingServer[backendv1.Event]) error {
	ctx, done := s.begin(stream.Context())
	defer done()
	cl, ok := s.backend.(Cleaner)
	if !ok {
		return status.Errorf(codes.Unimplemented, "the %s backend cannot clean up leftovers", s.info.Name)
	}
	keep := make([]ClusterRef, 0, len(req.GetKeep()))
	for _, pr := range req.GetKeep() {
		// A kept cluster whose stored options no longer validate is still
		// kept, by id and uid.
		ref, err := s.ref(pr)
		if err != nil {
			ref = ClusterRef{ClusterID: pr.GetClusterId(), UID: pr.GetUid(), Record: pr.GetRecord()}
		}
		keep = append(keep, ref)
	}
	r := &reporter{send: stream.Send, logger: s.logger}
	return toStatus(cl.Clean(ctx, keep, req.GetDryRun(), r))
}

// streamWriter sends what is written as ExecOutput messages.
type streamWriter struct {
	mu     *sync.Mutex
	stream grpc.BidiStreamingServer[backendv1.ExecInput, backendv1.ExecOutput]
	stderr bool
}

func (w streamWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	data := append([]byte(nil), p...)
	out := &backendv1.ExecOutput{Output: &backendv1.ExecOutput_Stdout{Stdout: data}}
	if w.stderr {
		out = &backendv1.ExecOutput{Output: &backendv1.ExecOutput_Stderr{Stderr: data}}
	}
	if err := w.stream.Send(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s *server) Exec(stream grpc.BidiStreamingServer[backendv1.ExecInput, backendv1.ExecOutput]) error {
	ctx, done := s.begin(stream.Context())
	defer done()
	ex, ok := s.backend.(Executor)
	if !ok {
		return status.Errorf(codes.Unimplemented, "the %s backend has no exec transport", s.info.Name)
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil {
		return status.Error(codes.InvalidArgument, "the first exec message must be a start")
	}
	ref, err := s.ref(start.GetRef())
	if err != nil {
		return toStatus(err)
	}
	if err := s.busy.wait(ctx, ref.ClusterID); err != nil {
		return toStatus(err)
	}
	stdinR, stdinW := io.Pipe()
	go func() {
		for {
			in, err := stream.Recv()
			if err != nil {
				stdinW.CloseWithError(err)
				return
			}
			switch {
			case in.GetCloseStdin():
				stdinW.Close()
				return
			case in.GetStdin() != nil:
				if _, err := stdinW.Write(in.GetStdin()); err != nil {
					return
				}
			}
		}
	}()
	var mu sync.Mutex
	code, err := ex.Exec(ctx, ref, ExecRequest{
		Node: start.GetNode(), Argv: start.GetArgv(), Env: start.GetEnv(), User: start.GetUser(), TTY: start.GetTty(),
		Stdin: stdinR, Stdout: streamWriter{mu: &mu, stream: stream}, Stderr: streamWriter{mu: &mu, stream: stream, stderr: true},
	})
	stdinR.Close()
	if err != nil {
		return toStatus(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return stream.Send(&backendv1.ExecOutput{Output: &backendv1.ExecOutput_ExitCode{ExitCode: int32(code)}})
}

// recoverUnary and recoverStream turn a panic in a handler into an error
// that names the backend, and log the stack for -v.
func recoverUnary(name string, logger hclog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if p := recover(); p != nil {
				logger.Debug("recovered from a panic", "method", info.FullMethod, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				err = status.Errorf(codes.Internal, "the %s backend failed (a bug in the plugin): %v", name, p)
			}
		}()
		return handler(ctx, req)
	}
}

func recoverStream(name string, logger hclog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if p := recover(); p != nil {
				logger.Debug("recovered from a panic", "method", info.FullMethod, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				err = status.Errorf(codes.Internal, "the %s backend failed (a bug in the plugin): %v", name, p)
			}
		}()
		return handler(srv, ss)
	}
}
