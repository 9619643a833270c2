package main

import (
	"fmt"
	"time"

	"github.com/e2e-tool/e2e/cluster"
)

// destroyExpired is `e2e destroy --expired`: every cluster of this
// E2E_HOME (of any, with --any-home) whose lifespan has passed goes; their
// ids go to stdout.
func destroyExpired(e *env, opts cluster.ExpiredOptions) error {
	e.now("destroying expired clusters")
	done, err := e.manager.DestroyExpired(e.ctx, opts)
	for _, x := range done {
		e.say("destroyed %s (backend %s, expired %s)", x.ID, x.Backend, x.ExpiresAt.Local().Format(time.DateTime))
		fmt.Fprintln(e.stdout, x.ID)
	}
	if err != nil {
		return err
	}
	if len(done) == 0 {
		e.say("no expired clusters")
	}
	return nil
}

// ageColumn is how long ago a cluster was made, as `e2e list` shows it.
func ageColumn(created, now time.Time) string {
	if created.IsZero() {
		return "-"
	}
	return shortDuration(now.Sub(created))
}

// expiresColumn says when a cluster's lifespan ends: "in 47m", "expired
// 5m ago", or "-" when it has none.
func expiresColumn(expires, now time.Time) string {
	switch {
	case expires.IsZero():
		return "-"
	case expires.After(now):
		return "in " + shortDuration(expires.Sub(now))
	}
	return "expired " + shortDuration(now.Sub(expires)) + " ago"
}

// shortDuration rounds d for a table: 45s, 12m, 5h07m, 3d04h.
func shortDuration(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}
