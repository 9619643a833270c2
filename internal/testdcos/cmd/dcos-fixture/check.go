package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/e2e-tool/e2e/internal/proc"
	"github.com/e2e-tool/e2e/internal/testdcos/internal/layout"
)

// Check statuses, as dcos-check-runner reports them.
const (
	statusOK       = 0
	statusCritical = 2
)

type checkResult struct {
	Status int    `json:"status"`
	Output string `json:"output"`
}

type checkFlags struct {
	role       string
	skipUnit   bool
	host       string
	portOffset int
	configPath string
	timeout    time.Duration
}

// runCheck is dcos-check-runner's `check TYPE`: it prints the real one's
// JSON ({"status": N, "checks": {name: {"status", "output"}}}) on stdout,
// names each failed check on stderr, and exits with the worst status.
func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f checkFlags
	fs.StringVar(&f.role, "role", "", "node role (default: read from "+layout.RolesDir+")")
	fs.BoolVar(&f.skipUnit, "skip-unit", false, "do not require the role's systemd unit to be active (tests)")
	fs.StringVar(&f.host, "host", "127.0.0.1", "address the services answer on")
	fs.IntVar(&f.portOffset, "port-offset", 0, "added to every port, as given to serve")
	fs.StringVar(&f.configPath, "config", layout.NodeConfigFile, "the node config dcos_install.sh wrote")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Second, "timeout of each HTTP request")
	types, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(types) == 0 {
		fmt.Fprintln(stderr, "usage: dcos-check-runner check node-prestart|node-poststart|cluster [--skip-unit]")
		return 2
	}
	for _, t := range types {
		if t != "node-prestart" && t != "node-poststart" && t != "cluster" {
			fmt.Fprintf(stderr, "dcos-check-runner: unknown check type %q: use node-prestart, node-poststart or cluster\n", t)
			return 2
		}
	}

	results := map[string]checkResult{}
	c := &checker{flags: f, results: results, client: &http.Client{Timeout: f.timeout}}
	for _, t := range types {
		c.run(ctx, t)
	}

	worst := statusOK
	var failed []string
	for _, name := range slices.Sorted(maps.Keys(results)) {
		r := results[name]
		if r.Status > worst {
			worst = r.Status
		}
		if r.Status != statusOK {
			failed = append(failed, name+": "+r.Output)
		}
	}
	b, _ := json.MarshalIndent(map[string]any{"status": worst, "checks": results}, "", "  ")
	fmt.Fprintf(stdout, "%s\n", b)
	if len(failed) > 0 {
		fmt.Fprintf(stderr, "%s: %d of %d checks failed:\n  %s\n",
			strings.Join(types, " "), len(failed), len(results), strings.Join(failed, "\n  "))
	}
	return worst
}

type checker struct {
	flags   checkFlags
	results map[string]checkResult
	client  *http.Client
}

func (c *checker) set(name string, err error, okOutput string) {
	if err != nil {
		c.results[name] = checkResult{Status: statusCritical, Output: err.Error()}
		return
	}
	c.results[name] = checkResult{Status: statusOK, Output: okOutput}
}

