package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/e2e-tool/e2e/sdk"
)

// fakeEC2 is an in-memory EC2 for unit tests: just enough of the calls the
// backend makes, with tags, filters and states, and errors to inject per
// call. (Retries are the SDK's and are not run here: see
// TestRetryPolicy.)
type fakeEC2 struct {
	mu        sync.Mutex
	images    []types.Image
	keys      map[string]types.KeyPairInfo // by name
	groups    map[string]types.SecurityGroup
	instances map[string]*types.Instance
	order     []string
	calls     []string
	// errs are returned, in order, by the next calls of an action.
	errs map[string][]error
	// hook runs at every call, before it does anything.
	hook func(action string)
	// runState is the state DescribeInstances reports for instances
	// launched running (default running).
	runState types.InstanceStateName
	userData []string
	n        int
}

func newFake() *fakeEC2 {
	return &fakeEC2{
		images: []types.Image{{ImageId: aws.String("ami-0123456789abcdef0"), Name: aws.String("debian-12-amd64-20261101"),
			CreationDate: aws.String("2026-11-01T00:00:00.000Z"), RootDeviceName: aws.String("/dev/xvda")},
			{ImageId: aws.String("ami-0123456789abcdef1"), Name: aws.String("debian-12-amd64-20261115"),
				CreationDate: aws.String("2026-11-15T00:00:00.000Z"), RootDeviceName: aws.String("/dev/xvda")}},
		keys: map[string]types.KeyPairInfo{}, groups: map[string]types.SecurityGroup{},
		instances: map[string]*types.Instance{}, errs: map[string][]error{}, runState: types.InstanceStateNameRunning,
	}
}

func apiErr(code string) error {
	return &smithy.GenericAPIError{Code: code, Message: "fake " + code}
}

// call records a call and returns the error injected for it, if any.
func (f *fakeEC2) call(action string) error {
	if f.hook != nil {
		f.hook(action)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, action)
	if errs := f.errs[action]; len(errs) > 0 {
		f.errs[action] = errs[1:]
		return errs[0]
	}
	return nil
}

func (f *fakeEC2) count(action string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == action {
			n++
		}
	}
	return n
}

func (f *fakeEC2) id(prefix string) string {
	f.n++
	return fmt.Sprintf("%s-%017x", prefix, f.n)
}

// matches applies the filters the backend uses: tag:KEY, tag-key,
// instance-state-name.
func matches(tags []types.Tag, state types.InstanceStateName, filters []types.Filter) bool {
	m := tagMap(tags)
	for _, flt := range filters {
		name := aws.ToString(flt.Name)
		switch {
		case strings.HasPrefix(name, "tag:"):
			if !slices.Contains(flt.Values, m[strings.TrimPrefix(name, "tag:")]) {
				return false
			}
		case name == "tag-key":
			ok := false
			for _, k := range flt.Values {
				_, has := m[k]
				ok = ok || has
			}
			if !ok {
				return false
			}
		case name == "instance-state-name":
			if !slices.Contains(flt.Values, string(state)) {
				return false
			}
		}
	}
	return true
}

func tagsOf(specs []types.TagSpecification, kind types.ResourceType) []types.Tag {
	for _, s := range specs {
		if s.ResourceType == kind {
			return s.Tags
		}
	}
	return nil
}

func (f *fakeEC2) DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	if err := f.call("DescribeImages"); err != nil {
		return nil, err
	}
	out := &ec2.DescribeImagesOutput{}
	for _, img := range f.images {
		if len(in.ImageIds) > 0 && !slices.Contains(in.ImageIds, aws.ToString(img.ImageId)) {
			continue
		}
		out.Images = append(out.Images, img)
	}
	return out, nil
}

func (f *fakeEC2) DescribeSubnets(ctx context.Context, in *ec2.DescribeSubnetsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error) {
	if err := f.call("DescribeSubnets"); err != nil {
		return nil, err
	}
	return &ec2.DescribeSubnetsOutput{Subnets: []types.Subnet{{SubnetId: aws.String(in.SubnetIds[0]), VpcId: aws.String("vpc-0000000000000001")}}}, nil
}

