package ssh

import (
	"strings"
	"testing"
)

func TestRemoteLine(t *testing.T) {
	const id = "ID"
	for _, tc := range []struct {
		name  string
		cmd   Cmd
		login string
		want  string
	}{
		{"argv", Cmd{Argv: []string{"echo", "a b"}}, "root", `env 'E2E_RUN_ID=ID' echo 'a b'`},
		{"env sorted", Cmd{Argv: []string{"true"}, Env: map[string]string{"B": "2", "A": "1 1"}}, "root",
			`env 'E2E_RUN_ID=ID' 'A=1 1' 'B=2' true`},
		{"shell", Cmd{Shell: "echo $HOME | wc"}, "root", `env 'E2E_RUN_ID=ID' "${SHELL:-/bin/sh}" -c 'echo $HOME | wc'`},
		{"sudo as root is a no-op", Cmd{Argv: []string{"id"}, Sudo: true}, "root", `env 'E2E_RUN_ID=ID' id`},
		{"sudo", Cmd{Argv: []string{"id"}, Sudo: true}, "centos", `sudo -n -H -- env 'E2E_RUN_ID=ID' id`},
		{"user", Cmd{Argv: []string{"id"}, User: "nobody"}, "root", `sudo -n -H -u nobody -- env 'E2E_RUN_ID=ID' id`},
		{"same user", Cmd{Argv: []string{"id"}, User: "centos"}, "centos", `env 'E2E_RUN_ID=ID' id`},
		{"user with env and shell", Cmd{Shell: "id", User: "a b", Env: map[string]string{"K": "v"}}, "root",
			`sudo -n -H -u 'a b' -- env 'E2E_RUN_ID=ID' 'K=v' "${SHELL:-/bin/sh}" -c id`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cmd.Line(tc.login, id)
			if err != nil || got != tc.want {
				t.Errorf("got %s (%v)\nwant %s", got, err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name string
		cmd  Cmd
		want string
	}{
		{"nothing", Cmd{}, "no command"},
		{"both", Cmd{Argv: []string{"a"}, Shell: "b"}, "both"},
		{"bad env name", Cmd{Argv: []string{"a"}, Env: map[string]string{"A B": "1"}}, `"A B"`},
		{"env name with digit first", Cmd{Argv: []string{"a"}, Env: map[string]string{"1A": "1"}}, `"1A"`},
		{"NUL in an argument", Cmd{Argv: []string{"a\x00b"}}, "NUL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.cmd.Line("root", id); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %s", err, tc.want)
			}
		})
	}
}
