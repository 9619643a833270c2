package main

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestJSONOutput: every command that prints results prints JSON with
// --json that parses, holding what the command is about (through the
// real binary and the test backend; run --json on real nodes is in
// TestOutputOnDocker).
func TestJSONOutput(t *testing.T) {
	s := newSandbox(t)
	s.extra = append(s.extra, "E2E_TEST_BACKEND_DIR="+s.machine) // where its clean looks
	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		check func(t *testing.T, v any)
	}{
		{"create", []string{"create", "--backend", "test", "-o", s.dirOpt(), "-c", "js", "--agents", "2", "--json"}, 0, func(t *testing.T, v any) {
			m := v.(map[string]any)
			if m["id"] != "js" || len(m["nodes"].([]any)) != 4 {
				t.Errorf("create --json = %v, want cluster js with 4 nodes", m)
			}
		}},
		{"list", []string{"list", "--json"}, 0, func(t *testing.T, v any) {
			rows := v.([]any)
			if len(rows) != 1 || rows[0].(map[string]any)["id"] != "js" {
				t.Errorf("list --json = %v, want cluster js", rows)
			}
		}},
		{"inspect", []string{"inspect", "-c", "js", "--json"}, 0, func(t *testing.T, v any) {
			if v.(map[string]any)["backend"] != "test" {
				t.Errorf("inspect --json = %v", v)
			}
		}},
		{"plugin list", []string{"plugin", "list", "--json"}, 0, func(t *testing.T, v any) {
			var names []string
			for _, p := range v.([]any) {
				names = append(names, p.(map[string]any)["name"].(string))
			}
			if !slices.Contains(names, "test") || !slices.Contains(names, "docker") {
				t.Errorf("plugin list --json names %v", names)
			}
		}},
		{"plugin info", []string{"plugin", "info", "test", "--json"}, 0, func(t *testing.T, v any) {
			if v.(map[string]any)["name"] != "test" || len(v.(map[string]any)["options"].([]any)) == 0 {
				t.Errorf("plugin info --json = %v", v)
			}
		}},
		{"version", []string{"version", "--json"}, 0, func(t *testing.T, v any) {
			if v.(map[string]any)["version"] != "9.9.9-test" {
				t.Errorf("version --json = %v", v)
			}
		}},
		{"doctor", []string{"doctor", "--backend", "test", "--json"}, -1, func(t *testing.T, v any) {
			checks := v.(map[string]any)["checks"].([]any)
			found := false
			for _, c := range checks {
				c := c.(map[string]any)
				found = found || (c["backend"] == "test" && c["name"] == "plugin starts" && c["ok"] == true)
			}
			if !found {
				t.Errorf("doctor --json has no passed check of the test plugin: %v", checks)
			}
		}},
		{"clean", []string{"clean", "--dry-run", "--backend", "test", "--json"}, 0, func(t *testing.T, v any) {
			if _, ok := v.([]any); !ok {
				t.Errorf("clean --json = %v, want an array", v)
			}
		}},
		{"destroy", []string{"destroy", "-c", "js", "--json"}, 0, func(t *testing.T, v any) {
			if ids := v.([]any); len(ids) != 1 || ids[0] != "js" {
				t.Errorf("destroy --json = %v, want [js]", v)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.e2e(tc.args...)
			if tc.code >= 0 {
				expectCode(t, r, tc.code)
			}
			var v any
			if err := json.Unmarshal([]byte(r.Stdout), &v); err != nil {
				t.Fatalf("%v: stdout is not JSON: %v\n%s\nstderr: %s", tc.args, err, r.Stdout, r.Stderr)
			}
			tc.check(t, v)
		})
	}
}

