package main

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/e2e-tool/e2e/internal/proc"
	"github.com/e2e-tool/e2e/internal/testdcos/internal/layout"
)

// Versions the stand-in services claim, from DC/OS 2.2's components.
const (
	marathonVersion = "1.11.24"
	mesosVersion    = "1.11.0"
)

type serveFlags struct {
	role        string
	listenHost  string
	portOffset  int
	configPath  string
	versionPath string
	detectIP    string
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.role, "role", "", "node role: master, slave or slave_public")
	fs.StringVar(&f.listenHost, "listen-host", "", "address to listen on (default: all)")
	fs.IntVar(&f.portOffset, "port-offset", 0, "added to every port (80, 5050, 8080, 8181, 5051), for tests")
	fs.StringVar(&f.configPath, "config", layout.NodeConfigFile, "the node config dcos_install.sh wrote")
	fs.StringVar(&f.versionPath, "version-file", layout.VersionFile, "dcos-version.json")
	fs.StringVar(&f.detectIP, "detect-ip", layout.DetectIP, "ip-detect script that names this node's address")
}

// port is one listener of a role: a DC/OS service's port and what answers
// there.
type port struct {
	name    string
	number  int
	handler http.Handler
}

func runServe(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serveFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if !layout.ValidRole(f.role) {
		fmt.Fprintf(stderr, "dcos-fixture serve: --role %q: must be one of master, slave, slave_public\n", f.role)
		return 2
	}
	cfg, err := readNodeConfig(f.configPath)
	if err != nil {
		fmt.Fprintf(stderr, "dcos-fixture serve: %v\n", err)
		return 1
	}
	s := newServices(cfg, f.role, f.versionPath)
	if f.role != "master" {
		s.selfIP = detectIP(ctx, f.detectIP)
	}
	if err := serve(ctx, s.ports(), f.listenHost, f.portOffset, stderr); err != nil {
		fmt.Fprintf(stderr, "dcos-fixture serve: %v\n", err)
		return 1
	}
	return 0
}

// serve listens on every port (all or nothing), tells systemd it is ready,
// and serves until ctx ends.
func serve(ctx context.Context, ports []port, host string, offset int, log io.Writer) error {
	var listeners []net.Listener
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
	}
	var addrs []string
	for _, p := range ports {
		addr := net.JoinHostPort(host, strconv.Itoa(p.number+offset))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("%s cannot listen on %s: %w", p.name, addr, err)
		}
		listeners = append(listeners, l)
		addrs = append(addrs, fmt.Sprintf("%s %s", p.name, l.Addr()))
	}
	errc := make(chan error, len(ports))
	servers := make([]*http.Server, len(ports))
	for i, p := range ports {
		servers[i] = &http.Server{Handler: p.handler, ReadHeaderTimeout: 10 * time.Second}
		go func(srv *http.Server, l net.Listener) {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}(servers[i], listeners[i])
	}
	if err := notifyReady(os.Getenv("NOTIFY_SOCKET")); err != nil {
		fmt.Fprintf(log, "dcos-fixture serve: telling systemd we are ready: %v\n", err)
	}
	fmt.Fprintf(log, "dcos-fixture serve: listening: %s\n", strings.Join(addrs, ", "))

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		_ = srv.Shutdown(shutdownCtx)
	}
	return err
}

func readNodeConfig(path string) (layout.NodeConfig, error) {
	var cfg layout.NodeConfig
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("reading the node config (written by dcos_install.sh): %w", err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("node config %s: %w", path, err)
	}
	return cfg, nil
}

// detectIP runs the ip-detect script, as DC/OS does to learn a node's
// address; "" when it cannot.
func detectIP(ctx context.Context, script string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := proc.Command(ctx, script).Output()
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(string(out))
	if _, err := netip.ParseAddr(s); err != nil {
		return ""
	}
	return s
}

// services answers for the DC/OS components of one node.
type services struct {
	cfg         layout.NodeConfig
	role        string
	versionPath string
	selfIP      string
	clusterID   string
}

