package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/cenkalti/backoff/v5"
	"github.com/e2e-tool/e2e/sdk"
)

// launchTimeout bounds the wait for launched instances to run.
const launchTimeout = 10 * time.Minute

// record is the Cluster.Record the core stores: the region, so that a
// cluster is found again even when AWS_REGION has changed since.
type record struct {
	Region string `json:"region"`
}

// Create makes a cluster with a number of EC2 calls that does not grow with
// the node count: DescribeImages, (DescribeSubnets with subnet_id),
// ImportKeyPair, CreateSecurityGroup, AuthorizeSecurityGroupIngress, one
// RunInstances per role (more only past EC2's user data limit, about 20
// nodes of a role) and DescribeInstances until every instance runs.
// Every resource is tagged as it is made. On failure or cancellation what
// was made is removed, unless req.Retain.
func (b backend) Create(ctx context.Context, req sdk.CreateRequest, r sdk.Reporter) (*sdk.Cluster, error) {
	s := settingsOf(req.Options)
	r.Progress("connect to EC2", s.region, 0, 0)
	c, err := b.connect(ctx, s)
	if err != nil {
		return nil, err
	}
	m := &making{backend: b, conn: c, req: req, s: s, uid: newUID(), r: r}
	cl, err := m.run(ctx)
	if err != nil {
		return nil, m.abort(ctx, err)
	}
	return cl, nil
}

// making is one Create in progress.
type making struct {
	backend backend
	conn    conn
	req     sdk.CreateRequest
	s       settings
	uid     string
	r       sdk.Reporter

	created, expires time.Time
	img              image
	user             string
	workspace        string
	groupID          string
	// launched are the nodes RunInstances returned, in node order.
	launched []launched
}

// launched is a node whose instance RunInstances returned.
type launched struct {
	role       sdk.Role
	index      int
	instanceID string
	hostKey    hostKey
}

func (m *making) run(ctx context.Context) (*sdk.Cluster, error) {
	m.r.Progress("find the image", m.s.ami, 0, 0)
	var err error
	if m.img, err = findImage(ctx, m.conn.api, m.s); err != nil {
		return nil, err
	}
	if m.user, err = sshUser(m.req.SSHUser, m.s, m.img); err != nil {
		return nil, err
	}
	if m.s.rootVolumeSize > 0 && m.img.RootDevice == "" {
		return nil, errNoRootDevice(m.img)
	}
	m.created = time.Now().UTC().Truncate(time.Second)
	m.expires = m.created.Add(time.Duration(m.s.deployTimeout) * time.Minute)
	if m.s.workspaceDir != "" {
		if m.workspace, err = makeWorkspace(m.s.workspaceDir, m.req.ClusterID, m.uid); err != nil {
			return nil, err
		}
	}
	vpcID := ""
	if m.s.subnetID != "" {
		out, err := m.conn.api.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{m.s.subnetID}})
		if err != nil {
			return nil, apiError("finding subnet "+m.s.subnetID, err)
		}
		if len(out.Subnets) == 0 {
			return nil, invalidInput(optSubnetID, "subnet %s does not exist in region %s", m.s.subnetID, m.conn.region)
		}
		vpcID = aws.ToString(out.Subnets[0].VpcId)
	}
	name := resourceName(m.req.ClusterID, m.uid)
	tags := m.tags()

	m.r.Progress("import the SSH key", name, 0, 0)
	if _, err := m.conn.api.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{
		KeyName: aws.String(name), PublicKeyMaterial: []byte(m.req.SSHPublicKey),
		TagSpecifications: []types.TagSpecification{tagSpec(types.ResourceTypeKeyPair, tags)},
	}); err != nil {
		return nil, apiError("importing the cluster's SSH key as key pair "+name, err)
	}

	m.r.Progress("make the security group", name, 0, 0)
	sg, err := m.conn.api.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName: aws.String(name), Description: aws.String("e2e cluster " + m.req.ClusterID),
		VpcId:             optional(vpcID),
		TagSpecifications: []types.TagSpecification{tagSpec(types.ResourceTypeSecurityGroup, tags)},
	})
	if err != nil {
		return nil, apiError("making security group "+name, err)
	}
	m.groupID = aws.ToString(sg.GroupId)
	if _, err := m.conn.api.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(m.groupID), IpPermissions: ingress(m.s.adminLocation, m.groupID),
	}, retryCodes(0, "InvalidGroup.NotFound")); err != nil {
		return nil, apiError("opening security group "+m.groupID, err)
	}

	if err := m.launch(ctx, name, tags); err != nil {
		return nil, err
	}
	running, err := m.waitRunning(ctx)
	if err != nil {
		return nil, err
	}
	return m.cluster(running)
}

