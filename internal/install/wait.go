package install

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/e2e-tool/e2e/sdk"
)

// Wait polls a cluster until it is ready.
type Wait struct {
	Timeout        time.Duration
	SkipHTTPChecks bool
	// Superuser credentials log in to DC/OS Enterprise before the HTTP
	// checks, as wait_for_dcos_ee did.
	SuperuserUsername string
	SuperuserPassword string
	// Interval between polls; default 2 s.
	Interval time.Duration
	Events   Events
}

func (w Wait) event(step, node, msg string) {
	if w.Events != nil {
		w.Events(step, node, msg)
	}
}

// TimeoutError says which check did not pass in time and why.
type TimeoutError struct {
	Check string
	Node  string
	After time.Duration
	Last  string
}

func (e *TimeoutError) Error() string {
	node := ""
	if e.Node != "" {
		node = " on " + e.Node
	}
	return fmt.Sprintf("timed out after %s waiting for %s%s; last result: %s", e.After, e.Check, node, e.Last)
}

// checkRunner is dcos-check-runner with the fallbacks of older DC/OS
// releases, as DC/OS E2E polled them.
const checkRunner = `if [ -f /opt/mesosphere/environment.export ]; then . /opt/mesosphere/environment.export; fi
if [ -x /opt/mesosphere/bin/dcos-check-runner ]; then exec /opt/mesosphere/bin/dcos-check-runner check node-poststart
elif [ -x /opt/mesosphere/bin/dcos-diagnostics ]; then exec /opt/mesosphere/bin/dcos-diagnostics check node-poststart
elif [ -x /opt/mesosphere/bin/3dt ]; then exec /opt/mesosphere/bin/3dt --diag
else echo "no DC/OS check runner in /opt/mesosphere/bin: is DC/OS installed?"; exit 1; fi`

// poll calls check until it returns nil, ctx ends or the deadline passes.
func (w Wait) poll(ctx context.Context, deadline time.Time, start time.Time, name, node string, check func(ctx context.Context) error) error {
	interval := w.Interval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	_, err := backoff.Retry(ctx, func() (struct{}, error) { return struct{}{}, check(ctx) },
		backoff.WithBackOff(backoff.NewConstantBackOff(interval)),
		// Stops when the next try would be past the deadline (0 would mean
		// no limit).
		backoff.WithMaxElapsedTime(max(time.Until(deadline), time.Nanosecond)))
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return &TimeoutError{Check: name, Node: node, After: time.Since(start).Round(time.Second), Last: err.Error()}
}

// DCOS waits for DC/OS: the check runner's node-poststart checks on every
// master, then the HTTP endpoints DC/OS E2E polled, reached through each
// master's SSH connection.
func (w Wait) DCOS(ctx context.Context, nodes []Target) error {
	masters := byRole(nodes, sdk.RoleMaster)
	if len(masters) == 0 {
		return ErrNoMaster
	}
	start := time.Now()
	deadline := start.Add(w.timeout())
	w.event("wait for the node-poststart checks", "", "")
	if err := parallel(ctx, masters, func(ctx context.Context, m Target) error {
		return w.poll(ctx, deadline, start, "dcos-check-runner check node-poststart", m.ID(), func(ctx context.Context) error {
			return succeeds(ctx, m, checkRunner)
		})
	}); err != nil {
		return err
	}
	if w.SkipHTTPChecks {
		return nil
	}
	agents := len(byRole(nodes, sdk.RoleAgent, sdk.RolePublicAgent))
	w.event("wait for the HTTP endpoints", "", "")
	return parallel(ctx, masters, func(ctx context.Context, m Target) error {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DialContext: m.DialContext, DisableKeepAlives: true,
		}}
		base := "http://" + net.JoinHostPort(m.Address(), "80")
		var token string
		if w.SuperuserUsername != "" {
			if err := w.poll(ctx, deadline, start, "the superuser login", m.ID(), func(ctx context.Context) error {
				t, err := login(ctx, client, base, w.SuperuserUsername, w.SuperuserPassword)
				token = t
				return err
			}); err != nil {
				return err
			}
		}
		checks := []struct {
			name string
			path string
			ok   func(body []byte) error
		}{
			{"the DC/OS UI (/)", "/", nil},
			{"Marathon (/marathon/v2/info)", "/marathon/v2/info", nil},
			{"Exhibitor (/exhibitor/exhibitor/v1/cluster/status)", "/exhibitor/exhibitor/v1/cluster/status", exhibitorServing},
			{"the Mesos agents (/mesos/slaves)", "/mesos/slaves", agentsRegistered(agents)},
		}
		for _, c := range checks {
			if err := w.poll(ctx, deadline, start, c.name, m.ID(), func(ctx context.Context) error {
				return get(ctx, client, base+c.path, token, c.ok)
			}); err != nil {
				return err
			}
		}
		return nil
	})
}

func (w Wait) timeout() time.Duration {
	if w.Timeout <= 0 {
		return time.Hour
	}
	return w.Timeout
}

// Command polls until shell succeeds on every node given.
func (w Wait) Command(ctx context.Context, nodes []Target, shell string) error {
	start := time.Now()
	deadline := start.Add(w.timeout())
	w.event("wait for the command", "", shell)
	return parallel(ctx, nodes, func(ctx context.Context, n Target) error {
		return w.poll(ctx, deadline, start, fmt.Sprintf("%q to succeed", shell), n.ID(), func(ctx context.Context) error {
			return succeeds(ctx, n, shell)
		})
	})
}

// succeeds runs shell on n once; a non-zero exit is an error carrying the
// last line of its output.
func succeeds(ctx context.Context, n Target, shell string) error {
	var out bytes.Buffer
	w := oneWriter(&out)
	code, err := n.Exec(ctx, shell, nil, w, w)
	if err != nil {
		return err
	}
	if code != 0 {
		if last := lastLine(out.String()); last != "" {
			return fmt.Errorf("exited %d; last output line: %q", code, last)
		}
		return fmt.Errorf("exited %d with no output", code)
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func get(ctx context.Context, client *http.Client, url, token string, ok func([]byte) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "token="+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d from %s", resp.StatusCode, url)
	}
	if ok != nil {
		return ok(body)
	}
	return nil
}

func login(ctx context.Context, client *http.Client, base, user, password string) (string, error) {
	body, _ := json.Marshal(map[string]string{"uid": user, "password": password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/acs/api/v1/auth/login", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("login as %s: HTTP %d", user, resp.StatusCode)
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Token == "" {
		return "", errors.New("login answered without a token")
	}
	return out.Token, nil
}

func exhibitorServing(body []byte) error {
	var servers []struct {
		Hostname    string `json:"hostname"`
		Description string `json:"description"`
	}
	if err := json.Unmarshal(body, &servers); err != nil {
		return fmt.Errorf("exhibitor status is not JSON: %w", err)
	}
	if len(servers) == 0 {
		return errors.New("exhibitor lists no servers")
	}
	for _, s := range servers {
		if s.Description != "serving" {
			return fmt.Errorf("exhibitor server %s is %q, not serving", s.Hostname, s.Description)
		}
	}
	return nil
}

func agentsRegistered(want int) func([]byte) error {
	return func(body []byte) error {
		var state struct {
			Slaves []json.RawMessage `json:"slaves"`
		}
		if err := json.Unmarshal(body, &state); err != nil {
			return fmt.Errorf("mesos /slaves is not JSON: %w", err)
		}
		if len(state.Slaves) < want {
			return fmt.Errorf("%d of %d agents registered with Mesos", len(state.Slaves), want)
		}
		return nil
	}
}
