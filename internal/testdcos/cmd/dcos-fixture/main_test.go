package main

import (
	"errors"
	"flag"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNotifyReady(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := notifyReady(sock); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := conn.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:n]); got != "READY=1" {
		t.Errorf("got %q, want READY=1", got)
	}
	if err := notifyReady(""); err != nil {
		t.Errorf("without NOTIFY_SOCKET: %v", err)
	}
}

func TestParseInstallerArgs(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		mode    string
		from    string
		verbose bool
		err     string
	}{
		{nil, "genconf", "", false, ""},
		{[]string{"-v", "--genconf"}, "genconf", "", true, ""},
		{[]string{"--version"}, "version", "", false, ""},
		{[]string{"--generate-node-upgrade-script", "2.1.0", "-v"}, "generate-node-upgrade-script", "2.1.0", true, ""},
		{[]string{"--generate-node-upgrade-script", "-v"}, "generate-node-upgrade-script", "", true, ""},
		{[]string{"--genconf", "--version"}, "", "", false, "argument --version: not allowed with argument --genconf"},
		{[]string{"--genconf", "extra"}, "", "", false, "unrecognized arguments: extra"},
		{[]string{"--port"}, "", "", false, "expected one argument"},
	} {
		a, err := parseInstallerArgs(tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: error %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || a.mode != tc.mode || a.fromVersion != tc.from || a.verbose != tc.verbose {
			t.Errorf("%v: %+v, %v", tc.args, a, err)
		}
	}
	if _, err := parseInstallerArgs([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

func TestHeredocDelim(t *testing.T) {
	if d := heredocDelim("a\nb"); d != "DCOS_FIXTURE_EOF" {
		t.Errorf("got %q", d)
	}
	if d := heredocDelim("x\nDCOS_FIXTURE_EOF\nDCOS_FIXTURE_EOF_1\ny"); d != "DCOS_FIXTURE_EOF_2" {
		t.Errorf("got %q", d)
	}
}

func TestParseInterspersed(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	skip := fs.Bool("skip-unit", false, "")
	role := fs.String("role", "", "")
	pos, err := parseInterspersed(fs, []string{"--role", "master", "node-poststart", "--skip-unit", "cluster", "--", "--role"})
	if err != nil || !*skip || *role != "master" || strings.Join(pos, " ") != "node-poststart cluster --role" {
		t.Errorf("positional %v, skip %v, role %q, err %v", pos, *skip, *role, err)
	}
}
