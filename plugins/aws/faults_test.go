package main

import (
	"bufio"
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/e2e-tool/e2e/internal/proc"
)

// TestAWSFaults: the errors EC2 returns and moto never does, injected by
// the proxy in front of moto: throttling and "not found" right after a
// launch are retried and the create succeeds; a capacity or quota error
// fails it with one line saying what to do, and nothing is left behind;
// a security group still in use is deleted once it is free.
func TestAWSFaults(t *testing.T) {
	w := newWorld(t)
	s, m := w.s, w.m
	small := []string{"--masters", "1", "--agents", "1", "--public-agents", "0"}

	t.Run("throttling and eventual consistency are retried", func(t *testing.T) {
		m.Clear()
		m.Inject(fault{Action: "RunInstances", Times: 2, Status: 503, Code: "RequestLimitExceeded"})
		m.Inject(fault{Action: "ImportKeyPair", Times: 1, Status: 503, Code: "RequestLimitExceeded"})
		// The core's List before create calls DescribeInstances once; the
		// next one is the first look at the instances just launched.
		m.Inject(fault{Action: "DescribeInstances", After: 1, Times: 2, Status: 400, Code: "InvalidInstanceID.NotFound"})
		m.Calls()
		id := "thr-" + randomHex(3)
		r := w.create(t, id, small...)
		expectCode(t, r, 0)
		calls := m.Calls()
		if calls["RunInstances"] != 4 || calls["ImportKeyPair"] != 2 {
			t.Errorf("calls %v: want 2 RunInstances, each after throttling, 2 ImportKeyPair", calls)
		}
		m.Clear()
		// A group still in use by the terminated instances' interfaces.
		m.Inject(fault{Action: "DeleteSecurityGroup", Times: 2, Status: 400, Code: "DependencyViolation"})
		expectCode(t, s.e2e("destroy", "-c", id), 0)
		if calls := m.Calls(); calls["DeleteSecurityGroup"] != 3 {
			t.Errorf("DeleteSecurityGroup called %d times, want 3 (two refused as in use)", calls["DeleteSecurityGroup"])
		}
		if left := w.leftovers(t, id); len(left) > 0 {
			t.Errorf("after destroy: %v", left)
		}
	})

	for _, tc := range []struct {
		name  string
		fault fault
		words []string
	}{
		{"capacity", fault{Action: "RunInstances", Status: 500, Code: "InsufficientInstanceCapacity"},
			[]string{"InsufficientInstanceCapacity", "no capacity", "another instance type"}},
		// The second launch fails: the first one's instances must go too.
		{"quota", fault{Action: "RunInstances", After: 1, Status: 400, Code: "VcpuLimitExceeded"},
			[]string{"VcpuLimitExceeded", "quota", "Service Quotas"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m.Clear()
			m.Inject(tc.fault)
			m.Calls()
			id := tc.name + "-" + randomHex(3)
			r := w.create(t, id, small...)
			expectCode(t, r, 1)
			oneErrorLine(t, r, append([]string{"creating cluster"}, tc.words...)...)
			if calls := m.Calls(); tc.fault.Status == 500 && calls["RunInstances"] != 1 {
				t.Errorf("RunInstances called %d times: a capacity error is not retried", calls["RunInstances"])
			}
			m.Clear()
			if left := w.leftovers(t, id); len(left) > 0 {
				t.Errorf("after the failed create: %v", left)
			}
			if r := s.e2e("inspect", "-c", id); r.Code != 2 {
				t.Errorf("a failed create left a record: inspect exits %d", r.Code)
			}
		})
	}
}

// TestAWSInterrupt: Ctrl-C while the instances start removes everything
// made; with --retain it is all kept, and e2e destroy removes it.
func TestAWSInterrupt(t *testing.T) {
	w := newWorld(t)
	for _, retain := range []bool{false, true} {
		name := "removes"
		if retain {
			name = "retain"
		}
		t.Run(name, func(t *testing.T) {
			w.m.Clear()
			// The instances take their time to run: the user gives up.
			w.m.Inject(fault{Action: "DescribeInstances", After: 1, Times: 1, Delay: 30 * time.Second})
			id := "int-" + randomHex(3)
			args := []string{"create", "--backend", "aws", "-c", id, "--masters", "1", "--agents", "2", "--public-agents", "0",
				"-o", "admin_location=203.0.113.0/24", "-o", "instance_type=t3.medium", "-o", "ami=" + w.ami, "--ssh-proxy-command", w.h.Proxy}
			if retain {
				args = append(args, "--retain")
			}
			t.Cleanup(func() { w.s.e2e("destroy", "-c", id) })
			cmd := proc.Command(context.Background(), bins.e2e, args...)
			cmd.Env = w.s.env
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var lines []string
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				lines = append(lines, sc.Text())
				if strings.Contains(sc.Text(), "wait for the instances to run") {
					break
				}
			}
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			sigAt := time.Now()
			var restB strings.Builder
			for sc.Scan() {
				restB.WriteString(time.Since(sigAt).Round(time.Millisecond).String() + " " + sc.Text() + "\n")
			}
			rest := restB.String()
			err = cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 130 {
				t.Fatalf("e2e exited %v after Ctrl-C, want 130; stderr:\n%s\n%s", err, strings.Join(lines, "\n"), rest)
			}
			w.m.Clear()
			live := 0
			for _, inst := range w.instances(t, id) {
				if inst.State.Name == types.InstanceStateNameRunning {
					live++
				}
			}
			if !retain {
				if !strings.Contains(string(rest), "nothing was left behind") {
					t.Errorf("stderr after Ctrl-C:\n%s", rest)
				}
				if left := w.leftovers(t, id); len(left) > 0 {
					t.Errorf("after Ctrl-C: %v", left)
				}
				return
			}
			if live != 3 || len(w.leftovers(t, id)) != 5 {
				t.Errorf("with --retain: %d running instances, leftovers %v; want the 3 instances, the group and the key pair", live, w.leftovers(t, id))
			}
			expectCode(t, w.s.e2e("destroy", "-c", id), 0)
			if left := w.leftovers(t, id); len(left) > 0 {
				t.Errorf("after destroying what was retained: %v", left)
			}
		})
	}
}
