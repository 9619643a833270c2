package main

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/e2e-tool/e2e/cluster"
)

// TestOtherStateHome: a cluster made from another E2E_HOME is listed as
// untracked, with that E2E_HOME (--json) or as "other E2E_HOME" (the
// table), and can still be destroyed; an id no backend knows exits 2.
func TestOtherStateHome(t *testing.T) {
	a := newSandbox(t)
	a.extra = append(a.extra, "E2E_TEST_BACKEND_DIR="+a.machine)
	expectCode(t, a.e2e("create", "--backend", "test", "-c", "elsewhere"), 0)

	b := newSandbox(t)
	b.machine = a.machine
	b.extra = a.extra
	r := b.e2e("list", "--backend", "test", "--json")
	expectCode(t, r, 0)
	var rows []cluster.Summary
	if err := json.Unmarshal([]byte(r.Stdout), &rows); err != nil || len(rows) != 1 || rows[0].Status != "untracked" || rows[0].Agents != 1 {
		t.Fatalf("list from another home = %s (err %v), want elsewhere untracked", r.Stdout, err)
	}
	if rows[0].Home != a.home {
		t.Errorf("list --json gives e2e_home %q for the untracked cluster, want its maker's %s", rows[0].Home, a.home)
	}
	r = b.e2e("list", "--backend", "test")
	expectCode(t, r, 0)
	if !regexp.MustCompile(`(?m)^elsewhere +test .* untracked \(other E2E_HOME\) `).MatchString(r.Stdout) {
		t.Errorf("list does not mark elsewhere as another E2E_HOME's:\n%s", r.Stdout)
	}
	// A cluster of this E2E_HOME whose record was dropped is untracked
	// alone.
	expectCode(t, a.e2e("create", "--backend", "test", "-c", "dropped"), 0)
	expectCode(t, a.e2e("forget", "-c", "dropped"), 0)
	r = a.e2e("list", "--backend", "test")
	expectCode(t, r, 0)
	if !regexp.MustCompile(`(?m)^dropped +test .* untracked +\d`).MatchString(r.Stdout) || strings.Contains(r.Stdout, "other E2E_HOME") {
		t.Errorf("list from the maker's home:\n%s\nwant dropped untracked, nothing of another E2E_HOME", r.Stdout)
	}
	expectCode(t, a.e2e("destroy", "-c", "dropped"), 0)
	// A plain e2e list asks the backends of the recorded clusters, and so
	// shows it beside this home's own cluster, as the README says.
	expectCode(t, b.e2e("create", "--backend", "test", "-c", "mine"), 0)
	r = b.e2e("list", "--json")
	expectCode(t, r, 0)
	rows = nil
	if err := json.Unmarshal([]byte(r.Stdout), &rows); err != nil || len(rows) != 2 ||
		rows[0].ID != "elsewhere" || rows[0].Status != "untracked" || rows[1].ID != "mine" || rows[1].Status != "running" {
		t.Fatalf("list = %s (err %v), want elsewhere untracked and mine running", r.Stdout, err)
	}
	// inspect needs the record.
	r = b.e2e("inspect", "-c", "elsewhere")
	expectCode(t, r, 2)
	oneErrorLine(t, r, `no such cluster "elsewhere"`)
	expectCode(t, b.e2e("destroy", "-c", "mine"), 0)
	expectCode(t, b.e2e("destroy", "-c", "elsewhere"), 0)
	if got := a.clusterDirs(); len(got) != 0 {
		t.Errorf("destroy from another home left %v", got)
	}
	r = b.e2e("destroy", "-c", "elsewhere")
	expectCode(t, r, 2)
	oneErrorLine(t, r, `no such cluster "elsewhere"`)
}

// TestClean: leftovers no record owns are listed, then removed; recorded
// clusters are kept.
func TestClean(t *testing.T) {
	s := newSandbox(t)
	s.extra = append(s.extra, "E2E_TEST_BACKEND_DIR="+s.machine)
	expectCode(t, s.e2e("create", "--backend", "test", "-c", "kept"), 0)
	expectCode(t, s.e2e("create", "--backend", "test", "-c", "orphan"), 0)
	expectCode(t, s.e2e("forget", "-c", "orphan"), 0)

	r := s.e2e("clean", "--backend", "test", "--dry-run")
	expectCode(t, r, 0)
	orphan := filepath.Join(s.machine, "clusters", "orphan")
	if strings.TrimSpace(r.Stdout) != "test: would remove "+orphan {
		t.Errorf("clean --dry-run listed %q", r.Stdout)
	}
	if got := s.clusterDirs(); len(got) != 2 {
		t.Fatalf("dry run removed something: %v", got)
	}
	r = s.e2e("clean", "--backend", "test")
	expectCode(t, r, 0)
	if strings.TrimSpace(r.Stdout) != "test: removed "+orphan {
		t.Errorf("clean printed %q", r.Stdout)
	}
	if got := s.clusterDirs(); len(got) != 1 || got[0] != "kept" {
		t.Errorf("after clean the backend holds %v, want only kept", got)
	}
}
