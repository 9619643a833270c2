package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
	"github.com/e2e-tool/e2e/sdk"
)

// minFreeBytes is the free disk below which the workspace and Docker root
// checks fail: a node image build and a few nodes' writable layers need
// about this much.
const minFreeBytes = 2 << 30

// Doctor makes the backend an sdk.Doctor: the engine, privileged
// containers, the node image (opts' image, or the default one present or
// buildable) and free disk in the workspace and Docker's root directory.
// It makes nothing.
func (backend) Doctor(ctx context.Context, opts sdk.Options) []sdk.Check {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return []sdk.Check{{Name: "Docker engine reachable", Detail: imageOneLine(err),
			Fix: "correct DOCKER_HOST, DOCKER_CERT_PATH and DOCKER_TLS_VERIFY"}}
	}
	defer cli.Close()
	return doctorChecks(ctx, cli, opts.String(optImage), opts.String(optWorkspaceDir))
}

// doctorChecks runs the checks against cli; image is the image option
// ("" for the default node image), workspace the workspace_dir option.
func doctorChecks(ctx context.Context, cli *client.Client, image, workspace string) []sdk.Check {
	engine := sdk.Check{Name: "Docker engine reachable"}
	v, err := cli.ServerVersion(ctx)
	if err != nil {
		engine.Detail = fmt.Sprintf("cannot connect to the Docker engine at %s: %s", cli.DaemonHost(), imageOneLine(err))
		engine.Fix = "start Docker, or set DOCKER_HOST to the engine's address"
		if strings.Contains(err.Error(), "permission denied") {
			engine.Fix = "add your user to the docker group (or run as root)"
		}
		// Everything else asks the engine.
		return []sdk.Check{engine, diskCheck("free disk in the workspace", workspaceDir(workspace))}
	}
	engine.OK = true
	engine.Detail = fmt.Sprintf("Docker %s, API %s (client API %s) at %s", v.Version, v.APIVersion, cli.ClientVersion(), cli.DaemonHost())
	checks := []sdk.Check{engine, privilegeCheck(ctx, cli), imageCheck(ctx, cli, image),
		diskCheck("free disk in the workspace", workspaceDir(workspace))}
	if info, err := cli.Info(ctx); err == nil && info.DockerRootDir != "" {
		if strings.HasPrefix(cli.DaemonHost(), "unix://") {
			checks = append(checks, diskCheck("free disk in Docker's root directory", info.DockerRootDir))
		} else {
			checks = append(checks, sdk.Check{Name: "free disk in Docker's root directory", OK: true,
				Detail: info.DockerRootDir + " is on the engine's machine: not checked from here"})
		}
	}
	return checks
}

// privilegeCheck says whether nodes run privileged or with the capability
// fallback, as the last create on this engine found out. Both work.
func privilegeCheck(ctx context.Context, cli *client.Client) sdk.Check {
	c := sdk.Check{Name: "privileged containers", OK: true}
	engine, err := engineKey(ctx, cli)
	if err != nil {
		c.Detail = "unknown: " + imageOneLine(err)
		return c
	}
	pv := &privileges{engine: engine, cachePath: privilegeCachePath(engine)}
	rec, ok := pv.load()
	switch {
	case !ok:
		c.Detail = "not known yet: the next create finds out with a throw-away container; where the engine refuses them, nodes get every capability but SYS_RESOURCE"
	case rec.Privileged:
		c.Detail = "allowed: nodes run privileged"
	default:
		c.Detail = fmt.Sprintf("refused by the engine (%s): nodes get every capability but SYS_RESOURCE instead", rec.Reason)
	}
	return c
}

// imageCheck checks the node image: the one named, which must be in the
// engine, or the default one, present or buildable here.
func imageCheck(ctx context.Context, cli *client.Client, ref string) sdk.Check {
	c := sdk.Check{Name: "node image present or buildable"}
	if ref != "" {
		_, err := cli.ImageInspect(ctx, ref)
		switch {
		case err == nil:
			c.OK, c.Detail = true, ref+" is in the engine"
		case cerrdefs.IsNotFound(err):
			c.Detail = fmt.Sprintf("node image %s (option %s) is not in the Docker engine, and nothing is pulled", ref, optImage)
			c.Fix = fmt.Sprintf("build it with `e2e-backend-docker build-image -dockerfile | docker build -t %s -`, load it with `docker load -i FILE`, or leave out -o %s for the default node image", ref, optImage)
		default:
			c.Detail = imageOneLine(err)
			c.Fix = "check the Docker engine"
		}
		return c
	}
	r := defaultNodeImageRecipe()
	built, err := imageIsBuilt(ctx, cli, r)
	if err != nil {
		c.Detail, c.Fix = imageOneLine(err), "check the Docker engine"
		return c
	}
	if built {
		c.OK, c.Detail = true, r.ref()+" is built"
		return c
	}
	var missing, fixes []string
	if _, err := imageLookTool("debootstrap"); err != nil {
		missing = append(missing, "debootstrap")
		fixes = append(fixes, "apt-get install debootstrap")
	}
	if _, err := os.Stat(imageKeyring); err != nil {
		missing = append(missing, "the Debian archive keyring")
		fixes = append(fixes, "apt-get install debian-archive-keyring")
	}
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
		fixes = append(fixes, "run `sudo e2e-backend-docker build-image` once")
	}
	if len(missing) == 0 {
		c.OK, c.Detail = true, r.ref()+" is not built yet: the first create builds it (about 45 s), or run e2e-backend-docker build-image"
		return c
	}
	c.Detail = fmt.Sprintf("%s is not built, and building it here needs %s", r.ref(), strings.Join(missing, ", "))
	c.Fix = strings.Join(fixes, "; ")
	return c
}

// workspaceDir is where Create puts a cluster's workspace.
func workspaceDir(opt string) string {
	if opt != "" {
		return opt
	}
	return os.TempDir()
}

// diskCheck checks that dir's file system has minFreeBytes free.
func diskCheck(name, dir string) sdk.Check {
	c := sdk.Check{Name: name}
	free, err := freeBytes(dir)
	if err != nil {
		c.Detail = fmt.Sprintf("%s: %s", dir, imageOneLine(err))
		c.Fix = "create the directory, or choose another with -o " + optWorkspaceDir
		return c
	}
	c.Detail = fmt.Sprintf("%.1f GiB free in %s", float64(free)/(1<<30), dir)
	if free >= minFreeBytes {
		c.OK = true
		return c
	}
	c.Fix = fmt.Sprintf("free at least %d GiB there (docker system prune removes unused images and containers), or choose another directory", minFreeBytes>>30)
	return c
}
