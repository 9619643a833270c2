package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/e2e-tool/e2e/sdk"
)

// conn is a call's EC2 client and the region it talks to.
type conn struct {
	api    ec2API
	region string
}

// connect builds the EC2 client of a call; the region is the settings',
// or else the profile's, and must be one this backend supports.
func (b backend) connect(ctx context.Context, s settings) (conn, error) {
	if s.region == "" {
		s.region = profileRegion(ctx)
	}
	if s.region == "" {
		return conn{}, fmt.Errorf("no AWS region: give -o %s=REGION or set %s", optRegion, envRegion)
	}
	api, err := b.newEC2(ctx, s)
	if err != nil {
		return conn{}, err
	}
	return conn{api: api, region: s.region}, nil
}

// connectRef connects for a recorded cluster: to the region recorded at
// its creation, whatever AWS_REGION says now.
func (b backend) connectRef(ctx context.Context, ref sdk.ClusterRef) (conn, error) {
	s := settingsOf(ref.Options)
	var rec record
	if len(ref.Record) > 0 && json.Unmarshal(ref.Record, &rec) == nil && rec.Region != "" {
		s.region = rec.Region
	}
	return b.connect(ctx, s)
}

// Get finds a cluster from its tags: its instances that have not
// terminated. A cluster none of whose instances is left is not found.
func (b backend) Get(ctx context.Context, ref sdk.ClusterRef) (*sdk.Cluster, error) {
	c, err := b.connectRef(ctx, ref)
	if err != nil {
		return nil, err
	}
	insts, err := describeInstances(ctx, c.api, append(clusterFilters(ref.ClusterID, ref.UID), liveStates))
	if err != nil {
		return nil, apiError("finding the instances of cluster "+ref.ClusterID, err)
	}
	clusters := group(c.region, insts, nil, settingsOf(ref.Options).usePrivateAddresses)
	if len(clusters) == 0 {
		return nil, fmt.Errorf("cluster %q has no instances left in %s: %w", ref.ClusterID, c.region, sdk.ErrNotFound)
	}
	// Without a UID, leftovers of an earlier creation may share the id:
	// the newest is the cluster.
	return slices.MaxFunc(clusters, func(a, b *sdk.Cluster) int { return a.CreatedAt.Compare(b.CreatedAt) }), nil
}

// List finds every cluster in the region from its tags: instances that
// have not terminated, and security groups and key pairs, so that a
// cluster whose instances ended with its lifespan is still listed (with
// no nodes) until it is destroyed.
func (b backend) List(ctx context.Context, opts sdk.Options) ([]*sdk.Cluster, error) {
	s := settingsOf(opts)
	c, err := b.connect(ctx, s)
	if err != nil {
		return nil, err
	}
	insts, err := describeInstances(ctx, c.api, append(anyClusterFilter(), liveStates))
	if err != nil {
		return nil, apiError("listing instances", err)
	}
	groups, err := c.api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: anyClusterFilter()})
	if err != nil {
		return nil, apiError("listing security groups", err)
	}
	keys, err := c.api.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: anyClusterFilter()})
	if err != nil {
		return nil, apiError("listing key pairs", err)
	}
	var other [][]types.Tag
	for _, g := range groups.SecurityGroups {
		other = append(other, g.Tags)
	}
	for _, k := range keys.KeyPairs {
		other = append(other, k.Tags)
	}
	return group(c.region, insts, other, s.usePrivateAddresses), nil
}

// describeInstances returns every instance the filters select, page by
// page.
func describeInstances(ctx context.Context, api ec2API, filters []types.Filter) ([]types.Instance, error) {
	var out []types.Instance
	p := ec2.NewDescribeInstancesPaginator(api, &ec2.DescribeInstancesInput{Filters: filters})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range page.Reservations {
			out = append(out, r.Instances...)
		}
	}
	return out, nil
}

