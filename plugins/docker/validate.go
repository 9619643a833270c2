package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/e2e-tool/e2e/sdk"
)

// portMapping is one entry of one_master_host_port_map or host_port_map.
type portMapping struct {
	HostIP        string
	HostPort      int
	ContainerPort int
	Proto         string // tcp or udp
}

// parsePortMap parses comma-separated [IP:]HOST:CONTAINER[/tcp|/udp]
// entries; the host address defaults to 127.0.0.1.
func parsePortMap(s string) ([]portMapping, error) {
	var out []portMapping
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		m := portMapping{HostIP: "127.0.0.1", Proto: "tcp"}
		spec, proto, hasProto := strings.Cut(entry, "/")
		if hasProto {
			if proto != "tcp" && proto != "udp" {
				return nil, fmt.Errorf("%q: protocol %q is neither tcp nor udp", entry, proto)
			}
			m.Proto = proto
		}
		i := strings.LastIndex(spec, ":")
		if i < 0 {
			return nil, fmt.Errorf("%q is not [IP:]HOST:CONTAINER", entry)
		}
		hostPart, containerPart := spec[:i], spec[i+1:]
		if j := strings.LastIndex(hostPart, ":"); j >= 0 {
			ip := strings.Trim(hostPart[:j], "[]")
			if net.ParseIP(ip) == nil {
				return nil, fmt.Errorf("%q: %q is not an IP address", entry, ip)
			}
			m.HostIP, hostPart = ip, hostPart[j+1:]
		}
		var err error
		if m.HostPort, err = portNumber(hostPart); err != nil {
			return nil, fmt.Errorf("%q: host port: %w", entry, err)
		}
		if m.ContainerPort, err = portNumber(containerPart); err != nil {
			return nil, fmt.Errorf("%q: container port: %w", entry, err)
		}
		out = append(out, m)
	}
	return out, nil
}

func portNumber(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number from 1 to 65535", s)
	}
	return n, nil
}

// absMount makes a mount's source absolute (relative to the directory e2e
// runs in) and checks that it exists.
func absMount(m sdk.Mount) (sdk.Mount, error) {
	abs, err := filepath.Abs(m.Source)
	if err != nil {
		return m, err
	}
	if _, err := os.Stat(abs); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return m, fmt.Errorf("mount %s: source %s does not exist", m, abs)
		}
		return m, fmt.Errorf("mount %s: %w", m, err)
	}
	m.Source = abs
	return m, nil
}

// Validate checks what the schema cannot: the transport, mount sources,
// the port map, labels, and that a given network exists.
func (backend) Validate(ctx context.Context, opts sdk.Options) []sdk.Diagnostic {
	var diags []sdk.Diagnostic
	switch t := opts.String(optTransport); t {
	case "ssh", "exec":
	default:
		diags = append(diags, sdk.Errorf(optTransport, "option %q: %q is neither ssh nor exec", optTransport, t))
	}
	for _, role := range sdk.Roles() {
		name := mountOptions[role]
		for _, m := range opts.Mounts(name) {
			if _, err := absMount(m); err != nil {
				diags = append(diags, sdk.Errorf(name, "option %q: %v", name, err))
			}
		}
	}
	if _, err := parsePortMap(opts.String(optPortMap)); err != nil {
		diags = append(diags, sdk.Errorf(optPortMap, "option %q: %v", optPortMap, err))
	}
	if _, err := hostPortMaps(opts.Map(optHostPortMap)); err != nil {
		diags = append(diags, sdk.Errorf(optHostPortMap, "option %q: %v", optHostPortMap, err))
	}
	if mem := opts.Int(optMemory); mem != 0 && mem < minMemoryMiB {
		diags = append(diags, sdk.Errorf(optMemory, "option %q: %d MiB is too little for a node running systemd and sshd (at least %d, or 0 for no limit)", optMemory, mem, minMemoryMiB))
	}
	for _, name := range []string{optLabels, optMasterLabels, optAgentLabels, optPublicAgentLabels} {
		for k := range opts.Map(name) {
			if strings.HasPrefix(k, "e2e.") {
				diags = append(diags, sdk.Errorf(name, "option %q: label %q: labels starting with e2e. are e2e's own", name, k))
			}
		}
	}
	if ttl := opts.Duration(optTTL); ttl < 0 {
		diags = append(diags, ttlDiag(ttl))
	}
	if ws := opts.String(optWorkspaceDir); ws != "" {
		if st, err := os.Stat(ws); err != nil || !st.IsDir() {
			diags = append(diags, sdk.Errorf(optWorkspaceDir, "option %q: %s is not an existing directory", optWorkspaceDir, ws))
		}
	}
	return append(diags, engineDiags(ctx, opts)...)
}

// engineDiags checks what the user named in the engine: a network that
// must exist and an image that is never pulled. An engine that cannot be
// reached is reported by Create, which needs it anyway.
func engineDiags(ctx context.Context, opts sdk.Options) []sdk.Diagnostic {
	name, ref := opts.String(optNetwork), opts.String(optImage)
	if name == "" && ref == "" {
		return nil
	}
	cli, err := newClient()
	if err != nil {
		opt := optImage
		if name != "" {
			opt = optNetwork
		}
		return []sdk.Diagnostic{sdk.Errorf(opt, "option %q: %v", opt, err)}
	}
	defer cli.Close()
	var diags []sdk.Diagnostic
	if name != "" {
		if _, _, err := userNetwork(ctx, cli, name); err != nil {
			diags = append(diags, sdk.Errorf(optNetwork, "%v", err))
		}
	}
	if ref != "" {
		if _, err := cli.ImageInspect(ctx, ref); cerrdefs.IsNotFound(err) {
			var de *sdk.DiagnosticsError
			if errors.As(missingImage(cli, ref), &de) {
				diags = append(diags, de.Diagnostics...)
			}
		}
	}
	return diags
}

// ttlDiag refuses a negative lifespan.
func ttlDiag(ttl time.Duration) sdk.Diagnostic {
	return sdk.Errorf(optTTL, "option %q: %s is not a lifespan: give a positive duration such as 2h or 30m (or none, for no lifespan)", optTTL, ttl)
}

// minMemoryMiB is the smallest memory limit a node boots with.
const minMemoryMiB = 64
