package main

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/e2e-tool/e2e/sdk"
)

// The number of EC2 calls of a create does not grow with the node count:
// one RunInstances per role, until a role's host keys outgrow one user
// data (then one per batch, each tagged with its first index).
func TestCreateCalls(t *testing.T) {
	counts := map[string]map[string]int{}
	for _, tc := range []struct {
		name                   string
		masters, agents, publc int
		runs                   int
	}{
		{"1+2+1", 1, 2, 1, 3},
		{"1+8+1", 1, 8, 1, 3},
		{"3+0+0", 3, 0, 0, 1},
		// About 25 host keys fit into one user data.
		{"1+45+1", 1, 45, 1, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			c, err := fakeBackend(f).Create(t.Context(), createReq(t, tc.masters, tc.agents, tc.publc, nil), &reporter{})
			if err != nil {
				t.Fatal(err)
			}
			if got := f.count("RunInstances"); got != tc.runs {
				t.Errorf("%d RunInstances, want %d", got, tc.runs)
			}
			// Each launch is tagged with the index of its first node.
			firsts := map[string]bool{}
			for _, inst := range f.instances {
				tags := tagMap(inst.Tags)
				firsts[tags[tagRole]+"/"+tags[tagIndex]] = true
			}
			if len(firsts) != tc.runs {
				t.Errorf("launches by first index: %v, want %d", firsts, tc.runs)
			}
			for _, d := range f.userData {
				raw, _ := base64.StdEncoding.DecodeString(d)
				if len(raw) > 16384 {
					t.Errorf("user data of %d bytes, over EC2's 16 KiB", len(raw))
				}
			}
			// Every node once, indices 0..n-1 per role, each with its own
			// host key and instance.
			seen := map[string]bool{}
			perRole := map[sdk.Role][]int{}
			for _, n := range c.Nodes {
				if len(n.HostKeys) != 1 || seen[n.HostKeys[0]] || seen[n.Name] {
					t.Fatalf("node %s/%d: host keys %v (or instance %s) not its own", n.Role, n.Index, n.HostKeys, n.Name)
				}
				seen[n.HostKeys[0]], seen[n.Name] = true, true
				perRole[n.Role] = append(perRole[n.Role], n.Index)
			}
			for role, want := range map[sdk.Role]int{sdk.RoleMaster: tc.masters, sdk.RoleAgent: tc.agents, sdk.RolePublicAgent: tc.publc} {
				if got := perRole[role]; len(got) != want || (want > 0 && (got[0] != 0 || got[want-1] != want-1)) {
					t.Errorf("%s indices %v, want 0..%d", role, got, want-1)
				}
			}
			// Get finds the same nodes from tags and launch indices.
			got, err := fakeBackend(f).Get(t.Context(), sdk.ClusterRef{ClusterID: "unit", UID: c.UID, Options: options(t, nil)})
			if err != nil {
				t.Fatal(err)
			}
			for i, n := range got.Nodes {
				if n.Name != c.Nodes[i].Name || n.Role != c.Nodes[i].Role || n.Index != c.Nodes[i].Index {
					t.Errorf("Get node %d = %s %s_%d, Create said %s %s_%d", i, n.Name, n.Role, n.Index, c.Nodes[i].Name, c.Nodes[i].Role, c.Nodes[i].Index)
				}
			}
			counts[tc.name] = map[string]int{}
			for _, call := range f.calls {
				counts[tc.name][call]++
			}
		})
	}
	if a, b := counts["1+2+1"], counts["1+8+1"]; len(a) == 0 || !equalCounts(a, b) {
		t.Errorf("calls of 1+2+1 %v differ from 1+8+1 %v", a, b)
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Each failure of a create removes what was made (unless retained) and
// says what went wrong in one line.
func TestCreateFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(f *fakeEC2, cancel context.CancelFunc)
		retain bool
		// words the error must contain; canceled: it wraps context.Canceled.
		words    []string
		canceled bool
		invalid  bool
	}{
		{name: "quota on the second launch", setup: func(f *fakeEC2, _ context.CancelFunc) {
			f.errs["RunInstances"] = []error{nil, apiErr("VcpuLimitExceeded")}
		}, words: []string{"launching 2 agents", "quota", "VcpuLimitExceeded"}},
		{name: "capacity", setup: func(f *fakeEC2, _ context.CancelFunc) {
			f.errs["RunInstances"] = []error{apiErr("InsufficientInstanceCapacity")}
		}, words: []string{"no capacity", "another instance type"}},
		{name: "group rules refused", setup: func(f *fakeEC2, _ context.CancelFunc) {
			f.errs["AuthorizeSecurityGroupIngress"] = []error{apiErr("RulesPerSecurityGroupLimitExceeded")}
		}, words: []string{"opening security group", "RulesPerSecurityGroupLimitExceeded"}},
		{name: "credentials refused", setup: func(f *fakeEC2, _ context.CancelFunc) {
			f.errs["ImportKeyPair"] = []error{&smithy.GenericAPIError{Code: "UnauthorizedOperation", Message: "You are not authorized to perform this operation. Encoded authorization failure message: AAAAlong"}}
		}, words: []string{"AWS refused the credentials", "not authorized"}},
		{name: "image gone", setup: func(f *fakeEC2, _ context.CancelFunc) {
			f.errs["RunInstances"] = []error{apiErr("InvalidAMIID.NotFound")}
		}, words: []string{"-o ami="}, invalid: true},
		{name: "instance ends while starting", setup: func(f *fakeEC2, _ context.CancelFunc) {
			f.runState = types.InstanceStateNameTerminated
		}, words: []string{"ended while starting"}},
		{name: "cancelled while the instances start", setup: func(f *fakeEC2, cancel context.CancelFunc) {
			f.hook = func(action string) {
				if action == "DescribeInstances" {
					cancel()
				}
			}
		}, canceled: true},
		{name: "retained", setup: func(f *fakeEC2, _ context.CancelFunc) {
			f.errs["RunInstances"] = []error{nil, apiErr("VcpuLimitExceeded")}
		}, retain: true, words: []string{"quota"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			tc.setup(f, cancel)
			req := createReq(t, 1, 2, 1, nil)
			req.Retain = tc.retain
			_, err := fakeBackend(f).Create(ctx, req, &reporter{})
			if err == nil {
				t.Fatal("create succeeded")
			}
			f.hook = nil
			msg := err.Error()
			if strings.Contains(msg, "\n") || strings.Contains(msg, "RequestID") || strings.Contains(msg, "Encoded authorization") {
				t.Errorf("error is not one plain line: %q", msg)
			}
			for _, w := range tc.words {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
			if tc.canceled != errors.Is(err, context.Canceled) {
				t.Errorf("error %q: wraps context.Canceled = %v", msg, errors.Is(err, context.Canceled))
			}
			var de *sdk.DiagnosticsError
			if tc.invalid != errors.As(err, &de) {
				t.Errorf("error %q: bad input (exit 2) = %v, want %v", msg, !tc.invalid, tc.invalid)
			}
			inst, groups, keys := f.live()
			if tc.retain {
				if inst != 1 || groups != 1 || keys != 1 {
					t.Errorf("retained: %d instances, %d groups, %d key pairs; want what was made kept", inst, groups, keys)
				}
				return
			}
			if inst+groups+keys != 0 {
				t.Errorf("after the failure: %d instances, %d groups, %d key pairs left", inst, groups, keys)
			}
		})
	}
}

