package e2etest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/e2e-tool/e2e/cluster"
)

// TestClusterID: ids made from test names are valid cluster ids, say
// which test made them, and differ between calls.
func TestClusterID(t *testing.T) {
	for _, tc := range []struct{ name, prefix string }{
		{"TestNew", "testnew-"},
		{"TestNew/uses_a_cluster", "testnew-uses-a-cluster-"},
		{"Test_ÜberLong/" + strings.Repeat("x", 80), "test-berlong-xxxxxxxxxxxxxxx"},
		{"###", "test-"},
	} {
		id := clusterID(tc.name)
		if err := cluster.ValidateID(id); err != nil || !strings.HasPrefix(id, tc.prefix) || !regexp.MustCompile(`-[a-z0-9]{6}$`).MatchString(id) {
			t.Errorf("clusterID(%q) = %q (%v), want a valid id starting %q and ending in random letters", tc.name, id, err, tc.prefix)
		}
		if again := clusterID(tc.name); again == id {
			t.Errorf("clusterID(%q) gave %q twice", tc.name, id)
		}
	}
}

// TestLogsDirNamedAfterCluster: without -artifacts, the logs of a failed
// test go to a new directory named after the cluster, so that its name
// finds it.
func TestLogsDirNamedAfterCluster(t *testing.T) {
	id := clusterID(t.Name())
	dir, err := logsDir(t, id)
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if name := filepath.Base(dir); !strings.HasPrefix(name, "e2e-logs-"+id+"-") {
		t.Errorf("logs directory %s, want e2e-logs-%s-RANDOM", name, id)
	}
}
