package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/e2e-tool/e2e/cluster"
)

// TestDoctorFailures: doctor names what is missing and how to fix it,
// and exits 1: a node image that is not in the engine, and an engine that
// cannot be reached. (The shared node image is never touched: the missing
// one is an image option naming no image.)
func TestDoctorFailures(t *testing.T) {
	dockerReady(t)
	for _, tc := range []struct {
		name, check, detail, fix string
		env                      []string
		args                     []string
	}{
		{name: "missing node image", check: "node image present or buildable",
			detail: "e2e-no-such-image:doctor-test", fix: "docker build",
			args: []string{"-o", "image=e2e-no-such-image:doctor-test"}},
		{name: "unreachable engine", check: "Docker engine reachable",
			detail: "unix:///nonexistent", fix: "DOCKER_HOST",
			env: []string{"DOCKER_HOST=unix:///nonexistent"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			s.extra = append(s.extra, tc.env...)
			r := s.e2e(append([]string{"doctor", "--backend", "docker"}, tc.args...)...)
			expectCode(t, r, 1)
			lines := strings.Split(r.Stdout, "\n")
			found := false
			for i, l := range lines {
				if strings.HasPrefix(l, "FAIL  docker: "+tc.check+": ") {
					found = true
					if !strings.Contains(l, tc.detail) {
						t.Errorf("the failed check does not name %q: %s", tc.detail, l)
					}
					if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "      fix: ") || !strings.Contains(lines[i+1], tc.fix) {
						t.Errorf("no fix mentioning %q after the failed check:\n%s", tc.fix, r.Stdout)
					}
				}
			}
			if !found {
				t.Errorf("doctor does not fail %q:\n%s", tc.check, r.Stdout)
			}
			if !strings.Contains(r.Stdout, "ok    state directory writable: "+s.home) {
				t.Errorf("doctor does not show e2e's own checks:\n%s", r.Stdout)
			}
			oneErrorLine(t, r, "failed")

			r = s.e2e(append([]string{"doctor", "--backend", "docker", "--json"}, tc.args...)...)
			expectCode(t, r, 1)
			var out struct {
				OK     bool            `json:"ok"`
				Checks []cluster.Check `json:"checks"`
			}
			if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
				t.Fatalf("doctor --json: %v\n%s", err, r.Stdout)
			}
			failed := false
			for _, c := range out.Checks {
				if c.Backend == "docker" && c.Name == tc.check && !c.OK && strings.Contains(c.Fix, tc.fix) {
					failed = true
				}
			}
			if out.OK || !failed {
				t.Errorf("doctor --json: ok %v, want false with %q failed and fixed by %q: %+v", out.OK, tc.check, tc.fix, out.Checks)
			}
		})
	}
}

// TestDoctorInput: options without a backend, and an unknown backend, are
// bad input.
func TestDoctorInput(t *testing.T) {
	s := newSandbox(t)
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"doctor", "-o", "image=x"}, "--backend"},
		{[]string{"doctor", "--backend", "nosuch"}, "nosuch"},
		{[]string{"doctor", "-c", "nosuch"}, "nosuch"},
	} {
		r := s.e2e(tc.args...)
		expectCode(t, r, 2)
		oneErrorLine(t, r, tc.says)
	}
}