// Destroy works on what a failed create left (no instances, or only a key
// pair), and again on nothing.
func TestDestroyHalfMade(t *testing.T) {
	f := newFake()
	f.errs["CreateSecurityGroup"] = []error{apiErr("InternalError")}
	req := createReq(t, 1, 1, 0, nil)
	req.Retain = true
	if _, err := fakeBackend(f).Create(t.Context(), req, &reporter{}); err == nil {
		t.Fatal("create succeeded")
	}
	if _, _, keys := f.live(); keys != 1 {
		t.Fatalf("retained %d key pairs, want the one made", keys)
	}
	ref := sdk.ClusterRef{ClusterID: "unit", Options: options(t, nil)}
	for i := range 2 {
		if err := fakeBackend(f).Destroy(t.Context(), ref, &reporter{}); err != nil {
			t.Fatalf("destroy %d: %v", i+1, err)
		}
		if inst, groups, keys := f.live(); inst+groups+keys != 0 {
			t.Errorf("after destroy %d: %d instances, %d groups, %d key pairs", i+1, inst, groups, keys)
		}
	}
	if _, err := fakeBackend(f).Get(t.Context(), ref); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("Get of a destroyed cluster: %v, want ErrNotFound", err)
	}
}

// A cluster whose instances ended with its lifespan is still listed, with
// no nodes and its expiry, until destroyed; Get does not find it.
func TestListAfterLifespan(t *testing.T) {
	f := newFake()
	c, err := fakeBackend(f).Create(t.Context(), createReq(t, 1, 0, 0, map[string]any{"deploy_timeout": 30}), &reporter{})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(c.ExpiresAt); d < 29*time.Minute || d > 30*time.Minute {
		t.Errorf("expires in %v, want 30 minutes", d)
	}
	for _, inst := range f.instances {
		inst.State.Name = types.InstanceStateNameTerminated
	}
	list, err := fakeBackend(f).List(t.Context(), options(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].UID != c.UID || len(list[0].Nodes) != 0 || !list[0].ExpiresAt.Equal(c.ExpiresAt) {
		t.Fatalf("List = %+v, want the cluster without nodes, expiring at %v", list, c.ExpiresAt)
	}
	if _, err := fakeBackend(f).Get(t.Context(), sdk.ClusterRef{ClusterID: "unit", UID: c.UID, Options: options(t, nil)}); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("Get: %v, want ErrNotFound", err)
	}
}

