package main

import (
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/e2e-tool/e2e/internal/syserr"
	"github.com/e2e-tool/e2e/sdk"
)

// optHostPortMap publishes ports of any node or role (kind's
// extraPortMappings): NODE=MAP or ROLE=MAP, MAP as one_master_host_port_map.
const optHostPortMap = "host_port_map"

// portTarget is a key of host_port_map: a role, or one node of it.
type portTarget struct {
	role  sdk.Role
	index int // -1: every node of the role
}

// parsePortTarget reads master, agent, public_agent, or master_0,
// agent_1, ... (a '-' may stand for '_').
func parsePortTarget(key string) (portTarget, error) {
	k := strings.ReplaceAll(key, "-", "_")
	for _, role := range sdk.Roles() {
		if k == string(role) {
			return portTarget{role: role, index: -1}, nil
		}
		if rest, ok := strings.CutPrefix(k, string(role)+"_"); ok {
			if i, err := strconv.Atoi(rest); err == nil && i >= 0 && strconv.Itoa(i) == rest {
				return portTarget{role: role, index: i}, nil
			}
		}
	}
	return portTarget{}, fmt.Errorf("%q is neither a role (master, agent, public_agent) nor a node (master_0, agent_1, ...)", key)
}

// hostPortMaps parses host_port_map into mappings per target, in key
// order; the first problem is an error naming the key.
func hostPortMaps(m map[string]string) (map[portTarget][]portMapping, error) {
	out := map[portTarget][]portMapping{}
	for _, key := range slices.Sorted(maps.Keys(m)) {
		t, err := parsePortTarget(key)
		if err != nil {
			return nil, err
		}
		ports, err := parsePortMap(m[key])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		out[t] = append(out[t], ports...)
	}
	return out, nil
}

// assignPorts gives every node of the plan the ports published for it:
// one_master_host_port_map on master_0, and host_port_map's entries for
// its role and for itself. A node the cluster does not have, a role
// entry with more nodes than one (each host port can be published once),
// and a host port published twice are errors naming the option.
func assignPorts(p *plan, masterPorts []portMapping, perTarget map[portTarget][]portMapping) []sdk.Diagnostic {
	var diags []sdk.Diagnostic
	count := map[sdk.Role]int{}
	for _, n := range p.nodes {
		count[n.role]++
	}
	for t, ports := range perTarget {
		switch {
		case t.index >= 0 && t.index >= count[t.role]:
			diags = append(diags, sdk.Errorf(optHostPortMap, "option %q: the cluster has no node %s_%d (%d %s nodes)", optHostPortMap, t.role, t.index, count[t.role], t.role))
		case t.index < 0 && count[t.role] > 1 && len(ports) > 0:
			diags = append(diags, sdk.Errorf(optHostPortMap, "option %q: %s has %d nodes and a host port is published once: name the node (%s_0=...)", optHostPortMap, t.role, count[t.role], t.role))
		}
	}
	if len(diags) > 0 {
		return diags
	}
	seen := map[string]string{}
	for i := range p.nodes {
		n := &p.nodes[i]
		var ports []portMapping
		if n.role == sdk.RoleMaster && n.index == 0 {
			ports = append(ports, masterPorts...)
		}
		fromMaster := len(ports)
		ports = append(ports, perTarget[portTarget{role: n.role, index: -1}]...)
		ports = append(ports, perTarget[portTarget{role: n.role, index: n.index}]...)
		id := string(n.role) + "_" + strconv.Itoa(n.index)
		for j, m := range ports {
			key := fmt.Sprintf("%s:%d/%s", m.HostIP, m.HostPort, m.Proto)
			if other, dup := seen[key]; dup {
				diags = append(diags, sdk.Errorf(optHostPortMap, "option %q: host port %s is published twice (%s and %s)", optHostPortMap, key, other, id))
				continue
			}
			seen[key] = id
			n.ports = append(n.ports, m)
			if j < fromMaster {
				n.portOptions = append(n.portOptions, optPortMap)
			} else {
				n.portOptions = append(n.portOptions, optHostPortMap)
			}
		}
	}
	return diags
}

// hostPortsFree checks, before anything is made, that every host port the
// plan publishes can be bound: it listens on each address:port a moment.
// A port in use is a diagnostic naming the port, the node and the option
// it came from; the engine would otherwise fail part-way through with
// "address already in use". Only an engine on this machine (a unix socket,
// the default) publishes here, so other engines are not checked.
func hostPortsFree(p *plan) []sdk.Diagnostic {
	if !localEngine(os.Getenv("DOCKER_HOST")) {
		return nil
	}
	var diags []sdk.Diagnostic
	for _, n := range p.nodes {
		for j, m := range n.ports {
			addr := net.JoinHostPort(m.HostIP, strconv.Itoa(m.HostPort))
			var err error
			if m.Proto == "udp" {
				var c net.PacketConn
				if c, err = net.ListenPacket("udp", addr); err == nil {
					_ = c.Close()
				}
			} else {
				var l net.Listener
				if l, err = net.Listen("tcp", addr); err == nil {
					_ = l.Close()
				}
			}
			if err != nil {
				opt := n.portOptions[j]
				diags = append(diags, sdk.Errorf(opt, "option %q: host port %s/%s for %s_%d cannot be used (%v): stop what holds it (ss -ltnp), or publish another host port", opt, addr, m.Proto, n.role, n.index, syserr.Cause(err)))
			}
		}
	}
	return diags
}

// localEngine reports whether DOCKER_HOST (empty: the default socket)
// names an engine on this machine, whose published ports are this
// machine's.
func localEngine(dockerHost string) bool {
	return dockerHost == "" || strings.HasPrefix(dockerHost, "unix://")
}