func (f *fakeEC2) ImportKeyPair(ctx context.Context, in *ec2.ImportKeyPairInput, _ ...func(*ec2.Options)) (*ec2.ImportKeyPairOutput, error) {
	if err := f.call("ImportKeyPair"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := types.KeyPairInfo{KeyName: in.KeyName, KeyPairId: aws.String(f.id("key")), Tags: tagsOf(in.TagSpecifications, types.ResourceTypeKeyPair),
		PublicKey: aws.String(string(in.PublicKeyMaterial))}
	f.keys[aws.ToString(in.KeyName)] = k
	return &ec2.ImportKeyPairOutput{KeyName: in.KeyName, KeyPairId: k.KeyPairId}, nil
}

func (f *fakeEC2) DescribeKeyPairs(ctx context.Context, in *ec2.DescribeKeyPairsInput, _ ...func(*ec2.Options)) (*ec2.DescribeKeyPairsOutput, error) {
	if err := f.call("DescribeKeyPairs"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &ec2.DescribeKeyPairsOutput{}
	for _, k := range f.keys {
		if matches(k.Tags, "", in.Filters) {
			out.KeyPairs = append(out.KeyPairs, k)
		}
	}
	return out, nil
}

func (f *fakeEC2) DeleteKeyPair(ctx context.Context, in *ec2.DeleteKeyPairInput, _ ...func(*ec2.Options)) (*ec2.DeleteKeyPairOutput, error) {
	if err := f.call("DeleteKeyPair"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.keys, aws.ToString(in.KeyName))
	return &ec2.DeleteKeyPairOutput{}, nil
}

func (f *fakeEC2) CreateSecurityGroup(ctx context.Context, in *ec2.CreateSecurityGroupInput, _ ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error) {
	if err := f.call("CreateSecurityGroup"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.id("sg")
	f.groups[id] = types.SecurityGroup{GroupId: aws.String(id), GroupName: in.GroupName, VpcId: in.VpcId,
		Tags: tagsOf(in.TagSpecifications, types.ResourceTypeSecurityGroup)}
	return &ec2.CreateSecurityGroupOutput{GroupId: aws.String(id)}, nil
}

func (f *fakeEC2) AuthorizeSecurityGroupIngress(ctx context.Context, in *ec2.AuthorizeSecurityGroupIngressInput, _ ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
	if err := f.call("AuthorizeSecurityGroupIngress"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.groups[aws.ToString(in.GroupId)]
	g.IpPermissions = append(g.IpPermissions, in.IpPermissions...)
	f.groups[aws.ToString(in.GroupId)] = g
	return &ec2.AuthorizeSecurityGroupIngressOutput{}, nil
}

func (f *fakeEC2) DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	if err := f.call("DescribeSecurityGroups"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &ec2.DescribeSecurityGroupsOutput{}
	for _, g := range f.groups {
		if matches(g.Tags, "", in.Filters) {
			out.SecurityGroups = append(out.SecurityGroups, g)
		}
	}
	return out, nil
}

func (f *fakeEC2) DeleteSecurityGroup(ctx context.Context, in *ec2.DeleteSecurityGroupInput, _ ...func(*ec2.Options)) (*ec2.DeleteSecurityGroupOutput, error) {
	if err := f.call("DeleteSecurityGroup"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, inst := range f.instances {
		if inst.State.Name != types.InstanceStateNameTerminated && slices.ContainsFunc(inst.SecurityGroups, func(g types.GroupIdentifier) bool {
			return aws.ToString(g.GroupId) == aws.ToString(in.GroupId)
		}) {
			return nil, apiErr("DependencyViolation")
		}
	}
	delete(f.groups, aws.ToString(in.GroupId))
	return &ec2.DeleteSecurityGroupOutput{}, nil
}

func (f *fakeEC2) RunInstances(ctx context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	if err := f.call("RunInstances"); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.keys[aws.ToString(in.KeyName)]; !ok {
		return nil, apiErr("InvalidKeyPair.NotFound")
	}
	f.userData = append(f.userData, aws.ToString(in.UserData))
	out := &ec2.RunInstancesOutput{}
	for i := range aws.ToInt32(in.MaxCount) {
		id := f.id("i")
		n := f.n
		inst := &types.Instance{InstanceId: aws.String(id), AmiLaunchIndex: aws.Int32(i), ImageId: in.ImageId,
			InstanceType: in.InstanceType, KeyName: in.KeyName, Tags: tagsOf(in.TagSpecifications, types.ResourceTypeInstance),
			State:            &types.InstanceState{Name: types.InstanceStateNamePending},
			PrivateIpAddress: aws.String(fmt.Sprintf("10.0.%d.%d", n/250, n%250+1)), PublicIpAddress: aws.String(fmt.Sprintf("198.51.100.%d", n%250+1)),
			SecurityGroups: []types.GroupIdentifier{{GroupId: aws.String(in.SecurityGroupIds[0])}}}
		f.instances[id] = inst
		f.order = append(f.order, id)
		c := *inst
		out.Instances = append(out.Instances, c)
	}
	return out, nil
}

func (f *fakeEC2) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	if err := f.call("DescribeInstances"); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	res := types.Reservation{}
	for _, id := range f.order {
		inst := f.instances[id]
		if inst.State.Name == types.InstanceStateNamePending {
			inst.State.Name = f.runState
		}
		if len(in.InstanceIds) > 0 && !slices.Contains(in.InstanceIds, id) {
			continue
		}
		if matches(inst.Tags, inst.State.Name, in.Filters) {
			res.Instances = append(res.Instances, *inst)
		}
	}
	return &ec2.DescribeInstancesOutput{Reservations: []types.Reservation{res}}, nil
}

func (f *fakeEC2) TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, _ ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	if err := f.call("TerminateInstances"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range in.InstanceIds {
		if inst, ok := f.instances[id]; ok {
			inst.State = &types.InstanceState{Name: types.InstanceStateNameTerminated}
		}
	}
	return &ec2.TerminateInstancesOutput{}, nil
}

func (f *fakeEC2) GetConsoleOutput(ctx context.Context, in *ec2.GetConsoleOutputInput, _ ...func(*ec2.Options)) (*ec2.GetConsoleOutputOutput, error) {
	if err := f.call("GetConsoleOutput"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := aws.ToString(in.InstanceId)
	if _, ok := f.instances[id]; !ok {
		return nil, apiErr("InvalidInstanceID.NotFound")
	}
	return &ec2.GetConsoleOutputOutput{InstanceId: in.InstanceId,
		Output: aws.String(base64.StdEncoding.EncodeToString([]byte("console of " + id + "\n")))}, nil
}

// live counts what of the fake's world a cluster still has: instances
// that are not terminated, groups and key pairs.
func (f *fakeEC2) live() (instances, groups, keys int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, inst := range f.instances {
		if inst.State.Name != types.InstanceStateNameTerminated {
			instances++
		}
	}
	return instances, len(f.groups), len(f.keys)
}

// reporter records what a call reported.
type reporter struct {
	mu    sync.Mutex
	steps []string
	infos []string
}

func (r *reporter) Progress(step, message string, current, total int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, step)
}
func (r *reporter) Infof(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.infos = append(r.infos, fmt.Sprintf(format, args...))
}
func (r *reporter) Warnf(format string, args ...any) { r.Infof(format, args...) }

// options parses options as the SDK would, with no environment.
func options(t *testing.T, values map[string]any) sdk.Options {
	t.Helper()
	all := map[string]any{"aws_region": "us-east-1", "admin_location": "203.0.113.0/24", "instance_type": "m5.large"}
	for k, v := range values {
		all[k] = v
	}
	raw, err := json.Marshal(all)
	if err != nil {
		t.Fatal(err)
	}
	opts, diags := schema().Parse(raw, func(string) string { return "" })
	if sdk.HasErrors(diags) {
		t.Fatalf("options %v: %v", values, diags)
	}
	return opts
}

// fakeBackend is the backend with f as its EC2.
func fakeBackend(f *fakeEC2) backend {
	return backend{newEC2: func(context.Context, settings) (ec2API, error) { return f, nil }}
}

const testPub = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAB8AKIDPDjI+0rOICvhY8TV+li5xpsHOUdJZmFxrq8A test"

func createReq(t *testing.T, masters, agents, public int, values map[string]any) sdk.CreateRequest {
	return sdk.CreateRequest{ClusterID: "unit", Masters: masters, Agents: agents, PublicAgents: public,
		Options: options(t, values), SSHPublicKey: testPub}
}
