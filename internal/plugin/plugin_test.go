package plugin

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	goplugin "github.com/hashicorp/go-plugin"
)

func touch(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
		t.Fatal(err)
	}
}

func TestDiscover(t *testing.T) {
	root := t.TempDir()
	d := Dirs{
		Flag:      []string{filepath.Join(root, "flag")},
		Env:       []string{filepath.Join(root, "env1"), filepath.Join(root, "env2")},
		Installed: filepath.Join(root, "installed"),
		BesideE2E: filepath.Join(root, "beside"),
		Path:      []string{filepath.Join(root, "path1"), filepath.Join(root, "beside"), filepath.Join(root, "path2")},
	}
	touch(t, filepath.Join(root, "flag", "e2e-backend-a"), 0o755)
	touch(t, filepath.Join(root, "env1", "e2e-backend-b"), 0o755)
	touch(t, filepath.Join(root, "env2", "e2e-backend-a"), 0o755)
	touch(t, filepath.Join(root, "env2", "not-a-plugin"), 0o755)
	touch(t, filepath.Join(root, "env2", "e2e-backend-"), 0o755)
	touch(t, filepath.Join(root, "installed", "e2e-backend-c"), 0o755)
	touch(t, filepath.Join(root, "installed", "e2e-backend-stray"), 0o755)
	touch(t, filepath.Join(root, "beside", "e2e-backend-b"), 0o755)
	touch(t, filepath.Join(root, "path1", "e2e-backend-d"), 0o755)
	touch(t, filepath.Join(root, "path2", "e2e-backend-a"), 0o755)
	if err := os.MkdirAll(filepath.Join(root, "beside", "e2e-backend-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	m := Manifest{Plugins: map[string]ManifestEntry{"c": {File: "e2e-backend-c", SHA256: "abcd"}}}
	if err := m.save(d.Installed); err != nil {
		t.Fatal(err)
	}

	cands, err := Discover(d)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cands {
		s := string(c.Source) + ":" + c.Name
		if c.Used {
			s += "*"
		}
		if c.SHA256 != "" {
			s += "#" + c.SHA256
		}
		if c.Problem != "" {
			s += "!"
		}
		got = append(got, s)
	}
	want := []string{
		"--plugin-dir:a*",
		"E2E_PLUGIN_PATH:b*",
		"E2E_PLUGIN_PATH:a",
		"installed:c*#abcd",
		"installed:stray*!",
		"beside e2e:b",
		"PATH:d*",
		"PATH:a",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Discover:\n got %v\nwant %v", got, want)
	}

	_, err = Find(d, "zzz")
	if !errors.Is(err, ErrNoSuchBackend) || !strings.Contains(err.Error(), "available: a, b, c, d, stray") {
		t.Errorf("Find(zzz) = %v", err)
	}
	// It says where it looked, every directory in order.
	for _, dir := range []string{"flag", "env1", "env2", "installed", "beside", "path1", "path2"} {
		if err == nil || !strings.Contains(err.Error(), filepath.Join(root, dir)) {
			t.Errorf("Find(zzz) = %v: does not say it looked in %s", err, dir)
		}
	}
	if c, err := Find(d, "b"); err != nil || c.Source != SourceEnv {
		t.Errorf("Find(b) = %+v, %v", c, err)
	}
}

func TestTail(t *testing.T) {
	tl := newTail(3)
	for _, chunk := range []string{
		"first line\n", "second", " half\n",
		`{"@level":"info","@message":"json message","@module":"x"}` + "\n",
		`{"@level":"error","@message":"recovered","panic":"boom"}` + "\n",
		"\n", "unterminated",
	} {
		_, _ = tl.Write([]byte(chunk))
	}
	got := tl.Last(10)
	// Three complete lines are kept, plus the line still being written.
	want := []string{"second half", "json message", "recovered: boom", "unterminated"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Last = %q, want %q", got, want)
	}
	if got := tl.Last(1); len(got) != 1 || got[0] != "unterminated" {
		t.Errorf("Last(1) = %q", got)
	}
}

func TestStartError(t *testing.T) {
	c := Candidate{Name: "x", Path: "/p/e2e-backend-x"}
	tl := newTail(5)
	_, _ = tl.Write([]byte("last words\n"))
	tests := []struct {
		err  error
		want []string
	}{
		{goplugin.ErrChecksumsDoNotMatch, []string{"changed since it was installed", "sha256", "--force"}},
		{errors.New("incompatible API version with plugin. Plugin version: 3, Client versions: [1]"), []string{"speaks protocol 3", "this e2e speaks protocol 1"}},
		{errors.New("timeout while waiting for plugin to start"), []string{"did not start within 2s", "last words"}},
		{errors.New("Unrecognized remote plugin message: hello\nmore"), []string{"not an e2e backend plugin", `printed "hello"`}},
		{errors.New("plugin exited before we could connect"), []string{"not an e2e backend plugin", "exited before", "last words"}},
		{errors.New("fork/exec /p/e2e-backend-x: exec format error"), []string{"not a program this machine can run"}},
		{errors.New("something else"), []string{`starting plugin "x"`, "something else"}},
	}
	for _, tc := range tests {
		msg := startError(c, tc.err, tl, 2e9).Error()
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("startError(%q) = %q, missing %q", tc.err, msg, w)
			}
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("startError(%q) has several lines: %q", tc.err, msg)
		}
	}
}