// Node states and addresses as instances report them.
func TestNodeFromInstance(t *testing.T) {
	inst := func(state types.InstanceStateName, public string) types.Instance {
		return types.Instance{InstanceId: aws.String("i-1"), State: &types.InstanceState{Name: state},
			PrivateIpAddress: aws.String("10.0.0.5"), PublicIpAddress: optional(public)}
	}
	for _, tc := range []struct {
		inst    types.Instance
		private bool
		state   sdk.NodeState
		host    string
		port    int
	}{
		{inst(types.InstanceStateNameRunning, "198.51.100.5"), false, sdk.NodeRunning, "198.51.100.5", 22},
		{inst(types.InstanceStateNameRunning, "198.51.100.5"), true, sdk.NodeRunning, "10.0.0.5", 22},
		{inst(types.InstanceStateNameRunning, ""), false, sdk.NodeRunning, "10.0.0.5", 22},
		{inst(types.InstanceStateNameStopped, "198.51.100.5"), false, sdk.NodeStopped, "198.51.100.5", 0},
		{inst(types.InstanceStateNameShuttingDown, "198.51.100.5"), false, sdk.NodeMissing, "198.51.100.5", 0},
	} {
		n := node(tc.inst, sdk.RoleAgent, 3, "admin", tc.private)
		if n.State != tc.state || n.SSH.Host != tc.host || n.SSH.Port != tc.port || n.SSH.User != "admin" || n.Index != 3 {
			t.Errorf("%s (public %q, private addresses %v): %+v", tc.inst.State.Name, aws.ToString(tc.inst.PublicIpAddress), tc.private, n)
		}
	}
}

