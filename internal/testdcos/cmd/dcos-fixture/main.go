// Command dcos-fixture is the one program of e2e's DC/OS contract fixture.
// Inside dcos_generate_config.sh it is the installer (genconf, version,
// node upgrade script); on a node it stands in for the DC/OS services
// (serve) and for dcos-check-runner (check).
//
//	dcos-fixture installer --installer-dir DIR -- [installer options]
//	dcos-fixture serve --role ROLE [--listen-host H] [--port-offset N]
//	dcos-fixture check node-poststart [--role ROLE] [--skip-unit] [--host H] [--port-offset N]
//	dcos-fixture check-runner check node-poststart   (what dcos-check-runner runs)
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage:
  dcos-fixture installer --installer-dir DIR -- [--genconf|--version|--generate-node-upgrade-script VERSION] [-v]
  dcos-fixture serve --role master|slave|slave_public [--listen-host HOST] [--port-offset N]
  dcos-fixture check node-poststart|cluster [--role ROLE] [--skip-unit] [--host HOST] [--port-offset N]
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "installer":
		return runInstaller(ctx, args[1:], stdout, stderr)
	case "serve":
		return runServe(ctx, args[1:], stderr)
	case "check":
		return runCheck(ctx, args[1:], stdout, stderr)
	case "check-runner":
		// /opt/mesosphere/bin/dcos-check-runner: "dcos-check-runner check TYPE".
		if len(args) < 2 || args[1] != "check" {
			fmt.Fprintln(stderr, "usage: dcos-check-runner check node-prestart|node-poststart|cluster")
			return 2
		}
		return runCheck(ctx, args[2:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "dcos-fixture: unknown command %q\n%s", args[0], usage)
		return 2
	}
}

// parseInterspersed parses flags that may come before, between or after
// positional arguments (check node-poststart --skip-unit), which the flag
// package alone stops at. Everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
