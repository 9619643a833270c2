package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// expire moves a cluster's expiry into the past on all its resources, as
// the clock would: moto's time does not pass.
func expire(t *testing.T, w *awsWorld, id string, ago time.Duration) {
	t.Helper()
	ctx := context.Background()
	var resources []string
	for _, inst := range w.instances(t, id) {
		resources = append(resources, aws.ToString(inst.InstanceId))
	}
	f := []types.Filter{{Name: aws.String("tag:" + tagClusterID), Values: []string{id}}}
	groups, err := w.m.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups.SecurityGroups {
		resources = append(resources, aws.ToString(g.GroupId))
	}
	keys, err := w.m.EC2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys.KeyPairs {
		resources = append(resources, aws.ToString(k.KeyPairId))
	}
	if _, err := w.m.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: resources, Tags: []types.Tag{
		{Key: aws.String(tagExpiresAt), Value: aws.String(time.Now().Add(-ago).UTC().Format(time.RFC3339))}}}); err != nil {
		t.Fatal(err)
	}
}

// listRows returns e2e list's rows by cluster id.
func listRows(t *testing.T, s *sandbox) map[string][]string {
	t.Helper()
	r := s.e2e("list")
	expectCode(t, r, 0)
	rows := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n")[1:] {
		f := strings.Fields(l)
		rows[f[0]] = f
	}
	return rows
}

// TestAWSLifespan: e2e list shows each cluster's expiry, and e2e destroy
// --expired removes every cluster of this E2E_HOME whose lifespan has
// passed: one whose instances still run, one whose instances already
// terminated by themselves (its group and key pair remain); one made from
// another E2E_HOME only with --any-home; and leaves a cluster within its
// lifespan alone.
func TestAWSLifespan(t *testing.T) {
	w := newWorld(t)
	one := []string{"--masters", "1", "--agents", "0", "--public-agents", "0"}
	live, running, ended, other := "live-"+randomHex(3), "run-"+randomHex(3), "end-"+randomHex(3), "oth-"+randomHex(3)
	for _, id := range []string{live, running, ended} {
		expectCode(t, w.create(t, id, one...), 0)
	}
	elsewhere := newSandbox(t, w.m)
	otherWorld := *w
	otherWorld.s = elsewhere
	expectCode(t, otherWorld.create(t, other, one...), 0)

	expire(t, w, running, 10*time.Minute)
	expire(t, w, ended, 20*time.Minute)
	expire(t, w, other, 5*time.Minute)
	// The instances of "ended" powered off at the expiry: EC2 terminated
	// them.
	var ids []string
	for _, inst := range w.instances(t, ended) {
		ids = append(ids, aws.ToString(inst.InstanceId))
	}
	if _, err := w.m.EC2.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: ids}); err != nil {
		t.Fatal(err)
	}

	rows := listRows(t, w.s)
	check := func(id, status, expires string) {
		t.Helper()
		f := rows[id]
		if len(f) < 8 || f[5] != status || !strings.HasPrefix(strings.Join(f[7:], " "), expires) {
			t.Errorf("e2e list row of %s: %v, want status %s, expires %q...", id, f, status, expires)
		}
	}
	check(live, "running", "in ")
	check(running, "running", "expired 10m ago")
	// Recorded, but its instances are gone: missing; e2e list cannot say
	// when it expired without instances to ask.
	check(ended, "missing", "-")

	// This E2E_HOME's expired clusters go; the other E2E_HOME's is not
	// ours to judge without --any-home.
	r := w.s.e2e("destroy", "--expired")
	expectCode(t, r, 0)
	got := strings.Fields(r.Stdout)
	slices.Sort(got)
	want := []string{ended, running}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("destroy --expired destroyed %v, want %v\nstderr: %s", got, want, r.Stderr)
	}
	if left := w.leftovers(t, other); len(left) != 3 {
		t.Errorf("the other E2E_HOME's cluster after destroy --expired has %v, want its instance, group and key pair", left)
	}
	r = w.s.e2e("destroy", "--expired", "--any-home")
	expectCode(t, r, 0)
	if got := strings.Fields(r.Stdout); !slices.Equal(got, []string{other}) {
		t.Errorf("destroy --expired --any-home destroyed %v, want [%s]\nstderr: %s", got, other, r.Stderr)
	}
	want = append(want, other)
	for _, id := range want {
		if left := w.leftovers(t, id); len(left) > 0 {
			t.Errorf("expired cluster %s: EC2 still has %v", id, left)
		}
	}
	if left := w.leftovers(t, live); len(left) != 3 {
		t.Errorf("the cluster within its lifespan has %v, want its instance, group and key pair", left)
	}
	rows = listRows(t, w.s)
	if _, ok := rows[live]; !ok || len(rows) != 1 {
		t.Errorf("after destroy --expired, e2e list shows %v, want only %s", rows, live)
	}
	r = w.s.e2e("destroy", "--expired")
	expectCode(t, r, 0)
	if r.Stdout != "" || !strings.Contains(r.Stderr, "no expired clusters") {
		t.Errorf("a second destroy --expired: stdout %q, stderr %q", r.Stdout, r.Stderr)
	}
}
