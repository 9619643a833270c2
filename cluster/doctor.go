package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/e2e-tool/e2e/internal/plugin"
)

// Check is one check of Manager.Doctor: what was checked, whether it
// passed, what was found and, when it failed, how to fix it.
type Check struct {
	// Backend is the backend whose check this is; empty for e2e's own.
	Backend string `json:"backend,omitempty"`
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	// Detail is what was found; never a secret.
	Detail string `json:"detail,omitempty"`
	// Fix says what to do when the check failed.
	Fix string `json:"fix,omitempty"`
}

// DoctorOptions choose what Manager.Doctor checks.
type DoctorOptions struct {
	// Backend limits the backend checks to one backend; empty means every
	// plugin discovery uses.
	Backend string
	// Options are the backend options its checks use (with Backend only),
	// as for Create: -o image=NAME checks that image.
	Options map[string]any
	// ClusterID, when set, adds the clock skew between this machine and
	// each running node of that cluster.
	ClusterID string
}

// MaxClockSkew is the clock difference between this machine and a node
// above which Doctor's clock check fails. DC/OS's own checks fail on
// unsynchronised clocks, and TLS and token expiry go wrong long before a
// skew is visible to a person.
const MaxClockSkew = time.Second

// Doctor runs e2e's own checks (the state directory, the OpenSSH client,
// each plugin starting) and the checks of every backend that has some
// (sdk.Doctor), and, with opts.ClusterID, the clock skew of that cluster's
// nodes. It returns every check, passed or not; the error is for input
// that is wrong (an unknown backend or cluster: an *InvalidError), not
// for failed checks.
func (m *Manager) Doctor(ctx context.Context, opts DoctorOptions) ([]Check, error) {
	if opts.ClusterID != "" {
		// An unknown cluster is said before anything is checked.
		if _, err := m.load(opts.ClusterID); err != nil {
			return nil, err
		}
	}
	checks := []Check{m.stateCheck(), sshClientCheck(ctx)}
	cands, err := m.usedPlugins(opts.Backend)
	if err != nil {
		return nil, err
	}
	if len(cands) == 0 {
		checks = append(checks, Check{Name: "backend plugins found", Detail: "none in " + m.PluginDirs(),
			Fix: "run make build in the e2e source tree, or e2e plugin install PATH"})
	}
	optsJSON, err := json.Marshal(opts.Options)
	if err != nil {
		return nil, &InvalidError{Err: fmt.Errorf("backend options: %w", err)}
	}
	if opts.Options == nil {
		optsJSON = nil
	}
	// Plugins are checked in parallel: each may wait on its own world.
	per := make([][]Check, len(cands))
	errs := make([]error, len(cands))
	var wg sync.WaitGroup
	for i, c := range cands {
		wg.Add(1)
		go func() {
			defer wg.Done()
			per[i], errs[i] = m.backendChecks(ctx, c, optsJSON)
		}()
	}
	wg.Wait()
	for i := range cands {
		if errs[i] != nil {
			return nil, errs[i]
		}
		checks = append(checks, per[i]...)
	}
	if opts.ClusterID != "" {
		skew, err := m.clockChecks(ctx, opts.ClusterID)
		if err != nil {
			return nil, err
		}
		checks = append(checks, skew...)
	}
	return checks, nil
}

// stateCheck checks that the state directory can be written.
func (m *Manager) stateCheck() Check {
	c := Check{Name: "state directory writable"}
	dir := m.store.Root()
	f, err := os.CreateTemp(dir, ".doctor-")
	if err != nil {
		c.Detail = err.Error()
		c.Fix = "make " + dir + " writable, or set E2E_HOME to a directory you can write"
		return c
	}
	f.Close()
	os.Remove(f.Name())
	c.OK, c.Detail = true, dir
	return c
}

// sshClientCheck looks for OpenSSH's ssh, which plain OpenSSH access to
// the nodes and ProxyCommand scripts use (e2e's own commands speak SSH
// themselves).
func sshClientCheck(ctx context.Context) Check {
	c := Check{Name: "OpenSSH client"}
	path, err := exec.LookPath("ssh")
	if err != nil {
		c.Detail = "ssh is not in $PATH"
		c.Fix = "install OpenSSH's client (apt-get install openssh-client); e2e ssh and e2e run work without it, plain ssh to the nodes does not"
		return c
	}
	c.OK, c.Detail = true, path
	if out, err := exec.CommandContext(ctx, path, "-V").CombinedOutput(); err == nil {
		c.Detail += " (" + strings.TrimSpace(string(out)) + ")"
	}
	return c
}

