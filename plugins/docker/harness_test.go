package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/e2e-tool/e2e/internal/testbin"
)

// The tests drive the real e2e binary and the real e2e-backend-docker,
// built once into one directory so that e2e finds the plugin beside itself.
var (
	binDir    string
	e2eBin    string
	pluginBin string
	// engineErr says why the Docker engine cannot be used; the tests that
	// need it skip, loudly.
	engineErr error
	// imageErr is a failure to find or build the node image.
	imageErr error
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	// A short directory: go-plugin's unix sockets need short paths.
	dir, err := os.MkdirTemp("", "e2e-dk-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	e2eBin = filepath.Join(dir, "e2e")
	pluginBin = filepath.Join(dir, "e2e-backend-docker")
	for _, b := range []struct{ pkg, out string }{
		{"./cmd/e2e", e2eBin},
		{"./plugins/docker", pluginBin},
	} {
		if err := testbin.Compile(b.pkg, b.out, "1.0.0-test"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	engineErr = checkEngine()
	if engineErr != nil {
		fmt.Fprintf(os.Stderr, "\n%s\n!!! NO DOCKER ENGINE: the tests of the docker backend are SKIPPED (they FAIL under CI=true): %v\n%s\n\n",
			strings.Repeat("!", 78), engineErr, strings.Repeat("!", 78))
	} else {
		imageErr = prepareImage()
	}
	return m.Run()
}

func checkEngine() error {
	cli, err := newClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		return fmt.Errorf("engine at %s unreachable: %w", cli.DaemonHost(), err)
	}
	return nil
}

// prepareImage finds the default node image, building it once per machine
// when it is missing, so that no test's timing includes the build.
func prepareImage() error {
	cli, err := newClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	_, err = ensureImage(ctx, cli, "", func(s string) { fmt.Fprintln(os.Stderr, "node image:", s) })
	return err
}

// needEngine skips the test when there is no engine and fails it when the
// node image is unusable; it returns a client closed with the test.
func needEngine(tb testing.TB) *client.Client {
	tb.Helper()
	testbin.Require(tb, "a running Docker engine", engineErr)
	if imageErr != nil {
		tb.Fatalf("node image: %v", imageErr)
	}
	cli, err := newClient()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cli.Close() })
	return cli
}

// testID returns a cluster id unique to this run and test.
func testID(tb testing.TB, purpose string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	id := "t" + hex.EncodeToString(b) + "-" + purpose
	// Whatever the test leaves behind under this id is removed by label.
	tb.Cleanup(func() { removeByIDPrefix(tb, id) })
	return id
}

// removeByIDPrefix removes every container, network and volume whose
// e2e.cluster-id starts with prefix, and their workspaces.
func removeByIDPrefix(tb testing.TB, prefix string) {
	tb.Helper()
	cli, err := newClient()
	if err != nil {
		tb.Error(err)
		return
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ids := map[string]bool{}
	cs, _ := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: clusterFilter("", "")})
	for _, c := range cs {
		ids[c.Labels[labelClusterID]] = true
	}
	ns, _ := cli.NetworkList(ctx, network.ListOptions{Filters: clusterFilter("", "")})
	for _, n := range ns {
		ids[n.Labels[labelClusterID]] = true
	}
	vs, _ := cli.VolumeList(ctx, volume.ListOptions{Filters: clusterFilter("", "")})
	for _, v := range vs.Volumes {
		ids[v.Labels[labelClusterID]] = true
	}
	for id := range ids {
		if strings.HasPrefix(id, prefix) {
			if err := removeCluster(ctx, cli, id, "", nil, nil); err != nil {
				tb.Errorf("cleaning up cluster %s: %v", id, err)
			}
		}
	}
}

// leftovers lists what the engine still has of cluster id, as
// "container NAME" / "network NAME" / "volume NAME".
func leftovers(tb testing.TB, cli *client.Client, id string) []string {
	tb.Helper()
	ctx := context.Background()
	var out []string
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: clusterFilter(id, "")})
	if err != nil {
		tb.Fatal(err)
	}
	for _, c := range cs {
		out = append(out, "container "+strings.TrimPrefix(firstName(c), "/"))
	}
	ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: clusterFilter(id, "")})
	if err != nil {
		tb.Fatal(err)
	}
	for _, n := range ns {
		out = append(out, "network "+n.Name)
	}
	vs, err := cli.VolumeList(ctx, volume.ListOptions{Filters: clusterFilter(id, "")})
	if err != nil {
		tb.Fatal(err)
	}
	for _, v := range vs.Volumes {
		out = append(out, "volume "+v.Name)
	}
	// A container named like a node but without labels would be a bug too.
	byName, err := cli.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		tb.Fatal(err)
	}
	for _, c := range byName {
		if n := strings.TrimPrefix(firstName(c), "/"); strings.HasPrefix(n, "e2e-"+id+"-") && c.Labels[labelClusterID] != id {
			out = append(out, "unlabelled container "+n)
		}
	}
	if _, err := cli.NetworkInspect(ctx, networkName(id), network.InspectOptions{}); err == nil {
		out = append(out, "network "+networkName(id)+" (by name)")
	} else if !cerrdefs.IsNotFound(err) {
		tb.Fatal(err)
	}
	return out
}

// sandbox is one e2e user: its own state and data directories.
type sandbox struct {
	tb   testing.TB
	home string
	tmp  string // TMPDIR, so the workspaces are the test's
}

func newSandbox(tb testing.TB) *sandbox {
	return &sandbox{tb: tb, home: tb.TempDir(), tmp: tb.TempDir()}
}

func (s *sandbox) env() []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + s.home, "E2E_HOME=" + filepath.Join(s.home, "state"),
		"XDG_DATA_HOME=" + filepath.Join(s.home, "data"), "TMPDIR=" + s.tmp,
	}
	for _, k := range []string{"DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "DOCKER_API_VERSION", "DOCKER_CONFIG", "E2E_PLUGIN_LOG_LEVEL"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// e2e runs the e2e binary and returns what it did.
func (s *sandbox) e2e(args ...string) testbin.Result {
	s.tb.Helper()
	return testbin.Run(s.tb, s.env(), e2eBin, args...)
}

// mustE2E runs e2e and fails the test unless it exits 0.
func (s *sandbox) mustE2E(args ...string) string {
	s.tb.Helper()
	r := s.e2e(args...)
	if r.Code != 0 {
		s.tb.Fatalf("e2e %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// inspected is what `e2e inspect --json` prints.
type inspected struct {
	ID      string            `json:"id"`
	UID     string            `json:"uid"`
	Details map[string]string `json:"details"`
	Nodes   []struct {
		Role           string `json:"role"`
		Index          int    `json:"index"`
		Name           string `json:"name"`
		Hostname       string `json:"hostname"`
		PrivateAddress string `json:"private_address"`
		SSH            struct {
			Host string `json:"host"`
			Port int    `json:"port"`
			User string `json:"user"`
		} `json:"ssh"`
	} `json:"nodes"`
}

func (s *sandbox) inspect(id string) inspected {
	s.tb.Helper()
	out := s.mustE2E("inspect", "-c", id, "--json")
	var c inspected
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		s.tb.Fatalf("inspect --json: %v\n%s", err, out)
	}
	return c
}
