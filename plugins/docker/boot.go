package main

// Waiting until systemd has booted a node, after Create and Start.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/docker/client"
	"github.com/e2e-tool/e2e/sdk"
)

// bootTimeout bounds the wait for systemd to finish booting a node.
const bootTimeout = 2 * time.Minute

// bootScript waits until systemd has finished booting and prints its
// state. systemctl cannot connect until systemd has made its private
// socket, a moment after the container starts; until then the script only
// looks for the socket, which costs next to nothing.
const bootScript = `i=0
while [ $i -lt 6000 ]; do
  if [ -S /run/systemd/private ]; then
    s=$(systemctl is-system-running --wait 2>/dev/null)
    case "$s" in
    running) echo running; exit 0 ;;
    degraded)
      echo degraded
      systemctl is-active multi-user.target
      systemctl --failed --plain --no-legend --no-pager | awk '{print $1}' | tr '\n' ' '
      exit 0 ;;
    maintenance|stopping) echo "$s"; exit 1 ;;
    esac
  fi
  i=$((i+1))
  sleep 0.02
done
echo "$s"
exit 1
`

// waitBooted waits, bounded, until systemd on a node is running (or
// degraded, with multi-user.target active).
func waitBooted(ctx context.Context, cli *client.Client, id, name string, r sdk.Reporter) error {
	ctx, cancel := context.WithTimeout(ctx, bootTimeout)
	defer cancel()
	var out bytes.Buffer
	code, err := execIn(ctx, cli, id, execSpec{argv: []string{"sh", "-c", bootScript}, stdout: &out, stderr: io.Discard})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return fmt.Errorf("%s: systemd did not finish booting within %s (see `docker logs %s`)", name, bootTimeout, name)
		}
		return fmt.Errorf("waiting for %s to boot: %w", name, err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	state := lines[0]
	if code != 0 {
		return fmt.Errorf("%s: systemd did not boot (state %q; see `docker logs %s`)", name, state, name)
	}
	if state == "degraded" {
		if len(lines) < 2 || lines[1] != "active" {
			return fmt.Errorf("%s: systemd is degraded and multi-user.target is not active (see `docker logs %s`)", name, name)
		}
		failed := ""
		if len(lines) > 2 {
			failed = strings.TrimSpace(lines[2])
		}
		r.Warnf("%s: systemd is degraded (failed units: %s); multi-user.target is active", name, failed)
	}
	return nil
}