// backendChecks starts a plugin and asks it for its checks. A plugin
// that does not start is a failed check; an option it refuses is the
// user's mistake (an *InvalidError).
func (m *Manager) backendChecks(ctx context.Context, c plugin.Candidate, optsJSON []byte) ([]Check, error) {
	start := Check{Backend: c.Name, Name: "plugin starts"}
	p, err := m.host.Launch(ctx, c)
	if err != nil {
		start.Detail = fmt.Sprintf("%s: %s", c.Path, strings.ReplaceAll(err.Error(), "\n", " "))
		start.Fix = "rebuild or reinstall it (e2e plugin install PATH --force), or remove it from the plugin path"
		return []Check{start}, nil
	}
	defer p.Kill()
	start.OK = true
	start.Detail = fmt.Sprintf("%s %s (protocol %d) at %s", p.Desc.Name, p.Desc.Version, p.Desc.Protocol, c.Path)
	if !p.Desc.Calls.Doctor {
		start.Detail += "; the backend has no checks of its own"
		return []Check{start}, nil
	}
	got, err := p.Doctor(ctx, optsJSON)
	if inv := sdkInvalid(err, c.Name); inv != nil {
		return nil, inv
	}
	if err = p.Wrap("doctor", err); err != nil {
		start.OK, start.Detail, start.Fix = false, err.Error(), "run e2e -vv doctor --backend "+c.Name+" to see the plugin's logs"
		return []Check{start}, nil
	}
	out := []Check{start}
	for _, g := range got {
		out = append(out, Check{Backend: c.Name, Name: g.Name, OK: g.OK, Detail: g.Detail, Fix: g.Fix})
	}
	return out, nil
}

// clockChecks measures, on each running node of a cluster, how far its
// clock is from this machine's: the node's time against the middle of the
// round trip that read it, give or take half that round trip.
func (m *Manager) clockChecks(ctx context.Context, id string) ([]Check, error) {
	cl, err := m.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	out := make([]Check, len(cl.Nodes))
	var wg sync.WaitGroup
	for i, n := range cl.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = clockCheck(ctx, n)
		}()
	}
	wg.Wait()
	return out, nil
}

func clockCheck(ctx context.Context, n Node) Check {
	c := Check{Name: "clock of " + n.ID() + " in cluster " + n.cluster.ID}
	if !n.State.Running() {
		c.OK, c.Detail = true, "not checked: the node is "+string(n.State)
		return c
	}
	// The first command opens the connection; the second is timed.
	out, err := n.Output(ctx, "true")
	var before, after time.Time
	if err == nil {
		before = time.Now()
		out, err = n.Output(ctx, "date", "+%s.%N")
		after = time.Now()
	}
	if err != nil {
		c.Detail, c.Fix = oneLineErr(err), "check that the node answers: e2e run -c "+n.cluster.ID+" --node "+n.ID()+" -- date"
		return c
	}
	secs, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		c.Detail, c.Fix = fmt.Sprintf("date printed %q", strings.TrimSpace(string(out))), "the node needs GNU date (coreutils)"
		return c
	}
	mid := before.Add(after.Sub(before) / 2)
	whole, frac := math.Modf(secs)
	skew := time.Unix(int64(whole), int64(frac*1e9)).Sub(mid)
	rtt := after.Sub(before)
	c.Detail = fmt.Sprintf("%s from this machine's (read in %s)", signed(skew), rtt.Round(time.Millisecond))
	// The node read its clock somewhere within the round trip.
	if skew.Abs() <= MaxClockSkew+rtt/2 {
		c.OK = true
		return c
	}
	c.Fix = "synchronise the clocks: timedatectl set-ntp true (or chronyd) on this machine and on the nodes " +
		"(DC/OS's checks fail with clock sync errors until they agree)"
	return c
}

func signed(d time.Duration) string {
	d = d.Round(time.Millisecond)
	if d >= 0 {
		return "+" + d.String()
	}
	return d.String()
}

func oneLineErr(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }
