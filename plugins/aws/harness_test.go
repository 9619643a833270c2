package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/e2e-tool/e2e/internal/testbin"
)

// The tests drive the real e2e binary and the real e2e-backend-aws, built
// once into one directory so that e2e finds the plugin beside itself, and
// the docker plugin, which builds the node image the stand-ins boot.
var bins struct {
	dir, e2e, aws, docker, hello string
}

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	// A short directory: go-plugin's unix sockets need short paths.
	dir, err := os.MkdirTemp("", "e2e-aws-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bins.dir = filepath.Join(dir, "bin")
	bins.e2e = filepath.Join(bins.dir, "e2e")
	bins.aws = filepath.Join(bins.dir, "e2e-backend-aws")
	bins.docker = filepath.Join(dir, "docker", "e2e-backend-docker")
	bins.hello = filepath.Join(dir, "hello", "hello")
	for _, b := range []struct{ pkg, out string }{
		{"./cmd/e2e", bins.e2e},
		{"./plugins/aws", bins.aws},
		{"./plugins/docker", bins.docker},
		{"./internal/testbin/hello", bins.hello},
	} {
		if err := testbin.Compile(b.pkg, b.out, "1.0.0-test"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return m.Run()
}

// sandbox is one test's world: its own E2E_HOME and AWS environment, with
// the endpoint of the test's moto (through the fault proxy) and a secret
// key no test ever passes on a command line.
type sandbox struct {
	t      testing.TB
	home   string
	secret string
	env    []string
}

// testSecret is the secret access key of a sandbox: random, so that
// finding it anywhere proves it leaked from here.
func testSecret() string { return "e2eTestSecret" + randomHex(16) }

func newSandbox(t testing.TB, m *moto) *sandbox {
	t.Helper()
	home := t.TempDir()
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := &sandbox{t: t, home: home, secret: testSecret()}
	s.env = []string{
		"PATH=" + pathWithoutPlugins(), "HOME=" + home, "E2E_HOME=" + home, "XDG_DATA_HOME=" + filepath.Join(home, "data"),
		"AWS_ACCESS_KEY_ID=AKIAE2ETESTKEY000001", "AWS_SECRET_ACCESS_KEY=" + s.secret, "AWS_REGION=" + testRegion,
		"AWS_ENDPOINT_URL_EC2=" + m.Proxy, "AWS_EC2_METADATA_DISABLED=true",
		// Nothing of the developer's own AWS setup.
		"AWS_CONFIG_FILE=" + empty, "AWS_SHARED_CREDENTIALS_FILE=" + empty,
	}
	return s
}

// pathWithoutPlugins is $PATH without directories that hold e2e plugins
// (a developer's bin/), so that e2e finds only the ones built here.
func pathWithoutPlugins() string {
	var keep []string
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if found, _ := filepath.Glob(filepath.Join(dir, "e2e-backend-*")); len(found) == 0 {
			keep = append(keep, dir)
		}
	}
	return strings.Join(keep, string(filepath.ListSeparator))
}

// e2e runs the e2e binary.
func (s *sandbox) e2e(args ...string) testbin.Result {
	s.t.Helper()
	return testbin.Run(s.t, s.env, bins.e2e, args...)
}

func expectCode(t testing.TB, r testbin.Result, code int) {
	t.Helper()
	if r.Code != code {
		t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.Code, code, r.Stdout, r.Stderr)
	}
}

// oneErrorLine checks that stderr ends with exactly one error line, after
// progress lines only, mentioning every fragment.
func oneErrorLine(t testing.TB, r testbin.Result, fragments ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "e2e: ") {
		t.Fatalf("want an error line last on stderr, got:\n%s", r.Stderr)
	}
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "[") && !strings.HasPrefix(l, "e2e: warn") {
			t.Fatalf("want one error line on stderr after progress lines, got:\n%s", r.Stderr)
		}
	}
	for _, f := range fragments {
		if !strings.Contains(last, f) {
			t.Errorf("error %q does not mention %q", last, f)
		}
	}
	if strings.Contains(r.Stderr, "goroutine ") || strings.Contains(r.Stderr, "panic(") {
		t.Errorf("stderr has a stack trace:\n%s", r.Stderr)
	}
}

// debianImage registers an image named as Debian's in moto (which has no
// Debian images) and returns its id.
func debianImage(t testing.TB, m *moto) string {
	t.Helper()
	out, err := m.EC2.RegisterImage(context.Background(), &ec2.RegisterImageInput{
		Name: aws.String("debian-12-amd64-20261130-e2e-test"), RootDeviceName: aws.String("/dev/xvda"),
		Architecture: "x86_64"})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.ImageId)
}