// The retry policy: throttling and 5xx are retried, capacity and quota
// are not; the calls that meet eventual consistency add its codes.
func TestRetryPolicy(t *testing.T) {
	base := newRetryer()
	o := ec2.Options{Retryer: base}
	retryCodes(0, "InvalidInstanceID.NotFound")(&o)
	for _, tc := range []struct {
		r    aws.Retryer
		code string
		want bool
	}{
		{base, "RequestLimitExceeded", true},
		{base, "Throttling", true},
		{base, "InsufficientInstanceCapacity", false},
		{base, "VcpuLimitExceeded", false},
		{base, "InvalidInstanceID.NotFound", false},
		{o.Retryer, "InvalidInstanceID.NotFound", true},
		{o.Retryer, "RequestLimitExceeded", true},
		{o.Retryer, "InvalidAMIID.NotFound", false},
	} {
		if got := tc.r.IsErrorRetryable(apiErr(tc.code)); got != tc.want {
			t.Errorf("retry %s = %v, want %v", tc.code, got, tc.want)
		}
	}
	if base.MaxAttempts() != maxAttempts {
		t.Errorf("max attempts %d", base.MaxAttempts())
	}
	o = ec2.Options{Retryer: base}
	retryCodes(dependencyAttempts, "DependencyViolation")(&o)
	if o.Retryer.MaxAttempts() != dependencyAttempts || !o.Retryer.IsErrorRetryable(apiErr("DependencyViolation")) {
		t.Errorf("a group in use is retried %d times", o.Retryer.MaxAttempts())
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		values map[string]any
		option string // the option an error names; "" for none
		warn   bool
	}{
		{map[string]any{}, "", false},
		{map[string]any{"aws_region": "eu-north-1"}, "aws_region", false},
		{map[string]any{"admin_location": nil}, "admin_location", false},
		{map[string]any{"admin_location": "203.0.113.7"}, "admin_location", false},
		{map[string]any{"admin_location": "203.0.113.7/24"}, "admin_location", false},
		{map[string]any{"admin_location": "0.0.0.0/0"}, "", true},
		{map[string]any{"admin_location": "2001:db8::/32"}, "", false},
		{map[string]any{"instance_type": nil}, "instance_type", false},
		{map[string]any{"agent_instance_type": "big"}, "agent_instance_type", false},
		{map[string]any{"deploy_timeout": 0}, "deploy_timeout", false},
		{map[string]any{"ami": "debian"}, "ami", false},
		{map[string]any{"subnet_id": "subnet-0123456789abcdef0"}, "", false},
		{map[string]any{"subnet_id": "net-1"}, "subnet_id", false},
		{map[string]any{"root_volume_size": 4}, "root_volume_size", false},
		{map[string]any{"tags": map[string]any{"e2e:role": "x"}}, "tags", false},
		{map[string]any{"tags": map[string]any{"team": "db"}}, "", false},
		{map[string]any{"workspace_dir": "relative"}, "workspace_dir", false},
		{map[string]any{"ssh_user": "Bad User"}, "ssh_user", false},
	} {
		diags := backend{}.Validate(t.Context(), options(t, tc.values))
		var errs, warns []sdk.Diagnostic
		for _, d := range diags {
			if d.Severity == sdk.SeverityWarning {
				warns = append(warns, d)
			} else {
				errs = append(errs, d)
			}
		}
		switch {
		case tc.option == "" && len(errs) > 0:
			t.Errorf("%v: unexpected %v", tc.values, errs)
		case tc.option != "" && (len(errs) != 1 || errs[0].Option != tc.option):
			t.Errorf("%v: want one error on %q, got %v", tc.values, tc.option, errs)
		case tc.warn != (len(warns) > 0):
			t.Errorf("%v: warnings %v", tc.values, warns)
		}
	}
	// The secrets: both or neither.
	opts := options(t, map[string]any{"aws_access_key_id": "AKIA1"})
	if diags := (backend{}).Validate(t.Context(), opts); !sdk.HasErrors(diags) {
		t.Error("an access key id without a secret key is accepted")
	}
}