// tags are the tags of every resource of the cluster.
func (m *making) tags() map[string]string {
	tags := map[string]string{}
	for k, v := range m.s.tags {
		tags[k] = v
	}
	tags[tagClusterID] = m.req.ClusterID
	tags[tagClusterUID] = m.uid
	tags[tagCreatedAt] = m.created.Format(time.RFC3339)
	tags[tagExpiresAt] = m.expires.Format(time.RFC3339)
	tags[tagSSHUser] = m.user
	tags[tagName] = resourceName(m.req.ClusterID, m.uid)
	if m.workspace != "" {
		tags[tagWorkspace] = m.workspace
	}
	return tags
}

// ingress admits SSH, HTTP and HTTPS from the admin location, and
// everything between the members of the group.
func ingress(adminLocation, groupID string) []types.IpPermission {
	var perms []types.IpPermission
	p := netip.MustParsePrefix(adminLocation)
	for _, port := range []int32{22, 80, 443} {
		perm := types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port)}
		if p.Addr().Is4() {
			perm.IpRanges = []types.IpRange{{CidrIp: aws.String(p.String()), Description: aws.String("e2e admin_location")}}
		} else {
			perm.Ipv6Ranges = []types.Ipv6Range{{CidrIpv6: aws.String(p.String()), Description: aws.String("e2e admin_location")}}
		}
		perms = append(perms, perm)
	}
	return append(perms, types.IpPermission{IpProtocol: aws.String("-1"),
		UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(groupID), Description: aws.String("e2e cluster members")}}})
}

