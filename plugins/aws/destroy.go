package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/cenkalti/backoff/v5"
	"github.com/e2e-tool/e2e/sdk"
)

// terminateTimeout bounds the wait for terminated instances to be gone
// before their security group can be deleted.
const terminateTimeout = 10 * time.Minute

// Destroy terminates the cluster's instances, waits until they are gone,
// and deletes its security group and key pair, all found by tags. It is
// idempotent and works on half-made clusters: whatever of them exists
// goes, and nothing is an error. Without a UID every creation of the id
// goes (leftovers included).
func (b backend) Destroy(ctx context.Context, ref sdk.ClusterRef, r sdk.Reporter) error {
	c, err := b.connectRef(ctx, ref)
	if err != nil {
		return err
	}
	return destroyCluster(ctx, c, r, ref.ClusterID, ref.UID)
}

// destroyCluster removes every resource tagged with the cluster's id (and
// UID, when given).
func destroyCluster(ctx context.Context, c conn, r sdk.Reporter, id, uid string) error {
	filters := clusterFilters(id, uid)
	insts, err := describeInstances(ctx, c.api, append(filters, liveStates))
	if err != nil {
		return apiError("finding the instances of cluster "+id, err)
	}
	var workspaces []string
	var ids []string
	for _, inst := range insts {
		ids = append(ids, aws.ToString(inst.InstanceId))
		workspaces = append(workspaces, tagMap(inst.Tags)[tagWorkspace])
	}
	if len(ids) > 0 {
		r.Progress("terminate instances", fmt.Sprintf("%d %s", len(ids), plural(len(ids), "instance")), 0, int64(len(ids)))
		if _, err := c.api.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids},
			retryCodes(0, "InvalidInstanceID.NotFound")); err != nil {
			return apiError("terminating the instances of cluster "+id, err)
		}
		if err := waitTerminated(ctx, c, r, ids); err != nil {
			return err
		}
	}
	groups, err := c.api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: filters})
	if err != nil {
		return apiError("finding the security group of cluster "+id, err)
	}
	var errs []error
	for _, g := range groups.SecurityGroups {
		workspaces = append(workspaces, tagMap(g.Tags)[tagWorkspace])
		r.Progress("delete the security group", aws.ToString(g.GroupId), 0, 0)
		// A terminated instance's network interface keeps the group in
		// use for a while.
		_, err := c.api.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: g.GroupId},
			retryCodes(dependencyAttempts, "DependencyViolation"))
		if err != nil && apiErrorCode(err) != "InvalidGroup.NotFound" {
			errs = append(errs, apiError("deleting security group "+aws.ToString(g.GroupId), err))
		}
	}
	keys, err := c.api.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: filters})
	if err != nil {
		return errors.Join(append(errs, apiError("finding the key pair of cluster "+id, err))...)
	}
	for _, k := range keys.KeyPairs {
		workspaces = append(workspaces, tagMap(k.Tags)[tagWorkspace])
		r.Progress("delete the key pair", aws.ToString(k.KeyName), 0, 0)
		if _, err := c.api.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: k.KeyName}); err != nil &&
			apiErrorCode(err) != "InvalidKeyPair.NotFound" {
			errs = append(errs, apiError("deleting key pair "+aws.ToString(k.KeyName), err))
		}
	}
	for _, ws := range dedupe(workspaces) {
		if err := removeWorkspace(ws, id, uid); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// waitTerminated polls until every instance of ids is terminated (or
// unknown: gone from the listing), at most terminateTimeout.
func waitTerminated(ctx context.Context, c conn, r sdk.Reporter, ids []string) error {
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		out, err := c.api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})
		if err != nil && apiErrorCode(err) != "InvalidInstanceID.NotFound" {
			return struct{}{}, backoff.Permanent(apiError("waiting for the instances to terminate", err))
		}
		left := 0
		if out != nil {
			for _, res := range out.Reservations {
				for _, inst := range res.Instances {
					if inst.State == nil || inst.State.Name != types.InstanceStateNameTerminated {
						left++
					}
				}
			}
		}
		r.Progress("terminate instances", fmt.Sprintf("%d of %d terminated", len(ids)-left, len(ids)), int64(len(ids)-left), int64(len(ids)))
		if left > 0 {
			// Retried until terminateTimeout, when this is the error.
			return struct{}{}, fmt.Errorf("%d %s did not terminate within %s", left, plural(left, "instance"), terminateTimeout)
		}
		return struct{}{}, nil
	}, backoff.WithBackOff(pollBackOff()), backoff.WithMaxElapsedTime(terminateTimeout))
	return err
}

func dedupe(list []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range list {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