// TestQuiet: -q leaves results on stdout and errors on stderr, and says
// nothing else.
func TestQuiet(t *testing.T) {
	s := newSandbox(t)
	r := s.e2e("-q", "create", "--backend", "test", "-o", s.dirOpt(), "-o", "two_steps=true", "-c", "hush", "--agents", "2")
	expectCode(t, r, 0)
	if strings.TrimSpace(r.Stdout) != "hush" || r.Stderr != "" {
		t.Errorf("-q create: stdout %q, stderr %q; want the id and nothing on stderr", r.Stdout, r.Stderr)
	}
	r = s.e2e("-q", "destroy", "-c", "hush")
	expectCode(t, r, 0)
	if strings.TrimSpace(r.Stdout) != "hush" || r.Stderr != "" {
		t.Errorf("-q destroy: stdout %q, stderr %q", r.Stdout, r.Stderr)
	}
	r = s.e2e("--quiet", "inspect", "-c", "hush")
	expectCode(t, r, 2)
	oneErrorLine(t, r, "hush")
	r = s.e2e("-q", "-v", "list")
	expectCode(t, r, 2)
	oneErrorLine(t, r, "-q and -v")
}

// complete runs the bash completion function of `e2e completion bash` on
// the command line line (the cursor at its end) and returns the
// candidates it offers.
func (s *sandbox) complete(t *testing.T, line string) []string {
	t.Helper()
	script := `source <("$E2E" completion bash) || exit 9
COMP_LINE="$LINE"; COMP_POINT=${#COMP_LINE}
read -ra COMP_WORDS <<<"$LINE"; COMP_WORDS[0]="$E2E"
[[ "$LINE" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
_e2e_complete
printf '%s\n' "${COMPREPLY[@]}"`
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(s.env(), "E2E="+built.e2e, "LINE="+line)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("completing %q: %v\n%s", line, err, out)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			got = append(got, l)
		}
	}
	return got
}

// TestCompletionBash: the bash script loads and completes commands,
// flags, backend names, option names, cluster ids and node references.
func TestCompletionBash(t *testing.T) {
	s := newSandbox(t)
	for _, id := range []string{"alpha", "beta"} {
		r := s.e2e("create", "--backend", "test", "-o", s.dirOpt(), "-c", id, "--agents", "2")
		expectCode(t, r, 0)
	}
	pd := "--plugin-dir " + built.pluginDir
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"e2e ins", []string{"inspect", "install"}},
		{"e2e plugin ", []string{"list", "info", "install", "remove"}},
		{"e2e run --no", []string{"--node", "--no-tty"}},
		{"e2e inspect -c ", []string{"alpha", "beta"}},
		{"e2e inspect --cluster-id=al", []string{"alpha"}},
		{"e2e run -c beta --node ", []string{"master_0", "agent_0", "agent_1", "public_agent_0"}},
		{"e2e run -c beta --node agent_", []string{"agent_0", "agent_1"}},
		{"e2e send-file --role ", []string{"master", "agent", "public_agent"}},
		{"e2e " + pd + " create --backend ", []string{"docker", "future", "test"}},
		{"e2e " + pd + " plugin info te", []string{"test"}},
		{"e2e " + pd + " create --backend test -o mem", []string{"memory="}},
		{"e2e completion ", []string{"bash", "zsh", "fish"}},
	} {
		t.Run(tc.line, func(t *testing.T) {
			got := s.complete(t, tc.line)
			if !slices.Equal(got, tc.want) {
				t.Errorf("completing %q = %q, want %q", tc.line, got, tc.want)
			}
		})
	}
}

// TestCompletionScripts: each shell's script calls the hidden complete
// command, and an unknown shell is refused.
func TestCompletionScripts(t *testing.T) {
	s := newSandbox(t)
	for _, shell := range []string{"bash", "zsh", "fish"} {
		r := s.e2e("completion", shell)
		expectCode(t, r, 0)
		if !strings.Contains(r.Stdout, "__complete") {
			t.Errorf("e2e completion %s does not call __complete:\n%s", shell, r.Stdout)
		}
	}
	r := s.e2e("completion", "tcsh")
	expectCode(t, r, 2)
	oneErrorLine(t, r, "tcsh")
}
