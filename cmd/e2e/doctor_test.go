package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/internal/testbin"
)

// TestDoctorFailures: doctor names what is missing and how to fix it,
// and exits 1: a node image that is not in the engine, and an engine that
// cannot be reached. (The shared node image is never touched: the missing
// one is an image option naming no image.)
func TestDoctorFailures(t *testing.T) {
	testbin.RequireDocker(t, "")
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

// TestDoctorSummary: the last line of a failed doctor says how many checks
// failed in which backend and, when every backend was checked, how to
// check only one (a Docker user without AWS credentials is told about
// --backend docker, not left with an exit 1 that seems to blame Docker).
func TestDoctorSummary(t *testing.T) {
	check := func(backend string, ok bool) cluster.Check {
		return cluster.Check{Backend: backend, Name: "a check", OK: ok}
	}
	for _, tc := range []struct {
		name    string
		checks  []cluster.Check
		backend string
		want    string
	}{
		{"aws fails for a docker user", []cluster.Check{check("", true), check("docker", true), check("docker", true), check("aws", false), check("aws", false)}, "",
			"2 of 5 checks failed (aws: 2); to check only the backend you use: e2e doctor --backend docker"},
		{"one backend asked", []cluster.Check{check("", true), check("docker", false)}, "docker",
			"1 of 2 checks failed (docker: 1)"},
		{"e2e's own check only", []cluster.Check{check("", false), check("docker", true)}, "",
			"1 of 2 checks failed (e2e: 1)"},
		{"every backend fails", []cluster.Check{check("", false), check("docker", false), check("aws", false)}, "",
			"3 of 3 checks failed (e2e: 1, docker: 1, aws: 1); to check only the backend you use: e2e doctor --backend NAME"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := doctorSummary(tc.checks, tc.backend); got != tc.want {
				t.Errorf("doctorSummary = %q, want %q", got, tc.want)
			}
		})
	}
}
