package sdk

import (
	"context"
	"strings"
	"testing"

	"github.com/e2e-tool/e2e/sdk/internal/backendv1"
	"github.com/e2e-tool/e2e/sdk/internal/wire"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// minimalBackend implements Backend and nothing else.
type minimalBackend struct{}

func (minimalBackend) Info() Info { return Info{Name: "minimal", Version: "1"} }
func (minimalBackend) Create(context.Context, CreateRequest, Reporter) (*Cluster, error) {
	return nil, nil
}
func (minimalBackend) Get(context.Context, ClusterRef) (*Cluster, error) { return nil, ErrNotFound }

type destroyer struct{ minimalBackend }

func (destroyer) Destroy(context.Context, ClusterRef, Reporter) error { return nil }

type lister struct{ minimalBackend }

func (lister) List(context.Context, Options) ([]*Cluster, error) { return nil, nil }

type executor struct{ minimalBackend }

func (executor) Exec(context.Context, ClusterRef, ExecRequest) (int, error) { return 0, nil }

type cleaner struct{ minimalBackend }

func (cleaner) Clean(context.Context, []ClusterRef, bool, Reporter) error { return nil }

type startStopper struct{ minimalBackend }

func (startStopper) Start(context.Context, ClusterRef, Reporter) error { return nil }
func (startStopper) Stop(context.Context, ClusterRef, Reporter) error  { return nil }

type doctor struct{ minimalBackend }

func (doctor) Doctor(_ context.Context, opts Options) []Check {
	return []Check{{Name: "engine reachable", OK: true, Detail: "at " + opts.String("where")},
		{Name: "image present", Detail: "none", Fix: "build it"}}
}

// Every call capability comes from the interface and nothing else, and the
// facts from Info: a backend cannot claim a call it does not implement.
func TestDescribeCapabilities(t *testing.T) {
	facts := Info{Name: "facts", Version: "1", NodesRunSSHD: true,
		InstallMethods: []InstallMethod{InstallFromURL, InstallFromPath}}
	for _, tt := range []struct {
		name    string
		backend Backend
		info    Info
		want    *backendv1.Capabilities
	}{
		{"minimal", minimalBackend{}, minimalBackend{}.Info(), &backendv1.Capabilities{}},
		{"Destroyer", destroyer{}, minimalBackend{}.Info(), &backendv1.Capabilities{Destroy: true}},
		{"Lister", lister{}, minimalBackend{}.Info(), &backendv1.Capabilities{TracksClusters: true}},
		{"Executor", executor{}, minimalBackend{}.Info(), &backendv1.Capabilities{Exec: true}},
		{"Cleaner", cleaner{}, minimalBackend{}.Info(), &backendv1.Capabilities{Clean: true}},
		{"StartStopper", startStopper{}, minimalBackend{}.Info(), &backendv1.Capabilities{StartStop: true}},
		{"Doctor", doctor{}, minimalBackend{}.Info(), &backendv1.Capabilities{Doctor: true}},
		{"facts", minimalBackend{}, facts, &backendv1.Capabilities{VerifySsh: true, InstallMethods: []backendv1.InstallMethod{
			backendv1.InstallMethod_INSTALL_METHOD_URL, backendv1.InstallMethod_INSTALL_METHOD_PATH}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &server{backend: tt.backend, info: tt.info}
			resp, err := s.Describe(context.Background(), &backendv1.DescribeRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.GetCapabilities(); !proto.Equal(got, tt.want) {
				t.Errorf("capabilities = %v, want %v", got, tt.want)
			}
			if resp.GetProtocol() != ProtocolVersion || resp.GetName() != tt.info.Name {
				t.Errorf("protocol %d, name %q", resp.GetProtocol(), resp.GetName())
			}
		})
	}
}

// The optional calls a backend does not implement are refused by the SDK
// as unimplemented, naming the backend.
func TestOptionalCallsUnimplemented(t *testing.T) {
	s := &server{backend: minimalBackend{}, info: minimalBackend{}.Info()}
	if _, err := s.List(context.Background(), &backendv1.ListRequest{}); status.Code(err) != codes.Unimplemented ||
		!strings.Contains(err.Error(), "the minimal backend cannot list") {
		t.Errorf("List: %v, want Unimplemented naming the backend", err)
	}
	if err := s.Destroy(&backendv1.DestroyRequest{Ref: &backendv1.ClusterRef{ClusterId: "x"}}, eventStream{}); status.Code(err) != codes.Unimplemented ||
		!strings.Contains(err.Error(), "the minimal backend cannot destroy") {
		t.Errorf("Destroy: %v, want Unimplemented naming the backend", err)
	}
	if _, err := s.Doctor(context.Background(), &backendv1.DoctorRequest{}); status.Code(err) != codes.Unimplemented ||
		!strings.Contains(err.Error(), "the minimal backend has no checks") {
		t.Errorf("Doctor: %v, want Unimplemented naming the backend", err)
	}
}

// Doctor's checks travel whole, passed and failed, with the options
// parsed against the schema; an option the schema refuses is refused.
func TestDoctorCall(t *testing.T) {
	info := Info{Name: "doc", Version: "1", Options: Schema{StringOption("where", "where").WithDefault("here")}}
	s := &server{backend: doctor{}, info: info, getenv: func(string) string { return "" }}
	resp, err := s.Doctor(context.Background(), &backendv1.DoctorRequest{OptionsJson: []byte(`{"where":"there"}`)})
	if err != nil {
		t.Fatal(err)
	}
	want := []*backendv1.DoctorCheck{{Name: "engine reachable", Ok: true, Detail: "at there"},
		{Name: "image present", Detail: "none", Fix: "build it"}}
	if len(resp.GetChecks()) != len(want) {
		t.Fatalf("checks = %v, want %v", resp.GetChecks(), want)
	}
	for i := range want {
		if !proto.Equal(resp.GetChecks()[i], want[i]) {
			t.Errorf("check %d = %v, want %v", i, resp.GetChecks()[i], want[i])
		}
	}
	if _, err := s.Doctor(context.Background(), &backendv1.DoctorRequest{OptionsJson: []byte(`{"nosuch":"x"}`)}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Doctor with an unknown option: %v, want InvalidArgument", err)
	}
}

// eventStream is a server stream of events that has sent nothing and sends
// nowhere.
type eventStream struct{ grpc.ServerStream }

func (eventStream) Context() context.Context    { return context.Background() }
func (eventStream) Send(*backendv1.Event) error { return nil }

// Every constant of the SDK travels as a value of the protocol's enum of
// the same meaning (the naming rule of package wire), and back.
func TestEnumsTravel(t *testing.T) {
	check := func(t *testing.T, name string, value protoreflect.Enum, back string) {
		t.Helper()
		if value.Number() == 0 || back != name {
			t.Errorf("%q travels as %v and comes back as %q", name, value, back)
		}
	}
	for _, r := range Roles() {
		v := wire.Value[backendv1.Role](string(r))
		check(t, string(r), v, wire.Name(v))
	}
	for _, s := range []NodeState{NodeRunning, NodeStopped, NodeMissing} {
		v := wire.Value[backendv1.NodeState](string(s))
		check(t, string(s), v, wire.Name(v))
	}
	for _, tr := range []Transport{TransportSSH, TransportExec} {
		v := wire.Value[backendv1.Transport](string(tr))
		check(t, string(tr), v, wire.Name(v))
	}
	for _, m := range []InstallMethod{InstallFromPath, InstallFromURL} {
		v := wire.Value[backendv1.InstallMethod](string(m))
		check(t, string(m), v, wire.Name(v))
	}
	for _, ot := range []OptionType{TypeString, TypeInt, TypeBool, TypeDuration, TypeList, TypeMap, TypeMounts} {
		v := wire.Value[backendv1.OptionType](string(ot))
		check(t, string(ot), v, wire.Name(v))
	}
	// Every value of the protocol's enums has an SDK constant.
	if n := backendv1.NodeState(0).Descriptor().Values().Len(); n != 4 {
		t.Errorf("NodeState has %d values; give the new one an SDK constant", n)
	}
	if n := backendv1.Transport(0).Descriptor().Values().Len(); n != 3 {
		t.Errorf("Transport has %d values; give the new one an SDK constant", n)
	}
	if got := wire.Value[backendv1.NodeState]("paused"); got != 0 {
		t.Errorf("an unknown state travels as %v, want unspecified", got)
	}
}

// What the protocol cannot carry is refused as the plugin's bug: a node
// state or transport it does not know would travel as unspecified and read
// as running or SSH, and the exec transport needs an Executor.
func TestCheckCluster(t *testing.T) {
	for _, tt := range []struct {
		name    string
		backend Backend
		c       *Cluster
		want    string // "" for no error
	}{
		{"states", minimalBackend{}, &Cluster{ID: "x", Nodes: []Node{{Name: "n0"}, {Name: "n1", State: NodeRunning},
			{Name: "n2", State: NodeStopped}, {Name: "n3", State: NodeMissing}}}, ""},
		{"unknown state", minimalBackend{}, &Cluster{ID: "x", Nodes: []Node{{Name: "n0"}, {Name: "n1", State: "paused"}}},
			`node n1 in state "paused"`},
		{"ssh", minimalBackend{}, &Cluster{ID: "x", Transport: TransportSSH}, ""},
		{"exec with Exec", executor{}, &Cluster{ID: "x", Transport: TransportExec}, ""},
		{"exec without Exec", minimalBackend{}, &Cluster{ID: "x", Transport: TransportExec}, "transport exec, but it implements no Exec"},
		{"unknown transport", executor{}, &Cluster{ID: "x", Transport: "telnet"}, `transport "telnet"`},
		{"nil", minimalBackend{}, nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &server{backend: tt.backend, info: Info{Name: "odd"}}
			err := s.checkCluster(tt.c)
			if tt.want == "" {
				if err != nil {
					t.Errorf("%v", err)
				}
				return
			}
			if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), tt.want) ||
				!strings.Contains(err.Error(), "the odd backend") || !strings.Contains(err.Error(), "a bug in the plugin") {
				t.Errorf("%v, want an Internal error naming the backend and %q", err, tt.want)
			}
		})
	}
}
