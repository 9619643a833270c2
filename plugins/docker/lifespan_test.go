package main

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
)

// TestLifespan: -o ttl records each cluster's expiry on its containers
// and network, e2e list shows it beside the age, and e2e destroy
// --expired removes this E2E_HOME's cluster whose lifespan has passed
// (also once its record is forgotten), leaving one within its lifespan,
// one without a lifespan and another E2E_HOME's expired one alone, which
// --any-home then removes. A bad ttl is
// refused before anything is made.
func TestLifespan(t *testing.T) {
	cli := needEngine(t)
	s := newSandbox(t)
	one := []string{"--backend", "docker", "--masters", "1", "--agents", "0", "--public-agents", "0"}

	for _, tc := range []struct{ name, value, says string }{
		{"not a duration", "soon", "a duration"},
		{"negative", "-5m", "positive duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := testID(t, "badttl")
			r := s.e2e(append([]string{"create", "-c", id, "-o", "ttl=" + tc.value}, one...)...)
			lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
			if r.Code != 2 || len(lines) != 1 || !strings.Contains(lines[0], `"ttl"`) || !strings.Contains(lines[0], tc.says) {
				t.Errorf("create -o ttl=%s: exit %d, stderr %q; want 2 and one line naming option \"ttl\" and saying %q", tc.value, r.Code, r.Stderr, tc.says)
			}
			if left := leftovers(t, cli, id); len(left) > 0 {
				t.Errorf("a refused ttl left %v", left)
			}
		})
	}

	short, long, none, other := testID(t, "ttl1s"), testID(t, "ttl2h"), testID(t, "nottl"), testID(t, "othhome")
	start := time.Now()
	// Another E2E_HOME's expired cluster (another user's, another test
	// run's on this engine) is not ours to judge without --any-home.
	elsewhere := newSandbox(t)
	elsewhere.mustE2E(append([]string{"create", "-c", other, "-o", "ttl=1s"}, one...)...)
	s.mustE2E(append([]string{"create", "-c", short, "-o", "ttl=1s"}, one...)...)
	s.mustE2E(append([]string{"create", "-c", long, "-o", "ttl=2h"}, one...)...)
	s.mustE2E(append([]string{"create", "-c", none}, one...)...)

	// The expiry is on every container and on the network, as inspect
	// reports it.
	ctx := context.Background()
	for _, tc := range []struct {
		id       string
		ttl      time.Duration
		lifespan bool
	}{{short, time.Second, true}, {long, 2 * time.Hour, true}, {none, 0, false}} {
		var got []string
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: clusterFilter(tc.id, "")})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			got = append(got, c.Labels[labelExpires])
		}
		nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: clusterFilter(tc.id, "")})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nets {
			got = append(got, n.Labels[labelExpires])
		}
		if len(got) != 2 {
			t.Fatalf("cluster %s: %d containers and networks, want 1 of each", tc.id, len(got))
		}
		var c struct {
			ExpiresAt time.Time `json:"expires_at"`
		}
		if err := json.Unmarshal([]byte(s.mustE2E("inspect", "-c", tc.id, "--json")), &c); err != nil {
			t.Fatal(err)
		}
		if !tc.lifespan {
			if got[0] != "" || got[1] != "" || !c.ExpiresAt.IsZero() {
				t.Errorf("cluster %s without ttl: labels %q, inspect expires_at %v; want none", tc.id, got, c.ExpiresAt)
			}
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, got[0])
		if err != nil || got[1] != got[0] || !at.Equal(c.ExpiresAt) {
			t.Errorf("cluster %s: labels %s=%q, inspect expires_at %v; want the same time on container and network", tc.id, labelExpires, got, c.ExpiresAt)
		}
		if at.Before(start.Add(tc.ttl)) || at.After(time.Now().Add(tc.ttl)) {
			t.Errorf("cluster %s expires at %v, want %s after its creation (between %v and now)", tc.id, at, tc.ttl, start)
		}
	}

	time.Sleep(time.Until(start.Add(2 * time.Second))) // the 1s lifespan has passed
	rows := listRows(t, s)
	age := regexp.MustCompile(`^[0-9]+[sm]$`) // made minutes ago at most
	for _, tc := range []struct{ id, expires string }{{short, "expired "}, {long, "in 1h"}, {none, "-"}} {
		f := rows[tc.id]
		if len(f) < 8 || f[5] != "running" || !age.MatchString(f[6]) || !strings.HasPrefix(strings.Join(f[7:], " "), tc.expires) {
			t.Errorf("e2e list row of %s: %v; want running, its age and expires %q...", tc.id, f, tc.expires)
		}
	}

	// Forgotten (no record left), but made from this E2E_HOME: still ours.
	s.mustE2E("forget", "-c", short)
	r := s.e2e("destroy", "--expired")
	if r.Code != 0 || !slices.Equal(strings.Fields(r.Stdout), []string{short}) {
		t.Fatalf("destroy --expired: exit %d, stdout %q; want 0 and only %s\nstderr: %s", r.Code, r.Stdout, short, r.Stderr)
	}
	if left := leftovers(t, cli, other); !slices.Contains(left, "container e2e-"+other+"-master-0") {
		t.Errorf("destroy --expired removed another E2E_HOME's cluster %s: the engine has %v", other, left)
	}
	r = s.e2e("destroy", "--expired", "--any-home")
	if r.Code != 0 || !slices.Equal(strings.Fields(r.Stdout), []string{other}) {
		t.Errorf("destroy --expired --any-home: exit %d, stdout %q; want 0 and only %s\nstderr: %s", r.Code, r.Stdout, other, r.Stderr)
	}
	if left := leftovers(t, cli, other); len(left) > 0 {
		t.Errorf("after --any-home, the other E2E_HOME's expired cluster is still there: %v", left)
	}
	if left := leftovers(t, cli, short); len(left) > 0 {
		t.Errorf("the expired cluster is still there: %v", left)
	}
	rows = listRows(t, s)
	for _, id := range []string{long, none} {
		if f := rows[id]; len(f) < 6 || f[5] != "running" {
			t.Errorf("after destroy --expired, e2e list shows %s as %v, want it running", id, f)
		}
		if left := leftovers(t, cli, id); !slices.Contains(left, "container e2e-"+id+"-master-0") || !slices.Contains(left, "network e2e-"+id) {
			t.Errorf("cluster %s: the engine has %v, want its container and network", id, left)
		}
	}
	if _, ok := rows[short]; ok {
		t.Errorf("e2e list still shows the expired cluster %s", short)
	}
	s.mustE2E("destroy", "-c", long, "-c", none)
}

// listRows returns e2e list's rows by cluster id, split into fields.
func listRows(t *testing.T, s *sandbox) map[string][]string {
	t.Helper()
	out := s.mustE2E("list")
	rows := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		if f := strings.Fields(l); len(f) > 0 {
			rows[f[0]] = f
		}
	}
	return rows
}
