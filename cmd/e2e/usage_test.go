package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestNoCommandShowsUsage: e2e alone, or a command group alone, prints the
// usage on stderr (exit 2), never kong's "expected one of".
func TestNoCommandShowsUsage(t *testing.T) {
	s := newSandbox(t)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"Usage: e2e <command>", "Commands:", "  create ", "  plugin install "}},
		{[]string{"plugin"}, []string{"Usage: e2e plugin <command>", "e2e: give a command after e2e plugin: list, info, install or remove"}},
	} {
		r := s.e2e(tc.args...)
		expectCode(t, r, 2)
		for _, w := range tc.want {
			if !strings.Contains(r.Stderr, w) {
				t.Errorf("e2e %v: stderr lacks %q:\n%s", tc.args, w, r.Stderr)
			}
		}
		if strings.Contains(r.Stderr, "expected") || r.Stdout != "" {
			t.Errorf("e2e %v: stdout %q, stderr:\n%s", tc.args, r.Stdout, r.Stderr)
		}
	}
}

// TestUsageMistakes: mistakes on the command line are one plain line
// naming the flag or argument and what to give, exit 2, before anything
// runs: a flag of one value given twice (the last used to win silently),
// flags that cannot go together or do nothing without another, missing
// flags and arguments, files that do not exist.
func TestUsageMistakes(t *testing.T) {
	s := newSandbox(t)
	expectCode(t, s.e2e("create", "--backend", "test", "-o", s.dirOpt(), "-c", "taken"), 0)
	missing := filepath.Join(t.TempDir(), "nothing.yaml")
	dir := t.TempDir()
	for _, tc := range []struct {
		name      string
		args      []string
		fragments []string
	}{
		{"download from two nodes", []string{"download", "-c", "taken", "--node", "agent_1", "--node", "agent_0", "/etc/hostname", dir}, []string{"--node is given more than once", "it takes one value"}},
		{"two cluster ids", []string{"run", "-c", "taken", "-c", "other", "--", "true"}, []string{"--cluster-id is given more than once"}},
		{"two backends", []string{"create", "--backend", "test", "--backend", "docker", "-o", s.dirOpt()}, []string{"--backend is given more than once"}},
		{"two ssh nodes", []string{"ssh", "-c", "taken", "--node", "master_0", "--node", "agent_0"}, []string{"--node is given more than once"}},
		{"run --all with --node", []string{"run", "-c", "taken", "--all", "--node", "agent_0", "--", "true"}, []string{"--all and --node cannot be given together", "--all already means every node"}},
		{"run --all with --role", []string{"run", "-c", "taken", "--all", "--role", "agent", "--", "true"}, []string{"--all and --role cannot be given together"}},
		{"send-file --all with --node", []string{"send-file", "-c", "taken", "--all", "--node", "agent_0", "/etc/hostname", "/tmp/x"}, []string{"--all and --node cannot be given together"}},
		{"run --sudo with --user", []string{"run", "-c", "taken", "--sudo", "--user", "nobody", "--", "id"}, []string{"--sudo and --user cannot be given together"}},
		{"create --wait without an installer", []string{"create", "--backend", "test", "-o", s.dirOpt(), "--wait"}, []string{"--wait does nothing without --installer or --installer-url"}},
		{"create --timeout without --wait", []string{"create", "--backend", "test", "-o", s.dirOpt(), "--installer-url", "http://127.0.0.1:1/x", "--timeout", "1m"}, []string{"--timeout does nothing without --wait"}},
		{"install --script with a DC/OS flag", []string{"install", "-c", "taken", "--script", "/etc/hostname", "--variant", "oss"}, []string{"--script and --variant cannot be given together"}},
		{"install --script-arg without --script", []string{"install", "-c", "taken", "--installer-url", "http://127.0.0.1:1/x", "--script-arg", "a"}, []string{"--script-arg does nothing without --script"}},
		{"wait --role without --command", []string{"wait", "-c", "taken", "--role", "agent"}, []string{"--role does nothing without --command"}},
		{"wait --command with a DC/OS check flag", []string{"wait", "-c", "taken", "--command", "true", "--skip-http-checks"}, []string{"--command and --skip-http-checks cannot be given together"}},
		{"download without --node", []string{"download", "-c", "taken", "/etc/hostname", dir}, []string{"which node? give --node NODE"}},
		{"forget without -c", []string{"forget"}, []string{"which cluster? give -c ID"}},
		{"run without a command", []string{"run", "-c", "taken"}, []string{"no command given", "e2e run -c ID -- COMMAND"}},
		{"send-file without DST", []string{"send-file", "-c", "taken", "/etc/hostname"}, []string{"send-file needs DST: e2e send-file [flags] SRC DST"}},
		{"download without arguments", []string{"download", "-c", "taken", "--node", "master_0"}, []string{"download needs SRC and DST"}},
		{"missing cluster file", []string{"create", "--config", missing}, []string{"--config: no such file: " + missing}},
		{"missing SSH key", []string{"create", "--backend", "test", "--ssh-key", missing}, []string{"--ssh-key: no such file: " + missing}},
		{"directory as a file", []string{"create", "--backend", "test", "--known-hosts", dir}, []string{"--known-hosts: " + dir + " is a directory, not a file"}},
		{"missing installer", []string{"install", "-c", "taken", "--installer", missing}, []string{"--installer: no such file: " + missing}},
		{"reap-with-pid 0", []string{"create", "--backend", "test", "-o", s.dirOpt(), "--reap-with-pid", "0"}, []string{"--reap-with-pid 0 is not a process id", "give the id of a running process"}},
		{"reap-with-pid negative", []string{"create", "--backend", "test", "-o", s.dirOpt(), "--reap-with-pid=-5"}, []string{"--reap-with-pid -5 is not a process id"}},
		{"reap-with-pid negative, short-flag form", []string{"create", "--backend", "test", "-o", s.dirOpt(), "--reap-with-pid", "-5"}, []string{"--reap-with-pid -5: a negative number means nothing here", "e2e create --help"}},
		{"masters negative", []string{"create", "--backend", "test", "-o", s.dirOpt(), "--masters", "-2"}, []string{"--masters -2: a negative number means nothing here"}},
		{"web port negative", []string{"web", "-c", "taken", "--port", "-1"}, []string{"--port -1: a negative number means nothing here", "e2e web --help"}},
		{"port-forward with a bind address", []string{"port-forward", "-c", "taken", "1.2.3.4:80:80"}, []string{`port "1.2.3.4:80:80": a bind address is not supported`, "give [LOCAL:]REMOTE"}},
		{"port-forward with a local port twice", []string{"port-forward", "-c", "taken", "8080:80", "8080:81"}, []string{"local port 8080 is given twice (8080:80 and 8080:81)"}},
		{"port-forward without a port", []string{"port-forward", "-c", "taken"}, []string{"e2e port-forward [flags] [LOCAL:]REMOTE ..."}},
		{"missing genconf directory", []string{"install", "-c", "taken", "--installer-url", "http://127.0.0.1:1/x", "--genconf-dir", missing}, []string{"--genconf-dir: no such directory: " + missing}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.e2e(tc.args...)
			expectCode(t, r, 2)
			oneErrorLine(t, r, tc.fragments...)
			for _, leak := range []string{"missing flags", "expected", "stat ", "<command>", "STRING", "can't"} {
				if strings.Contains(r.Stderr, leak) {
					t.Errorf("stderr has parser wording %q:\n%s", leak, r.Stderr)
				}
			}
			if r.Stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.Stdout)
			}
			if got := s.clusterDirs(); len(got) != 1 || got[0] != "taken" {
				t.Errorf("backend holds %v, want only the earlier cluster", got)
			}
		})
	}
	// Flags that take several values still do.
	r := s.e2e("run", "-c", "taken", "--node", "master_0", "--node", "agent_0", "--", "true")
	if strings.Contains(r.Stderr, "more than once") {
		t.Errorf("a repeatable flag was refused:\n%s", r.Stderr)
	}
}

// TestCommandHelp: a command's help shows its own flags first; the global
// flags (--plugin-dir, -v, --version) come once, after them, under a
// heading of their own.
func TestCommandHelp(t *testing.T) {
	s := newSandbox(t)
	for _, cmd := range []string{"create", "run", "download", "wait", "plugin install"} {
		r := s.e2e(append(strings.Fields(cmd), "--help")...)
		expectCode(t, r, 0)
		own, global, ok := strings.Cut(r.Stdout, "\nGlobal flags:\n")
		if !ok {
			t.Errorf("e2e %s --help has no global flags section:\n%s", cmd, r.Stdout)
			continue
		}
		if !strings.Contains(own, "  -c, --cluster-id") && cmd != "plugin install" {
			t.Errorf("e2e %s --help: its own flags are not before the global ones:\n%s", cmd, r.Stdout)
		}
		for _, f := range []string{"      --plugin-dir=", "  -v, --verbose ", "      --version "} {
			if strings.Contains(own, "\n"+f) || !strings.Contains("\n"+global, "\n"+f) {
				t.Errorf("e2e %s --help: %s is not among the global flags only:\n%s", cmd, f, r.Stdout)
			}
		}
	}
}
