package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/e2e-tool/e2e/cluster"
)

// DoctorCmd runs the checks of e2e and of the backends.
type DoctorCmd struct {
	Backend   string   `help:"Only this backend's checks (beside e2e's own)."`
	Option    []string `short:"o" name:"option" placeholder:"NAME=VALUE" help:"Backend option the checks use, as for create (with --backend; e.g. -o image=NAME)." sep:"none"`
	ClusterID string   `name:"cluster-id" short:"c" placeholder:"ID" help:"Also measure the clock skew between this machine and each node of this cluster."`
	JSON      bool     `help:"Print JSON: {\"ok\": ..., \"checks\": [{\"backend\", \"name\", \"ok\", \"detail\", \"fix\"}]}."`
}

// Validate refuses options without a backend: they are one backend's.
func (c *DoctorCmd) Validate() error {
	if len(c.Option) > 0 && c.Backend == "" {
		return invalid(fmt.Errorf("-o does nothing without --backend: add --backend NAME, or leave -o out"))
	}
	return nil
}

func (c *DoctorCmd) Run(e *env) error {
	var opts map[string]any
	if len(c.Option) > 0 {
		var err error
		if opts, err = parseOptions(c.Option); err != nil {
			return err
		}
	}
	e.now("checking this machine")
	checks, err := e.manager.Doctor(e.ctx, cluster.DoctorOptions{Backend: c.Backend, Options: opts, ClusterID: c.ClusterID})
	if err != nil {
		return err
	}
	failed := 0
	for _, ch := range checks {
		if !ch.OK {
			failed++
		}
	}
	if c.JSON {
		if err := printJSON(e, struct {
			OK     bool            `json:"ok"`
			Checks []cluster.Check `json:"checks"`
		}{failed == 0, checks}); err != nil {
			return err
		}
	} else {
		for _, ch := range checks {
			status := "ok  "
			if !ch.OK {
				status = "FAIL"
			}
			name := ch.Name
			if ch.Backend != "" {
				name = ch.Backend + ": " + name
			}
			line := status + "  " + name
			if ch.Detail != "" {
				line += ": " + ch.Detail
			}
			fmt.Fprintln(e.stdout, line)
			if !ch.OK && ch.Fix != "" {
				fmt.Fprintln(e.stdout, "      fix: "+ch.Fix)
			}
		}
	}
	if failed > 0 {
		return exitError{code: exitFailure, err: errors.New(doctorSummary(checks, c.Backend))}
	}
	e.say("all %d checks passed", len(checks))
	return nil
}

// doctorSummary is the last line of a doctor run with failures: how many
// checks failed, and where ("aws: 2", "e2e" for e2e's own checks). When
// every backend was checked and a backend failed, it adds how to check
// only the one in use, naming a backend whose checks passed: a Docker
// user without AWS credentials learns why doctor exited 1 and what to run.
func doctorSummary(checks []cluster.Check, backend string) string {
	var order []string
	failedBy := map[string]int{}
	passedBackend := ""
	for _, ch := range checks {
		where := ch.Backend
		if where == "" {
			where = "e2e"
		}
		if _, seen := failedBy[where]; !seen {
			order = append(order, where)
			failedBy[where] = 0
		}
		if !ch.OK {
			failedBy[where]++
		}
	}
	var parts []string
	failed, backendFailed := 0, false
	for _, where := range order {
		n := failedBy[where]
		if n == 0 {
			if where != "e2e" && passedBackend == "" {
				passedBackend = where
			}
			continue
		}
		failed += n
		parts = append(parts, fmt.Sprintf("%s: %d", where, n))
		if where != "e2e" {
			backendFailed = true
		}
	}
	msg := fmt.Sprintf("%d of %d %s failed (%s)", failed, len(checks), plural(len(checks), "check"), strings.Join(parts, ", "))
	if backend == "" && backendFailed {
		name := passedBackend
		if name == "" {
			name = "NAME"
		}
		msg += "; to check only the backend you use: e2e doctor --backend " + name
	}
	return msg
}
