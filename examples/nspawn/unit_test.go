package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSubnet(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "127.77.0.0/16", want: "127.77.0.0/16"},
		{in: "127.5.6.7/24", want: "127.5.6.0/24"},
		{in: "10.0.0.0/16", err: "inside 127.0.0.0/8"},
		{in: "127.0.0.0/31", err: "room for nodes"},
		{in: "::1/128", err: "inside 127.0.0.0/8"},
		{in: "loopback", err: "not an address prefix"},
	} {
		got, err := parseSubnet(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("parseSubnet(%q): error %v, want one saying %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || got.String() != tc.want):
			t.Errorf("parseSubnet(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestNth(t *testing.T) {
	for _, tc := range []struct {
		subnet string
		i      int
		want   string
	}{
		{"127.77.0.0/16", 1, "127.77.0.1"},
		{"127.77.0.0/16", 256, "127.77.1.0"},
		{"127.77.0.0/16", 65534, "127.77.255.254"},
	} {
		if got := nth(netip.MustParsePrefix(tc.subnet), tc.i); got.String() != tc.want {
			t.Errorf("nth(%s, %d) = %s, want %s", tc.subnet, tc.i, got, tc.want)
		}
	}
}

func TestCheckImage(t *testing.T) {
	good := t.TempDir()
	for _, f := range []string{"usr/lib/systemd/systemd", "usr/sbin/sshd"} {
		if err := os.MkdirAll(filepath.Join(good, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(good, f), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	noSSHD := t.TempDir()
	if err := os.MkdirAll(filepath.Join(noSSHD, "usr/lib/systemd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(noSSHD, "usr/lib/systemd/systemd"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir, err string
	}{
		{dir: good},
		{dir: noSSHD, err: "install openssh-server"},
		{dir: filepath.Join(good, "missing"), err: "build-image"},
		{dir: "relative/dir", err: "not an absolute path"},
	} {
		err := checkImage(tc.dir)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("checkImage(%s): %v", tc.dir, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("checkImage(%s): error %v, want one saying %q", tc.dir, err, tc.err)
		}
	}
}

func TestImageUser(t *testing.T) {
	image := t.TempDir()
	if err := os.MkdirAll(filepath.Join(image, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	passwd := "root:x:0:0:root:/root:/bin/bash\ndcos:x:1000:1001::/home/dcos:/bin/sh\n"
	if err := os.WriteFile(filepath.Join(image, "etc", "passwd"), []byte(passwd), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user, home, err string
		uid, gid        int
	}{
		{user: "root", home: "/root"},
		{user: "dcos", home: "/home/dcos", uid: 1000, gid: 1001},
		{user: "nobody-here", err: `has no user "nobody-here"`},
	} {
		uid, gid, home, err := imageUser(image, tc.user)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("imageUser(%s): error %v, want one saying %q", tc.user, err, tc.err)
		case tc.err == "" && (err != nil || uid != tc.uid || gid != tc.gid || home != tc.home):
			t.Errorf("imageUser(%s) = %d, %d, %s, %v", tc.user, uid, gid, home, err)
		}
	}
}