func newServices(cfg layout.NodeConfig, role, versionPath string) *services {
	sum := sha1.Sum([]byte(cfg.ClusterName + "\x00" + strings.Join(cfg.MasterList, ",")))
	h := hex.EncodeToString(sum[:16])
	return &services{
		cfg: cfg, role: role, versionPath: versionPath,
		clusterID: h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32],
	}
}

func (s *services) ports() []port {
	if s.role != "master" {
		return []port{{"mesos-agent", layout.PortMesosAgent, s.agentMux()}}
	}
	return []port{
		{"adminrouter", layout.PortAdminRouter, s.adminRouterMux()},
		{"mesos-master", layout.PortMesosMaster, s.mesosMux()},
		{"marathon", layout.PortMarathon, s.marathonMux()},
		{"exhibitor", layout.PortExhibitor, s.exhibitorMux()},
	}
}

// agent is a Mesos agent as the master lists it.
type agent struct {
	ID         string            `json:"id"`
	Hostname   string            `json:"hostname"`
	Port       int               `json:"port"`
	PID        string            `json:"pid"`
	Active     bool              `json:"active"`
	Version    string            `json:"version"`
	Attributes map[string]string `json:"attributes"`
	Resources  map[string]any    `json:"resources"`
}

// agents are the config's agents then public agents; on a real cluster they
// register themselves, here the master knows them from the config.
func (s *services) agents() []agent {
	var out []agent
	add := func(ips []string, public bool) {
		for _, ip := range ips {
			attrs := map[string]string{}
			if public {
				attrs["public_ip"] = "true"
			}
			out = append(out, agent{
				ID:         fmt.Sprintf("%s-S%d", s.clusterID, len(out)),
				Hostname:   ip,
				Port:       layout.PortMesosAgent,
				PID:        fmt.Sprintf("slave(1)@%s:%d", ip, layout.PortMesosAgent),
				Active:     true,
				Version:    mesosVersion,
				Attributes: attrs,
				Resources:  map[string]any{"cpus": 2.0, "mem": 2048.0, "disk": 10240.0, "ports": "[1025-2180, 2182-3887, 3889-5049, 5052-8079, 8082-8180, 8182-32000]"},
			})
		}
	}
	add(s.cfg.AgentList, false)
	add(s.cfg.PublicAgentList, true)
	return out
}

func (s *services) leader() string {
	if len(s.cfg.MasterList) == 0 {
		return ""
	}
	return s.cfg.MasterList[0]
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (s *services) mesosMux() *http.ServeMux {
	mux := http.NewServeMux()
	slaves := func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"slaves": s.agents(), "recovered_slaves": []any{}})
	}
	mux.HandleFunc("GET /slaves", slaves)
	mux.HandleFunc("GET /master/slaves", slaves)
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"version": mesosVersion})
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {})
	return mux
}

func (s *services) marathonMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/info", func(w http.ResponseWriter, r *http.Request) {
		leader := s.leader() + ":" + strconv.Itoa(layout.PortMarathon)
		writeJSON(w, http.StatusOK, map[string]any{
			"name":        "marathon",
			"version":     marathonVersion,
			"buildref":    "dcos-fixture",
			"elected":     true,
			"leader":      leader,
			"frameworkId": s.clusterID + "-0001",
			"marathon_config": map[string]any{
				"master":    "zk://zk-1.zk:2181/mesos",
				"hostname":  s.leader(),
				"http_port": layout.PortMarathon,
			},
			"zookeeper_config": map[string]any{"zk": "zk://zk-1.zk:2181/marathon"},
		})
	})
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "pong") })
	return mux
}

func (s *services) exhibitorMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /exhibitor/v1/cluster/status", func(w http.ResponseWriter, r *http.Request) {
		status := make([]map[string]any, 0, len(s.cfg.MasterList))
		for i, ip := range s.cfg.MasterList {
			status = append(status, map[string]any{
				"code": 3, "description": "serving", "hostname": ip, "isLeader": i == 0,
			})
		}
		writeJSON(w, http.StatusOK, status)
	})
	mux.HandleFunc("GET /exhibitor/v1/cluster/list", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"servers": s.cfg.MasterList, "port": 2181})
	})
	return mux
}

