package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/internal/testbin"
)

// BenchmarkCreateCalls counts the EC2 calls of `e2e create` (through the
// proxy in front of moto) for a 1+2+1 and a 1+8+1 cluster: the goal is
// that the count does not grow with the node count. It reports the calls
// of the plugin's Create, the calls of the whole command (with the core's
// List before it), and their ratio against the 1+2+1 baseline of the same
// run; time is reported too, for the record only (moto and the stand-ins
// set it, not EC2).
func BenchmarkCreateCalls(b *testing.B) {
	m := startMoto(b)
	ami := debianImage(b, m)
	h := startHypervisor(b, m, testbin.NodeImage(b, bins.docker, ""))
	var baseline int
	for _, shape := range []struct {
		name                  string
		masters, agents, publ int
	}{{"1+2+1", 1, 2, 1}, {"1+8+1", 1, 8, 1}} {
		b.Run(shape.name, func(b *testing.B) {
			s := newSandbox(b, m)
			var total, create int
			var spent time.Duration
			var byAction map[string]int
			for i := range b.N {
				id := fmt.Sprintf("bench-%s-%d", randomHex(2), i)
				m.Calls()
				start := time.Now()
				r := s.e2e("create", "--backend", "aws", "-c", id,
					"--masters", fmt.Sprint(shape.masters), "--agents", fmt.Sprint(shape.agents), "--public-agents", fmt.Sprint(shape.publ),
					"-o", "admin_location=203.0.113.0/24", "-o", "instance_type=t3.medium", "-o", "ami="+ami, "--ssh-proxy-command", h.Proxy)
				spent += time.Since(start)
				byAction = m.Calls()
				if r.Code != 0 {
					b.Fatalf("create: %s", r.Stderr)
				}
				total, create = 0, 0
				for action, n := range byAction {
					total += n
					// The core's List before the create: one of each.
					if !slices.Contains([]string{"DescribeSecurityGroups", "DescribeKeyPairs"}, action) {
						create += n
					}
				}
				create -= 1 // the List's DescribeInstances
				if r := s.e2e("destroy", "-c", id); r.Code != 0 {
					b.Fatalf("destroy: %s", r.Stderr)
				}
			}
			if shape.name == "1+2+1" {
				baseline = create
			}
			var parts []string
			for _, a := range slices.Sorted(mapKeys(byAction)) {
				parts = append(parts, fmt.Sprintf("%s=%d", a, byAction[a]))
			}
			b.Logf("%s: %d EC2 calls by the plugin's Create, %d by e2e create (%s)", shape.name, create, total, strings.Join(parts, " "))
			b.ReportMetric(float64(create), "create-calls/op")
			b.ReportMetric(float64(total), "command-calls/op")
			if baseline > 0 {
				b.ReportMetric(float64(create)/float64(baseline), "calls/baseline")
			}
			b.ReportMetric(float64(spent.Milliseconds())/float64(b.N), "ms/create")
		})
	}
}

func mapKeys(m map[string]int) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