// launch starts the instances of every role: one RunInstances per role,
// or per batch of a role whose host keys do not fit into one user data.
func (m *making) launch(ctx context.Context, name string, tags map[string]string) error {
	total := int64(m.req.Masters + m.req.Agents + m.req.PublicAgents)
	var done int64
	for _, role := range sdk.Roles() {
		count := m.req.Count(role)
		for first := 0; first < count; {
			keys, data, err := m.batch(role, first, count)
			if err != nil {
				return err
			}
			n := len(keys)
			roleTags := map[string]string{}
			for k, v := range tags {
				roleTags[k] = v
			}
			roleTags[tagRole] = string(role)
			roleTags[tagIndex] = strconv.Itoa(first)
			roleTags[tagName] = name + "-" + roleName(role)
			in := &ec2.RunInstancesInput{
				ImageId: aws.String(m.img.ID), InstanceType: types.InstanceType(m.s.instanceTypes[role]),
				MinCount: aws.Int32(int32(n)), MaxCount: aws.Int32(int32(n)),
				KeyName: aws.String(name), SecurityGroupIds: []string{m.groupID}, SubnetId: optional(m.s.subnetID),
				UserData:                          aws.String(base64.StdEncoding.EncodeToString([]byte(data))),
				InstanceInitiatedShutdownBehavior: types.ShutdownBehaviorTerminate,
				// The same token for a retried call: EC2 launches once.
				ClientToken: aws.String(fmt.Sprintf("%s-%s-%d", m.uid, role, first)),
				TagSpecifications: []types.TagSpecification{
					tagSpec(types.ResourceTypeInstance, roleTags), tagSpec(types.ResourceTypeVolume, roleTags),
				},
			}
			if m.s.rootVolumeSize > 0 {
				in.BlockDeviceMappings = []types.BlockDeviceMapping{{DeviceName: aws.String(m.img.RootDevice),
					Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(int32(m.s.rootVolumeSize)), DeleteOnTermination: aws.Bool(true)}}}
			}
			m.r.Progress("launch instances", fmt.Sprintf("%d %s (%s)", n, plural(n, string(role)), m.s.instanceTypes[role]), done, total)
			// The key pair and group just made may not be visible yet.
			out, err := m.conn.api.RunInstances(ctx, in, retryCodes(0, "InvalidKeyPair.NotFound", "InvalidGroup.NotFound"))
			if err != nil {
				return apiError(fmt.Sprintf("launching %d %s", n, plural(n, string(role))), err)
			}
			batch := make([]launched, n)
			for _, inst := range out.Instances {
				i := int(aws.ToInt32(inst.AmiLaunchIndex))
				if i < 0 || i >= n || batch[i].instanceID != "" {
					return fmt.Errorf("EC2 launched instance %s with launch index %d of %d", aws.ToString(inst.InstanceId), i, n)
				}
				batch[i] = launched{role: role, index: first + i, instanceID: aws.ToString(inst.InstanceId), hostKey: keys[i]}
			}
			for i, l := range batch {
				if l.instanceID == "" {
					return fmt.Errorf("EC2 launched %d of %d %s (no instance with launch index %d)", len(out.Instances), n, plural(n, string(role)), i)
				}
			}
			m.launched = append(m.launched, batch...)
			done += int64(n)
			first += n
		}
	}
	return nil
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// batch returns the host keys and user data of the next RunInstances of
// role: nodes first.. of count, as many as fit into EC2's user data limit.
func (m *making) batch(role sdk.Role, first, count int) ([]hostKey, string, error) {
	cfg := bootConfig{cluster: fmt.Sprintf("%s (%s), %s nodes from %d", m.req.ClusterID, m.uid, role, first),
		expires: m.expires, user: m.user}
	if def, _ := sshUser("", settings{}, m.img); m.user != def && m.user != "root" {
		cfg.authorizedKey = m.req.SSHPublicKey
	}
	data := userData(cfg)
	for i := first; i < count; i++ {
		k, err := newHostKey(fmt.Sprintf("e2e-%s-%s_%d", m.req.ClusterID, role, i))
		if err != nil {
			return nil, "", fmt.Errorf("making host keys: %w", err)
		}
		next := cfg
		next.hostKeys = append(append([]hostKey(nil), cfg.hostKeys...), k)
		nextData := userData(next)
		if len(nextData) > maxUserData && len(cfg.hostKeys) > 0 {
			break
		}
		cfg, data = next, nextData
	}
	return cfg.hostKeys, data, nil
}

// waitRunning polls the launched instances until every one runs with its
// addresses, at most launchTimeout, and returns them by id. Instances just
// launched may be unknown to DescribeInstances for a moment
// (InvalidInstanceID.NotFound): that is retried.
func (m *making) waitRunning(ctx context.Context) (map[string]types.Instance, error) {
	ids := make([]string, 0, len(m.launched))
	for _, l := range m.launched {
		ids = append(ids, l.instanceID)
	}
	m.r.Progress("wait for the instances to run", fmt.Sprintf("0 of %d running", len(ids)), 0, int64(len(ids)))
	return backoff.Retry(ctx, func() (map[string]types.Instance, error) {
		out, err := m.conn.api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids},
			retryCodes(0, "InvalidInstanceID.NotFound"))
		if err != nil {
			return nil, backoff.Permanent(apiError("waiting for the instances", err))
		}
		running := map[string]types.Instance{}
		for _, res := range out.Reservations {
			for _, inst := range res.Instances {
				id := aws.ToString(inst.InstanceId)
				switch inst.State.Name {
				case types.InstanceStateNameRunning:
					if aws.ToString(inst.PrivateIpAddress) != "" {
						running[id] = inst
					}
				case types.InstanceStateNameShuttingDown, types.InstanceStateNameTerminated:
					reason := aws.ToString(inst.StateTransitionReason)
					if inst.StateReason != nil {
						reason = aws.ToString(inst.StateReason.Message)
					}
					return nil, backoff.Permanent(fmt.Errorf("instance %s ended while starting: %s", id, reason))
				}
			}
		}
		m.r.Progress("wait for the instances to run", fmt.Sprintf("%d of %d running", len(running), len(ids)), int64(len(running)), int64(len(ids)))
		var pending []string
		for _, id := range ids {
			if _, ok := running[id]; !ok {
				pending = append(pending, id)
			}
		}
		if len(pending) > 0 {
			// Retried until launchTimeout, when this is the error.
			return nil, fmt.Errorf("the instances did not run within %s (still waiting for %s)", launchTimeout, strings.Join(pending, ", "))
		}
		return running, nil
	}, backoff.WithBackOff(pollBackOff()), backoff.WithMaxElapsedTime(launchTimeout))
}

// pollBackOff is how often the backend looks again at instances that are
// starting or terminating: after 1 s, then doubling up to 5 s.
func pollBackOff() backoff.BackOff {
	return &backoff.ExponentialBackOff{InitialInterval: time.Second, Multiplier: 2, MaxInterval: 5 * time.Second}
}

// cluster is what Create returns: the nodes with their addresses and the
// host keys made for them.
func (m *making) cluster(running map[string]types.Instance) (*sdk.Cluster, error) {
	rec, err := json.Marshal(record{Region: m.conn.region})
	if err != nil {
		return nil, err
	}
	c := &sdk.Cluster{ID: m.req.ClusterID, UID: m.uid, CreatedAt: m.created, ExpiresAt: m.expires, Record: rec,
		Details: details(m.conn.region, m.img.ID, m.groupID, resourceName(m.req.ClusterID, m.uid), m.s.subnetID, m.workspace)}
	for _, l := range m.launched {
		n := node(running[l.instanceID], l.role, l.index, m.user, m.s.usePrivateAddresses)
		n.HostKeys = []string{l.hostKey.public}
		c.Nodes = append(c.Nodes, n)
	}
	m.r.Infof("launched %d %s in %s; they terminate by themselves at %s", len(c.Nodes), plural(len(c.Nodes), "instance"),
		m.conn.region, m.expires.Format(time.RFC3339))
	return c, nil
}

// abort removes what a failed or cancelled Create made, unless the user
// asked to retain it, and returns err. Instances it launched are
// terminated by id (tags may not be visible yet), then everything tagged
// with the cluster's UID goes; the core's own Destroy follows.
func (m *making) abort(ctx context.Context, err error) error {
	log := sdk.Logger(ctx)
	if m.req.Retain {
		log.Info("keeping what was made", "cluster", m.req.ClusterID, "reason", err.Error())
		return err
	}
	cctx, cancel := sdk.CleanupContext(ctx)
	defer cancel()
	var ids []string
	for _, l := range m.launched {
		ids = append(ids, l.instanceID)
	}
	if len(ids) > 0 {
		if _, terr := m.conn.api.TerminateInstances(cctx, &ec2.TerminateInstancesInput{InstanceIds: ids},
			retryCodes(0, "InvalidInstanceID.NotFound")); terr != nil {
			log.Error("cleanup: terminating instances failed", "cluster", m.req.ClusterID, "error", terr.Error())
		}
	}
	if derr := destroyCluster(cctx, m.conn, m.r, m.req.ClusterID, m.uid); derr != nil {
		log.Error("cleanup failed", "cluster", m.req.ClusterID, "error", derr.Error())
	}
	// Made before any tagged resource could name it.
	if m.workspace != "" {
		if werr := removeWorkspace(m.workspace, m.req.ClusterID, m.uid); werr != nil {
			log.Error("cleanup failed", "cluster", m.req.ClusterID, "error", werr.Error())
		}
	}
	return err
}
