package main

// SSHConfigCmd prints an OpenSSH config for a cluster's nodes.
type SSHConfigCmd struct {
	ClusterID string `name:"cluster-id" short:"c" default:"${default_id}" help:"Cluster id."`
}

func (c *SSHConfigCmd) Run(e *env) error {
	e.now("writing the SSH config of cluster %q", c.ClusterID)
	cl, err := e.manager.Get(e.ctx, c.ClusterID)
	if err != nil {
		return err
	}
	defer cl.Close()
	return cl.WriteSSHConfig(e.stdout)
}
