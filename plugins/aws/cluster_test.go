package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/internal/testbin"
	"github.com/e2e-tool/e2e/internal/testdcos"
)

// awsWorld is moto, the stand-ins and a sandbox, for one test.
type awsWorld struct {
	m   *moto
	h   *hypervisor
	s   *sandbox
	ami string
}

func newWorld(t *testing.T) *awsWorld {
	t.Helper()
	m := startMoto(t)
	w := &awsWorld{m: m, ami: debianImage(t, m)}
	w.h = startHypervisor(t, m, testbin.NodeImage(t, bins.docker, ""))
	w.s = newSandbox(t, m)
	return w
}

// create runs e2e create on the world's moto, with the options every AWS
// cluster needs and the stand-ins' proxy command.
func (w *awsWorld) create(t *testing.T, id string, args ...string) testbin.Result {
	t.Helper()
	base := []string{"create", "--backend", "aws", "-c", id, "-o", "admin_location=203.0.113.0/24",
		"-o", "instance_type=t3.medium", "-o", "ami=" + w.ami, "--ssh-proxy-command", w.h.Proxy}
	t.Cleanup(func() { w.s.e2e("destroy", "-c", id) })
	return w.s.e2e(append(base, args...)...)
}

// instances returns the instances of a cluster, as EC2 has them, by id.
func (w *awsWorld) instances(t *testing.T, id string) []types.Instance {
	t.Helper()
	out, err := w.m.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{
		Filters: []types.Filter{{Name: aws.String("tag:" + tagClusterID), Values: []string{id}}}})
	if err != nil {
		t.Fatal(err)
	}
	var insts []types.Instance
	for _, r := range out.Reservations {
		insts = append(insts, r.Instances...)
	}
	return insts
}

// leftovers lists what of a cluster EC2 still has besides terminated
// instances (which moto keeps listing): nothing, once it is destroyed.
func (w *awsWorld) leftovers(t *testing.T, id string) []string {
	t.Helper()
	var left []string
	for _, inst := range w.instances(t, id) {
		if inst.State.Name != types.InstanceStateNameTerminated {
			left = append(left, "instance "+aws.ToString(inst.InstanceId)+" ("+string(inst.State.Name)+")")
		}
	}
	f := []types.Filter{{Name: aws.String("tag:" + tagClusterID), Values: []string{id}}}
	groups, err := w.m.EC2.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups.SecurityGroups {
		left = append(left, "security group "+aws.ToString(g.GroupId))
	}
	keys, err := w.m.EC2.DescribeKeyPairs(context.Background(), &ec2.DescribeKeyPairsInput{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys.KeyPairs {
		left = append(left, "key pair "+aws.ToString(k.KeyName))
	}
	return left
}

// TestAWSCluster drives a cluster through the real e2e and plugin: create
// (1 master, 2 agents, 1 public agent), list, inspect, run, send-file,
// download, install from a URL, destroy; and checks in EC2 what each step
// left there.
func TestAWSCluster(t *testing.T) {
	w := newWorld(t)
	s := w.s
	id := "aws-" + randomHex(3)
	start := time.Now()
	r := w.create(t, id, "--agents", "2", "-o", "deploy_timeout=90", "-o", "tags=team=e2e-test")
	expectCode(t, r, 0)
	if strings.TrimSpace(r.Stdout) != id {
		t.Errorf("create printed %q, want the id", r.Stdout)
	}

	// inspect: four nodes at their public addresses, as the Debian user,
	// host keys pinned under their aliases.
	r = s.e2e("inspect", "-c", id, "--json")
	expectCode(t, r, 0)
	var c cluster.Cluster
	if err := json.Unmarshal([]byte(r.Stdout), &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Masters()) != 1 || len(c.Agents()) != 2 || len(c.PublicAgents()) != 1 {
		t.Fatalf("nodes: %+v", c.Nodes)
	}
	insts := w.instances(t, id)
	byID := map[string]types.Instance{}
	for _, inst := range insts {
		byID[aws.ToString(inst.InstanceId)] = inst
	}
	for _, n := range c.Nodes {
		inst, ok := byID[n.Name]
		if !ok {
			t.Fatalf("node %s is %q, not an instance of the cluster", n.ID(), n.Name)
		}
		if n.SSH.Host != aws.ToString(inst.PublicIpAddress) || n.SSH.Port != 22 || n.SSH.User != "admin" {
			t.Errorf("node %s: SSH %+v, want admin@%s:22", n.ID(), n.SSH, aws.ToString(inst.PublicIpAddress))
		}
		if n.PrivateAddress != aws.ToString(inst.PrivateIpAddress) || n.HostKeyAlias != "e2e-"+id+"-"+n.ID() || n.State != cluster.NodeRunning {
			t.Errorf("node %s: %+v", n.ID(), n)
		}
	}
	if c.Details["region"] != testRegion || c.SSHProxyCommand != w.h.Proxy {
		t.Errorf("details %v, proxy command %q", c.Details, c.SSHProxyCommand)
	}
	if c.ExpiresAt.Before(start.Add(89*time.Minute)) || c.ExpiresAt.After(time.Now().Add(91*time.Minute)) {
		t.Errorf("expires at %v, want 90 minutes after the create (at %v)", c.ExpiresAt, start)
	}

	t.Run("tags and lifespan in EC2", func(t *testing.T) { checkInstances(t, w, c, insts) })

	// list: the cluster, running, with its age and when it expires.
	r = s.e2e("list")
	expectCode(t, r, 0)
	var row string
	for _, l := range strings.Split(r.Stdout, "\n") {
		if strings.HasPrefix(l, id+" ") {
			row = l
		}
	}
	if f := strings.Fields(row); len(f) != 9 || f[1] != "aws" || f[5] != "running" || f[7] != "in" || !strings.HasPrefix(f[8], "1h29m") && !strings.HasPrefix(f[8], "1h30m") {
		t.Errorf("e2e list row %q (all: %s)", row, r.Stdout)
	}

	// run on every node, through the stand-ins' proxy command.
	r = s.e2e("run", "-c", id, "--all", "--", "sh", "-c", "echo $(id -un) $(cat /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f2)")
	expectCode(t, r, 0)
	if n := strings.Count(r.Stdout, ": admin AAAA"); n != 4 {
		t.Errorf("run --all printed:\n%s\nwant 4 lines from admin with a host key", r.Stdout)
	}
	expectCode(t, s.e2e("run", "-c", id, "--node", "agent_1", "--sudo", "--", "true"), 0)

	// send-file to every node, download from one.
	src := filepath.Join(t.TempDir(), "payload.txt")
	if err := os.WriteFile(src, []byte("to every instance\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	expectCode(t, s.e2e("send-file", "-c", id, src, "/tmp/payload.txt"), 0)
	r = s.e2e("run", "-c", id, "--all", "--", "cat", "/tmp/payload.txt")
	expectCode(t, r, 0)
	if n := strings.Count(r.Stdout, ": to every instance"); n != 4 {
		t.Errorf("after send-file, run --all cat printed:\n%s", r.Stdout)
	}
	back := filepath.Join(t.TempDir(), "back.txt")
	expectCode(t, s.e2e("download", "-c", id, "--node", "public_agent_0", "/tmp/payload.txt", back), 0)
	if b, err := os.ReadFile(back); err != nil || string(b) != "to every instance\n" {
		t.Errorf("downloaded %q, %v", b, err)
	}

	t.Run("install from a URL", func(t *testing.T) { installFromURL(t, w, id) })

	// destroy: every instance terminated, the group and key pair gone.
	r = s.e2e("destroy", "-c", id)
	expectCode(t, r, 0)
	if left := w.leftovers(t, id); len(left) > 0 {
		t.Errorf("after destroy EC2 still has %v", left)
	}
	if n := len(w.instances(t, id)); n != 4 {
		t.Errorf("EC2 lists %d instances of the cluster, want its 4 terminated ones", n)
	}
	r = s.e2e("list")
	expectCode(t, r, 0)
	if strings.Contains(r.Stdout, id) {
		t.Errorf("e2e list after destroy:\n%s", r.Stdout)
	}
	// Again: nothing to do, and no error.
	r = s.e2e("destroy", "-c", id)
	expectCode(t, r, 2)
	oneErrorLine(t, r, "no such cluster")
}

// checkInstances checks in EC2 what create made: tags, the lifespan's
// shutdown behaviour and user data, the security group and key pair.
func checkInstances(t *testing.T, w *awsWorld, c cluster.Cluster, insts []types.Instance) {
	ctx := context.Background()
	var uid string
	for _, inst := range insts {
		tags := tagMap(inst.Tags)
		for _, k := range []string{tagClusterID, tagClusterUID, tagRole, tagIndex, tagExpiresAt, tagCreatedAt} {
			if tags[k] == "" {
				t.Errorf("instance %s has no tag %s: %v", aws.ToString(inst.InstanceId), k, tags)
			}
		}
		uid = tags[tagClusterUID]
		if tags["team"] != "e2e-test" || tags[tagClusterID] != c.ID || tags[tagExpiresAt] != c.ExpiresAt.UTC().Format(time.RFC3339) {
			t.Errorf("instance %s tags %v", aws.ToString(inst.InstanceId), tags)
		}
		if inst.InstanceType != "t3.medium" || aws.ToString(inst.ImageId) != w.ami {
			t.Errorf("instance %s: type %s, image %s", aws.ToString(inst.InstanceId), inst.InstanceType, aws.ToString(inst.ImageId))
		}
		attr, err := w.m.EC2.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{
			InstanceId: inst.InstanceId, Attribute: types.InstanceAttributeNameInstanceInitiatedShutdownBehavior})
		if err != nil {
			t.Fatal(err)
		}
		if v := aws.ToString(attr.InstanceInitiatedShutdownBehavior.Value); v != "terminate" {
			t.Errorf("instance %s shuts down with %q, want terminate", aws.ToString(inst.InstanceId), v)
		}
	}
	// One launch per role: the index tag is the first index of the launch.
	reservations := map[string]bool{}
	for _, inst := range insts {
		reservations[tagMap(inst.Tags)[tagRole]+"/"+tagMap(inst.Tags)[tagIndex]] = true
	}
	if want := []string{"agent/0", "master/0", "public_agent/0"}; !slices.Equal(slices.Sorted(mapsKeys(reservations)), want) {
		t.Errorf("launches (role/first index): %v, want %v", slices.Sorted(mapsKeys(reservations)), want)
	}

	// The lifespan: the stand-in ran the user data's bootcmd, which
	// scheduled the power-off at the expiry; EC2 terminates an instance
	// that powers off.
	for _, n := range c.Nodes {
		st, ok := w.h.Standin(n.Name)
		if !ok {
			t.Fatalf("no stand-in for %s", n.Name)
		}
		out, err := exec.Command("docker", "exec", st.Container, "cat", "/run/systemd/shutdown/scheduled").CombinedOutput()
		if err != nil {
			t.Errorf("%s: no shutdown scheduled: %v: %s", n.ID(), err, out)
			continue
		}
		var usec int64
		for _, l := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(l, "USEC="); ok {
				usec, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		at := time.UnixMicro(usec)
		if d := at.Sub(c.ExpiresAt); d < -time.Minute || d > time.Minute || !strings.Contains(string(out), "MODE=poweroff") {
			t.Errorf("%s: shutdown scheduled %s at %v, want a power-off at the expiry %v", n.ID(), out, at, c.ExpiresAt)
		}
	}

	// The security group admits admin_location and the members.
	groups, err := w.m.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: clusterFilters(c.ID, uid)})
	if err != nil || len(groups.SecurityGroups) != 1 {
		t.Fatalf("security groups: %v, %v", groups, err)
	}
	g := groups.SecurityGroups[0]
	var rules []string
	for _, p := range g.IpPermissions {
		for _, rg := range p.IpRanges {
			rules = append(rules, fmt.Sprintf("%s %d from %s", aws.ToString(p.IpProtocol), aws.ToInt32(p.FromPort), aws.ToString(rg.CidrIp)))
		}
		for _, pair := range p.UserIdGroupPairs {
			if aws.ToString(pair.GroupId) == aws.ToString(g.GroupId) {
				rules = append(rules, aws.ToString(p.IpProtocol)+" from the group")
			}
		}
	}
	slices.Sort(rules)
	want := []string{"-1 from the group", "tcp 22 from 203.0.113.0/24", "tcp 443 from 203.0.113.0/24", "tcp 80 from 203.0.113.0/24"}
	if !slices.Equal(rules, want) {
		t.Errorf("security group rules %v, want %v", rules, want)
	}
	// The key pair is the core's public key.
	keys, err := w.m.EC2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: clusterFilters(c.ID, uid), IncludePublicKey: aws.Bool(true)})
	if err != nil || len(keys.KeyPairs) != 1 {
		t.Fatalf("key pairs: %v, %v", keys, err)
	}
	pub, err := os.ReadFile(filepath.Join(c.StateDir, "id_ed25519.pub"))
	if err == nil && strings.Fields(string(pub))[1] != strings.Fields(aws.ToString(keys.KeyPairs[0].PublicKey))[1] {
		t.Errorf("key pair %q is not the cluster's key %q", aws.ToString(keys.KeyPairs[0].PublicKey), pub)
	}
}

func mapsKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// installFromURL installs the DC/OS installer stand-in from a URL, which
// master_0 downloads from an HTTP server on the stand-ins' network; a
// local installer file is refused, as the backend installs from URLs
// only.
func installFromURL(t *testing.T, w *awsWorld, id string) {
	dir := t.TempDir()
	installer, err := testdcos.Build(context.Background(), dir, testdcos.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := w.s.e2e("install", "-c", id, "--installer", installer)
	expectCode(t, r, 2)
	oneErrorLine(t, r, "installs only from url", "--installer-url")

	name := "e2e-aws-http-" + randomHex(3)
	out, err := exec.Command("docker", "run", "-d", "--name", name, "--label", "e2e.cluster-id="+id, "--network", w.h.network,
		"-v", bins.hello+":/hello:ro", "-v", dir+":/srv:ro", "--entrypoint", "/hello", w.h.image, "-listen", ":8000", "-dir", "/srv").CombinedOutput()
	if err != nil {
		t.Fatalf("docker run: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", name).Run() })
	ip, err := exec.Command("docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	// The instances' ip-detect asks EC2's metadata service, which the
	// stand-ins do not have: each reports its stand-in address.
	ipDetect := filepath.Join(dir, "ip-detect")
	if err := os.WriteFile(ipDetect, []byte("#!/bin/sh\nip -4 -o addr show dev eth0 | awk '{split($4, a, \"/\"); print a[1]; exit}'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://%s:8000/%s", strings.TrimSpace(string(ip)), filepath.Base(installer))
	r = w.s.e2e("install", "-c", id, "--installer-url", url, "--ip-detect", ipDetect)
	expectCode(t, r, 0)
	r = w.s.e2e("run", "-c", id, "--", "sh", "-c", "test -s /opt/dcos_genconf/dcos_generate_config.sh && echo downloaded")
	expectCode(t, r, 0)
	if strings.TrimSpace(r.Stdout) != "downloaded" {
		t.Errorf("master_0 did not download the installer: %q", r.Stdout)
	}
	expectCode(t, w.s.e2e("wait", "-c", id, "--skip-http-checks", "--timeout", "2m"), 0)
}