func (c *checker) run(ctx context.Context, typ string) {
	role, err := c.role()
	c.set("node-role", err, "role "+role)
	cfg, cfgErr := readNodeConfig(c.flags.configPath)
	c.set("node-config", cfgErr, c.flags.configPath+" is readable")
	if err != nil || typ == "node-prestart" {
		return
	}
	if typ == "node-poststart" && !c.flags.skipUnit {
		c.unit(ctx, role)
	}
	if cfgErr != nil {
		return
	}
	if role != "master" {
		c.get(ctx, "mesos-agent", layout.PortMesosAgent, "/state", func(b []byte) error {
			return decodeInto(b, &map[string]any{})
		})
		return
	}
	c.get(ctx, "adminrouter", layout.PortAdminRouter, "/", nil)
	c.get(ctx, "mesos-master", layout.PortMesosMaster, "/version", nil)
	c.get(ctx, "marathon", layout.PortMarathon, "/v2/info", marathonUp)
	c.get(ctx, "marathon-adminrouter", layout.PortAdminRouter, "/marathon/v2/info", marathonUp)
	c.get(ctx, "exhibitor", layout.PortExhibitor, "/exhibitor/v1/cluster/status", zkQuorum(len(cfg.MasterList)))
	c.get(ctx, "exhibitor-adminrouter", layout.PortAdminRouter, "/exhibitor/exhibitor/v1/cluster/status",
		zkQuorum(len(cfg.MasterList)))
	c.get(ctx, "mesos-agents", layout.PortAdminRouter, "/mesos/slaves",
		agentsJoined(len(cfg.AgentList)+len(cfg.PublicAgentList)))
}

// role is --role, else the one role file dcos_install.sh created.
func (c *checker) role() (string, error) {
	if c.flags.role != "" {
		if !layout.ValidRole(c.flags.role) {
			return "", fmt.Errorf("--role %q: must be one of master, slave, slave_public", c.flags.role)
		}
		return c.flags.role, nil
	}
	var found []string
	for _, r := range layout.Roles {
		if _, err := os.Stat(filepath.Join(layout.RolesDir, r)); err == nil {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("cannot determine this node's role: exactly one of master, slave, slave_public "+
			"must be present under %s, found %d", layout.RolesDir, len(found))
	}
	return found[0], nil
}

func (c *checker) unit(ctx context.Context, role string) {
	unit := layout.UnitName(role)
	out, err := proc.Command(ctx, "systemctl", "is-active", unit).Output()
	state := strings.TrimSpace(string(out))
	if err != nil {
		if state == "" {
			state = err.Error()
		}
		c.set("dcos-fixture-unit", fmt.Errorf("%s is not active (%s)", unit, state), "")
		return
	}
	c.set("dcos-fixture-unit", nil, unit+" is "+state)
}

// get requests a service's endpoint and passes the body to verify (nil:
// any 200 will do).
func (c *checker) get(ctx context.Context, name string, port int, path string, verify func([]byte) error) {
	url := "http://" + net.JoinHostPort(c.flags.host, strconv.Itoa(port+c.flags.portOffset)) + path
	err := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := c.client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return fmt.Errorf("GET %s: %w", url, err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		if verify != nil {
			if err := verify(body); err != nil {
				return fmt.Errorf("GET %s: %w", url, err)
			}
		}
		return nil
	}()
	c.set(name, err, "GET "+url+": 200 OK")
}

func decodeInto(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("response is not the expected JSON: %w", err)
	}
	return nil
}

func marathonUp(b []byte) error {
	var info struct {
		Name    string `json:"name"`
		Elected bool   `json:"elected"`
	}
	if err := decodeInto(b, &info); err != nil {
		return err
	}
	if info.Name != "marathon" || !info.Elected {
		return errors.New("marathon has no elected leader")
	}
	return nil
}

func zkQuorum(masters int) func([]byte) error {
	return func(b []byte) error {
		var status []struct {
			Hostname    string `json:"hostname"`
			Description string `json:"description"`
		}
		if err := decodeInto(b, &status); err != nil {
			return err
		}
		serving := 0
		for _, s := range status {
			if s.Description == "serving" {
				serving++
			}
		}
		if serving != masters {
			return fmt.Errorf("ZooKeeper has not formed the expected quorum: %d of %d masters serving", serving, masters)
		}
		return nil
	}
}

func agentsJoined(want int) func([]byte) error {
	return func(b []byte) error {
		var state struct {
			Slaves []json.RawMessage `json:"slaves"`
		}
		if err := decodeInto(b, &state); err != nil {
			return err
		}
		if len(state.Slaves) < want {
			return fmt.Errorf("%d of %d agents have joined", len(state.Slaves), want)
		}
		return nil
	}
}