// The user data: each launch index gets its own host key; the lifespan's
// shutdown is at the expiry; users other than the image's get the key.
func TestUserData(t *testing.T) {
	expires := time.Date(2026, 12, 1, 10, 30, 0, 0, time.UTC)
	var keys []hostKey
	for i := range 3 {
		k, err := newHostKey("n" + strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	for _, tc := range []struct {
		user, key string
		users     bool
		root      bool
	}{{"admin", "", false, false}, {"root", "", false, true}, {"tester", testPub, true, false}} {
		data := userData(bootConfig{cluster: "x", hostKeys: keys, expires: expires, user: tc.user, authorizedKey: tc.key})
		for i, k := range keys {
			cfg, _, err := renderUserData(data, i)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.SSHKeys["ed25519_public"] != k.public || strings.TrimSpace(cfg.SSHKeys["ed25519_private"]) != strings.TrimSpace(k.private) {
				t.Errorf("launch index %d gets host key %q, want %q", i, cfg.SSHKeys["ed25519_public"], k.public)
			}
			if !cfg.SSHDeleteKeys || len(cfg.Bootcmd) != 1 || !strings.Contains(strings.Join(cfg.Bootcmd[0], " "), "e="+strconv.FormatInt(expires.Unix(), 10)+";") {
				t.Errorf("cloud-config %+v: want the generated keys deleted and the shutdown at %d", cfg, expires.Unix())
			}
			if (len(cfg.Users) > 0) != tc.users || (cfg.DisableRoot != nil && !*cfg.DisableRoot) != tc.root {
				t.Errorf("user %s: users %v, disable_root %v", tc.user, cfg.Users, cfg.DisableRoot)
			}
		}
	}
	if !strings.Contains(lifespanCommand(expires), `shutdown -P "+$m"`) || !strings.Contains(lifespanCommand(expires), "shutdown -P now") {
		t.Errorf("lifespan command %q", lifespanCommand(expires))
	}
}

func TestSSHUserOfImage(t *testing.T) {
	for name, want := range map[string]string{
		"debian-12-amd64-20261101-1234": "admin", "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-2026": "ubuntu",
		"al2023-ami-2023.6.20261101.0-kernel-6.1-x86_64": "ec2-user", "amzn2-ami-hvm-2.0": "ec2-user",
		"RHEL-9.4.0_HVM-20261101-x86_64": "ec2-user", "Rocky-9-EC2-Base-9.4": "rocky", "Fedora-Cloud-Base-40": "fedora",
	} {
		got, err := sshUser("", settings{}, image{ID: "ami-1", Name: name})
		if err != nil || got != want {
			t.Errorf("image %q: user %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := sshUser("", settings{}, image{ID: "ami-1", Name: "my-own-image"}); err == nil || !strings.Contains(err.Error(), "-o ssh_user=") {
		t.Errorf("an image of unknown user: %v", err)
	}
	if got, _ := sshUser("core", settings{sshUser: "admin"}, image{Name: "debian"}); got != "core" {
		t.Errorf("--ssh-user is not used first: %q", got)
	}
	// The default image is the newest of the owner's matching ones.
	img, err := findImage(t.Context(), newFake(), settingsOf(options(t, nil)))
	if err != nil || img.ID != "ami-0123456789abcdef1" {
		t.Errorf("default image %+v, %v; want the newest", img, err)
	}
}

// The workspace: made per cluster with a marker, removed on destroy and
// after a failed create; a directory without the cluster's marker is
// never removed.
func TestWorkspace(t *testing.T) {
	root := t.TempDir()
	f := newFake()
	c, err := fakeBackend(f).Create(t.Context(), createReq(t, 1, 0, 0, map[string]any{"workspace_dir": root}), &reporter{})
	if err != nil {
		t.Fatal(err)
	}
	ws := c.Details["workspace"]
	if filepath.Dir(ws) != root || !strings.HasPrefix(filepath.Base(ws), "e2e-unit-") {
		t.Fatalf("workspace %q, want e2e-unit-UID in %s", ws, root)
	}
	if _, err := os.Stat(ws); err != nil {
		t.Fatal(err)
	}
	// Someone else's directory, named as ours.
	foreign := filepath.Join(root, "e2e-unit-0000000000000000")
	if err := os.Mkdir(foreign, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := removeWorkspace(foreign, "unit", ""); err != nil {
		t.Fatal(err)
	}
	if err := fakeBackend(f).Destroy(t.Context(), sdk.ClusterRef{ClusterID: "unit", Options: options(t, nil)}, &reporter{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ws); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("workspace after destroy: %v", err)
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Errorf("a directory without the marker was removed: %v", err)
	}
	// A create that fails before any resource exists leaves no workspace.
	f = newFake()
	f.errs["ImportKeyPair"] = []error{apiErr("InternalError")}
	if _, err := fakeBackend(f).Create(t.Context(), createReq(t, 1, 0, 0, map[string]any{"workspace_dir": root}), &reporter{}); err == nil {
		t.Fatal("create succeeded")
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 {
		t.Errorf("after a failed create the workspace root holds %d entries, want only the foreign one", len(entries))
	}
}
