package main

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
)

// networkName is the name of a cluster's own network.
func networkName(id string) string { return "e2e-" + id }

// createNetwork makes the cluster's bridge network, labelled like its
// containers, and returns its id. A network of that name left over by an
// earlier cluster of the same id, with no containers on it, is replaced.
func createNetwork(ctx context.Context, cli *client.Client, name string, labels map[string]string) (string, error) {
	opts := network.CreateOptions{Driver: "bridge", Labels: labels}
	resp, err := cli.NetworkCreate(ctx, name, opts)
	if err == nil {
		return resp.ID, nil
	}
	if !cerrdefs.IsConflict(err) {
		return "", engineError(fmt.Errorf("creating network %s: %w", name, err))
	}
	old, ierr := cli.NetworkInspect(ctx, name, network.InspectOptions{})
	if ierr != nil {
		return "", fmt.Errorf("creating network %s: %w", name, err)
	}
	if old.Labels[labelManaged] != "true" || len(old.Containers) > 0 {
		return "", fmt.Errorf("creating network %s: a network of that name exists already and is in use or not e2e's: remove it (docker network rm %s) or choose another cluster id", name, name)
	}
	if rerr := cli.NetworkRemove(ctx, old.ID); rerr != nil && !cerrdefs.IsNotFound(rerr) {
		return "", fmt.Errorf("removing the leftover network %s: %w", name, rerr)
	}
	resp, err = cli.NetworkCreate(ctx, name, opts)
	if err != nil {
		return "", fmt.Errorf("creating network %s: %w", name, err)
	}
	return resp.ID, nil
}

// userNetwork checks that a network the user named exists and returns its
// name as Docker knows it and its id.
func userNetwork(ctx context.Context, cli *client.Client, name string) (string, string, error) {
	n, err := cli.NetworkInspect(ctx, name, network.InspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return "", "", fmt.Errorf("option %q: Docker has no network %q (see docker network ls)", optNetwork, name)
	}
	if err != nil {
		return "", "", engineError(fmt.Errorf("inspecting network %s: %w", name, err))
	}
	return n.Name, n.ID, nil
}

// removeNetworks removes the networks e2e made for cluster id (one
// creation of it when uid is not empty). Networks the user gave carry no
// e2e labels and are never touched. report is called for each one removed.
func removeNetworks(ctx context.Context, cli *client.Client, id, uid string, report func(name string)) ([]string, error) {
	nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: clusterFilter(id, uid)})
	if err != nil {
		return nil, engineError(fmt.Errorf("listing networks: %w", err))
	}
	var workspaces []string
	var errs []error
	for _, n := range nets {
		if ws := n.Labels[labelWorkspace]; ws != "" {
			workspaces = append(workspaces, ws)
		}
		if err := cli.NetworkRemove(ctx, n.ID); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing network %s: %w", n.Name, err))
			continue
		}
		if report != nil {
			report(n.Name)
		}
	}
	return workspaces, joinErrs(errs)
}
