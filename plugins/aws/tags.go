package main

import (
	"crypto/rand"
	"encoding/hex"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/e2e-tool/e2e/sdk"
)

// Tags every resource of a cluster carries (instances, their volumes, the
// security group, the key pair): they, and nothing kept locally, say which
// cluster a resource belongs to, so any process on any machine finds it.
const (
	tagClusterID  = "e2e:cluster-id"
	tagClusterUID = "e2e:cluster-uid"
	tagCreatedAt  = "e2e:created-at"
	tagExpiresAt  = "e2e:expires-at"
	tagSSHUser    = "e2e:ssh-user"
	tagWorkspace  = "e2e:workspace"
	tagName       = "Name"
	// Instances only.
	tagRole = "e2e:role"
	// tagIndex is the index of the first node of the instance's
	// RunInstances; the node's index is that plus the instance's launch
	// index (AmiLaunchIndex). EC2 gives every instance of one RunInstances
	// the same tags, and one call per role keeps the number of calls from
	// growing with the node count.
	tagIndex = "e2e:index"
)

// newUID returns a random id for one creation of a cluster.
func newUID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// resourceName is the name of a cluster's security group and key pair.
func resourceName(id, uid string) string { return "e2e-" + id + "-" + uid }

// roleName is a role in names and hostnames (RFC 1123: no _).
func roleName(role sdk.Role) string { return strings.ReplaceAll(string(role), "_", "-") }

// toTags turns a map into EC2 tags, in a stable order.
func toTags(m map[string]string) []types.Tag {
	tags := make([]types.Tag, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return tags
}

// tagMap turns EC2 tags into a map.
func tagMap(tags []types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// tagSpec tags a resource at its creation, so that no resource ever
// exists untagged (and so unfindable) even for a moment.
func tagSpec(kind types.ResourceType, tags map[string]string) types.TagSpecification {
	return types.TagSpecification{ResourceType: kind, Tags: toTags(tags)}
}

// clusterFilters select the resources of a cluster: by id, and by UID when
// known (it is not after a failed Create).
func clusterFilters(id, uid string) []types.Filter {
	f := []types.Filter{{Name: aws.String("tag:" + tagClusterID), Values: []string{id}}}
	if uid != "" {
		f = append(f, types.Filter{Name: aws.String("tag:" + tagClusterUID), Values: []string{uid}})
	}
	return f
}

// anyClusterFilter selects every resource e2e made.
func anyClusterFilter() []types.Filter {
	return []types.Filter{{Name: aws.String("tag-key"), Values: []string{tagClusterID}}}
}

// liveStates are the instance states of a cluster that still exists:
// terminated instances stay listed for a while, and are not ours to count.
var liveStates = types.Filter{Name: aws.String("instance-state-name"),
	Values: []string{"pending", "running", "shutting-down", "stopping", "stopped"}}