// group turns tagged instances (and the tags of a cluster's other
// resources) into clusters, by id and UID, in id order.
func group(region string, insts []types.Instance, other [][]types.Tag, private bool) []*sdk.Cluster {
	byKey := map[string]*sdk.Cluster{}
	get := func(tags map[string]string) *sdk.Cluster {
		id, uid := tags[tagClusterID], tags[tagClusterUID]
		if id == "" {
			return nil
		}
		c := byKey[id+"\x00"+uid]
		if c == nil {
			c = &sdk.Cluster{ID: id, UID: uid, Details: map[string]string{"region": region}}
			c.CreatedAt, _ = time.Parse(time.RFC3339, tags[tagCreatedAt])
			c.ExpiresAt, _ = time.Parse(time.RFC3339, tags[tagExpiresAt])
			if ws := tags[tagWorkspace]; ws != "" {
				c.Details["workspace"] = ws
			}
			byKey[id+"\x00"+uid] = c
		}
		return c
	}
	for _, inst := range insts {
		tags := tagMap(inst.Tags)
		c := get(tags)
		if c == nil {
			continue
		}
		role := sdk.Role(tags[tagRole])
		first, err := strconv.Atoi(tags[tagIndex])
		if err != nil || !slices.Contains(sdk.Roles(), role) {
			continue // not an instance e2e launched as a node
		}
		c.Nodes = append(c.Nodes, node(inst, role, first+int(aws.ToInt32(inst.AmiLaunchIndex)), tags[tagSSHUser], private))
		facts := map[string]string{"image": aws.ToString(inst.ImageId), "key_pair": aws.ToString(inst.KeyName),
			"subnet": aws.ToString(inst.SubnetId), "vpc": aws.ToString(inst.VpcId)}
		for _, g := range inst.SecurityGroups {
			facts["security_group"] = aws.ToString(g.GroupId)
		}
		for k, v := range facts {
			if v != "" {
				c.Details[k] = v
			}
		}
	}
	for _, tags := range other {
		get(tagMap(tags))
	}
	out := make([]*sdk.Cluster, 0, len(byKey))
	for _, c := range byKey {
		slices.SortFunc(c.Nodes, func(a, b sdk.Node) int {
			return cmp.Or(cmp.Compare(slices.Index(sdk.Roles(), a.Role), slices.Index(sdk.Roles(), b.Role)), cmp.Compare(a.Index, b.Index))
		})
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *sdk.Cluster) int { return cmp.Or(cmp.Compare(a.ID, b.ID), a.CreatedAt.Compare(b.CreatedAt)) })
	return out
}

// node is an instance as a node. The core logs in to its public address,
// or its private one with use_private_addresses or when it has no public
// one (a private subnet: reach it with --ssh-proxy-command).
func node(inst types.Instance, role sdk.Role, index int, user string, private bool) sdk.Node {
	n := sdk.Node{Role: role, Index: index, Name: aws.ToString(inst.InstanceId),
		Hostname: aws.ToString(inst.PrivateDnsName), PrivateAddress: aws.ToString(inst.PrivateIpAddress),
		PublicAddress: aws.ToString(inst.PublicIpAddress)}
	host := n.PublicAddress
	if private || host == "" {
		host = n.PrivateAddress
	}
	n.SSH = sdk.SSHEndpoint{Host: host, Port: 22, User: user}
	switch inst.State.Name {
	case types.InstanceStateNamePending, types.InstanceStateNameRunning:
		n.State = sdk.NodeRunning
	case types.InstanceStateNameStopping, types.InstanceStateNameStopped:
		n.State, n.SSH.Port = sdk.NodeStopped, 0
	default: // shutting down: the lifespan ended, or someone terminated it
		n.State, n.SSH.Port = sdk.NodeMissing, 0
	}
	return n
}

// details are the facts e2e inspect shows.
func details(region, imageID, groupID, keyPair, subnet, workspace string) map[string]string {
	d := map[string]string{"region": region, "image": imageID, "security_group": groupID, "key_pair": keyPair}
	if subnet != "" {
		d["subnet"] = subnet
	}
	if workspace != "" {
		d["workspace"] = workspace
	}
	return d
}
