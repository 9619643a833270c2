package main

// The plugin executable's own commands: build-image and doctor.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/client"
	"github.com/e2e-tool/e2e/sdk"
)

// checkHost reports what is missing to run the backend, one problem per
// line with its fix; nil when ready.
func checkHost(ctx context.Context, cli *client.Client) []string {
	var problems []string
	if cli == nil {
		return []string{"docker: no Docker client: set DOCKER_HOST to the Docker engine's address"}
	}
	built, engineOK := false, true
	if _, err := cli.Ping(ctx); err != nil {
		engineOK = false
		fix := "start it or set DOCKER_HOST"
		if strings.Contains(err.Error(), "permission denied") {
			fix = "add your user to the docker group (or run as root)"
		}
		problems = append(problems, fmt.Sprintf("docker: cannot connect to the Docker engine at %s: %s (%v)",
			cli.DaemonHost(), fix, imageOneLine(err)))
	} else {
		r := defaultNodeImageRecipe()
		ok, err := imageIsBuilt(ctx, cli, r)
		if err != nil {
			problems = append(problems, imageOneLine(err))
		}
		built = ok
	}
	if built {
		return problems // building needs nothing else
	}
	if _, err := imageLookTool("debootstrap"); err != nil {
		problems = append(problems, "debootstrap is not installed: apt-get install debootstrap (it builds the node image)")
	}
	if _, err := os.Stat(imageKeyring); err != nil {
		problems = append(problems, "the Debian archive keyring is not installed: apt-get install debian-archive-keyring (debootstrap checks bookworm with it)")
	}
	if os.Geteuid() != 0 {
		problems = append(problems, fmt.Sprintf("building node image %s needs root: run `sudo e2e-backend-docker build-image` once", defaultImageRef()))
	}
	if engineOK {
		problems = append(problems, fmt.Sprintf("node image %s not built yet: run e2e-backend-docker build-image (or it is built on first create, about 45 s)", defaultImageRef()))
	}
	return problems
}

// imageCommands are the plugin executable's own subcommands, for
// sdk.WithCommand: build-image and doctor.
func imageCommands() map[string]sdk.Command {
	return map[string]sdk.Command{
		"build-image": {
			Help: "build the node image " + defaultImageRef() + " now, about 45 s; flags -if-missing, -dockerfile",
			Run:  runBuildImage,
		},
		"doctor": {
			Help: "check what this machine lacks to run the docker backend",
			Run:  runDoctor,
		},
	}
}

func runBuildImage(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("build-image", flag.ContinueOnError)
	ifMissing := fs.Bool("if-missing", false, "build only when the image is not in the engine yet")
	dockerfile := fs.Bool("dockerfile", false, "print the same recipe as a Dockerfile (for `docker build -t NAME -`) and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "build-image: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *dockerfile {
		fmt.Print(nodeDockerfile)
		return 0
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		fmt.Fprintf(os.Stderr, "build-image: docker client: %v\n", err)
		return 1
	}
	defer cli.Close()
	progress := func(s string) { fmt.Fprintln(os.Stderr, s) }
	var ref string
	if *ifMissing {
		ref, err = ensureImage(ctx, cli, "", progress)
	} else {
		ref, err = buildImage(ctx, cli, progress)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "build-image: interrupted; temporary files removed")
		return 130
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "build-image: %v\n", err)
		return 1
	}
	fmt.Println(ref)
	return 0
}

func runDoctor(ctx context.Context, args []string) int {
	if len(args) > 0 {
		fmt.Fprintf(os.Stderr, "doctor: unexpected argument %q\n", args[0])
		return 2
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		fmt.Printf("docker: invalid Docker client settings (DOCKER_HOST, DOCKER_CERT_PATH): %v\n", err)
		return 1
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	problems := checkHost(ctx, cli)
	for _, p := range problems {
		fmt.Println(p)
	}
	if len(problems) > 0 {
		return 1
	}
	fmt.Printf("ok: Docker engine at %s, node image %s\n", cli.DaemonHost(), defaultImageRef())
	return 0
}
