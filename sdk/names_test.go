package sdk

import (
	"regexp"
	"strings"
	"testing"
)

// rfc1123Label is a host name label as RFC 1123 defines it (letters in
// either case; hostnames compare case-insensitively).
var rfc1123Label = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)

func TestNodeHostname(t *testing.T) {
	tests := []struct {
		id   string
		role Role
		idx  int
		want string
	}{
		{"default", RoleMaster, 0, "e2e-default-master-0"},
		{"a.b", RoleAgent, 0, "e2e-a-b-agent-0"},
		{"a_b", RolePublicAgent, 3, "e2e-a-b-public-agent-3"},
		{"Web.Prod_1", RoleMaster, 12, "e2e-web-prod-1-master-12"},
		{"0.1.2", RoleAgent, MaxNodeIndex, "e2e-0-1-2-agent-9999"},
		{strings.Repeat("z", 40), RolePublicAgent, MaxNodeIndex, "e2e-" + strings.Repeat("z", 40) + "-public-agent-9999"},
	}
	for _, tt := range tests {
		if got := NodeHostname(tt.id, tt.role, tt.idx); got != tt.want {
			t.Errorf("NodeHostname(%q, %s, %d) = %q, want %q", tt.id, tt.role, tt.idx, got, tt.want)
		}
	}
}

// TestValidIDsGiveValidHostnames: every id ValidateClusterID accepts gives
// an RFC 1123 label for every role and index a backend may be asked for,
// and the ids that would not are refused.
func TestValidIDsGiveValidHostnames(t *testing.T) {
	ids := []struct {
		id string
		ok bool
	}{
		{"default", true},
		{"a.b", true},
		{"a..b", true},
		{"a_b-c.d", true},
		{"A", true},
		{"9", true},
		{strings.Repeat("a", 40), true},
		{strings.Repeat("a.", 19) + "ab", true},
		{"x.", false},
		{"x-", false},
		{"x_", false},
		{".x", false},
		{"-x", false},
		{"_x", false},
		{"", false},
		{strings.Repeat("a", 41), false},
		{"a/b", false},
		{"a b", false},
		{"café", false},
	}
	for _, tt := range ids {
		err := ValidateClusterID(tt.id)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateClusterID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
			continue
		}
		if !tt.ok {
			if !strings.Contains(err.Error(), "starting and ending with a letter or digit") {
				t.Errorf("ValidateClusterID(%q) = %v: does not say what an id may be", tt.id, err)
			}
			continue
		}
		for _, role := range Roles() {
			for _, idx := range []int{0, 9, 10, MaxNodeIndex} {
				h := NodeHostname(tt.id, role, idx)
				if !rfc1123Label.MatchString(h) || strings.ContainsAny(h, "._") {
					t.Errorf("id %q, %s %d: hostname %q is not an RFC 1123 label", tt.id, role, idx, h)
				}
			}
		}
	}
}
