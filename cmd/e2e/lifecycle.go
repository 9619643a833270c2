package main

import (
	"fmt"
	"time"
)

// StopCmd stops a cluster's nodes.
type StopCmd struct {
	ClusterID string `name:"cluster-id" short:"c" default:"${default_id}" help:"Cluster id."`
}

func (c *StopCmd) Run(e *env) error {
	e.now("stopping cluster %q", c.ClusterID)
	start := time.Now()
	if err := e.manager.Stop(e.ctx, c.ClusterID); err != nil {
		return err
	}
	e.say("stopped cluster %s in %s (`e2e start -c %s` starts it again)", c.ClusterID, time.Since(start).Round(time.Millisecond), c.ClusterID)
	fmt.Fprintln(e.stdout, c.ClusterID)
	return nil
}

// StartCmd starts a cluster's nodes.
type StartCmd struct {
	ClusterID string `name:"cluster-id" short:"c" default:"${default_id}" help:"Cluster id."`
}

func (c *StartCmd) Run(e *env) error {
	e.now("starting cluster %q", c.ClusterID)
	start := time.Now()
	if err := e.manager.Start(e.ctx, c.ClusterID); err != nil {
		return err
	}
	e.say("started cluster %s in %s", c.ClusterID, time.Since(start).Round(time.Millisecond))
	fmt.Fprintln(e.stdout, c.ClusterID)
	return nil
}