// adminRouterMux is port 80: the DC/OS UI and the components behind their
// Admin Router prefixes.
func (s *services) adminRouterMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!DOCTYPE html>\n<html><head><title>DC/OS</title></head>\n"+
			"<body><h1>%s</h1><p>DC/OS %s (%s), served by e2e's DC/OS contract fixture.</p></body></html>\n",
			html.EscapeString(s.cfg.ClusterName), html.EscapeString(s.cfg.DCOSVersion), html.EscapeString(s.cfg.DCOSVariant))
	})
	mux.Handle("/marathon/", http.StripPrefix("/marathon", s.marathonMux()))
	mux.Handle("/mesos/", http.StripPrefix("/mesos", s.mesosMux()))
	mux.Handle("/exhibitor/", http.StripPrefix("/exhibitor", s.exhibitorMux()))
	mux.HandleFunc("GET /dcos-metadata/dcos-version.json", s.version)
	mux.HandleFunc("GET /slave/{id}/{rest...}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		for _, a := range s.agents() {
			if a.ID == id {
				writeJSON(w, http.StatusOK, map[string]any{"id": a.ID, "hostname": a.Hostname, "version": mesosVersion})
				return
			}
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "agent " + id + " is unknown"})
	})
	mux.HandleFunc("GET /system/health/v1/units", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"units": []map[string]any{{
			"id":          layout.UnitName(s.role),
			"name":        "DC/OS fixture " + s.role,
			"health":      0,
			"description": "stands in for the DC/OS " + s.role + " services",
		}}})
	})
	mux.HandleFunc("GET /service/metronome/v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, []any{})
	})
	mux.HandleFunc("POST /acs/api/v1/auth/login", s.login)
	return mux
}

// login issues a token. On enterprise, with superuser_username in the
// config, only that user may log in (the password is not checked: the
// fixture cannot verify superuser_password_hash).
func (s *services) login(w http.ResponseWriter, r *http.Request) {
	var creds struct {
		UID      string `json:"uid"`
		Password string `json:"password"`
		Token    string `json:"token"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&creds); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"title": "Bad Request", "description": err.Error()})
		return
	}
	if s.cfg.DCOSVariant == "enterprise" && s.cfg.SuperuserUsername != "" &&
		(creds.UID != s.cfg.SuperuserUsername || creds.Password == "") {
		writeJSON(w, http.StatusUnauthorized, map[string]string{
			"title": "Invalid credentials", "description": "Wrong password or username.", "code": "ERR_INVALID_CREDENTIALS",
		})
		return
	}
	token := base64.RawURLEncoding.EncodeToString([]byte("dcos-fixture:" + creds.UID))
	writeJSON(w, http.StatusOK, map[string]string{"token": token})
}

func (s *services) version(w http.ResponseWriter, r *http.Request) {
	b, err := os.ReadFile(s.versionPath)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"message": err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// agentMux is port 5051 on agents and public agents.
func (s *services) agentMux() *http.ServeMux {
	mux := http.NewServeMux()
	state := func(w http.ResponseWriter, r *http.Request) {
		id := s.clusterID + "-S?"
		for _, a := range s.agents() {
			if a.Hostname == s.selfIP {
				id = a.ID
			}
		}
		attrs := map[string]string{}
		if s.role == "slave_public" {
			attrs["public_ip"] = "true"
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"id":              id,
			"hostname":        s.selfIP,
			"version":         mesosVersion,
			"attributes":      attrs,
			"master_hostname": s.leader(),
		})
	}
	mux.HandleFunc("GET /state", state)
	mux.HandleFunc("GET /slave(1)/state", state)
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"version": mesosVersion})
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /dcos-metadata/dcos-version.json", s.version)
	return mux
}
