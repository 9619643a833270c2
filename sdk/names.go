package sdk

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// clusterIDPattern is what a cluster id looks like: 1 to 40 characters,
// starting and ending with a letter or digit. It becomes part of container
// names and hostnames (NodeHostname), and can never escape a directory.
var clusterIDPattern = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,38}[a-zA-Z0-9])?$`)

// hostnameLabel is an RFC 1123 host name label, in lower case: 1 to 63
// letters, digits and '-', starting and ending with a letter or digit.
var hostnameLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// MaxNodeIndex is the highest node index of a role the SDK lets a backend
// be asked for (10 000 nodes of a role); NodeHostname stays a valid
// hostname label up to it.
const MaxNodeIndex = 9999

// ValidateClusterID checks a cluster id: 1 to 40 letters, digits, '_', '.'
// or '-', starting and ending with a letter or digit. An id that passes
// gives a valid RFC 1123 hostname label from NodeHostname for every role
// and every index up to MaxNodeIndex. The SDK refuses any other id before a
// backend sees it; the core checks ids with the same function.
func ValidateClusterID(id string) error {
	if !clusterIDPattern.MatchString(id) {
		return fmt.Errorf("invalid cluster id %q: use 1 to 40 letters, digits, '_', '.' or '-', starting and ending with a letter or digit", id)
	}
	// Guards the promise above should the pattern ever change.
	for _, r := range Roles() {
		if h := NodeHostname(id, r, MaxNodeIndex); !hostnameLabel.MatchString(h) {
			return fmt.Errorf("invalid cluster id %q: the node hostname %q it gives is not a valid host name label", id, h)
		}
	}
	return nil
}

// NodeHostname is the hostname of a node that a backend names after its
// cluster: "e2e-ID-ROLE-INDEX" in lower case, with every '_' and '.' of
// the id and role turned into '-' (e2e-a-b-public-agent-0 for cluster "a.b"),
// so that it is one RFC 1123 label (a '.' would make it a dotted name whose
// short name is only "e2e-a"). Two ids that differ only there (a.b, a_b,
// a-b) give the same hostnames; they are apart on their own networks.
func NodeHostname(clusterID string, role Role, index int) string {
	dash := strings.NewReplacer("_", "-", ".", "-")
	return strings.ToLower("e2e-" + dash.Replace(clusterID) + "-" + dash.Replace(string(role)) + "-" + strconv.Itoa(index))
}
