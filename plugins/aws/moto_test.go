package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/e2e-tool/e2e/internal/proc"
	"github.com/e2e-tool/e2e/internal/testbin"
)

// moto is a moto_server (an EC2 emulator) on 127.0.0.1, with a
// fault-injecting, call-counting proxy in front of it.
type moto struct {
	// URL is moto's own address; Proxy the proxy's, which is what the
	// plugin is given (AWS_ENDPOINT_URL_EC2).
	URL, Proxy string
	faults     *faults
	// EC2 talks to moto directly, for what the test itself checks.
	EC2 *ec2.Client
}

// testRegion is the region every AWS test uses.
const testRegion = "us-east-1"

// motoPython is the interpreter that has moto: the real one, not a pyenv
// shim, so that the pid the test kills is the server's own.
func motoPython() (string, error) {
	out, err := exec.Command("python3", "-c", "import moto.server, sys; print(sys.executable)").Output()
	if err != nil {
		return "", fmt.Errorf("python3 with moto[server] 5.x (python3 -m moto.server) is not installed: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// startMoto starts moto_server on a free port of 127.0.0.1 with the
// validations that make it refuse unknown images, key pairs and instance
// types, as EC2 does, and stops it (by its own pid) when the test ends.
func startMoto(t testing.TB) *moto {
	t.Helper()
	python, err := motoPython()
	testbin.Require(t, "moto_server (python3 -m moto.server)", err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := proc.Command(ctx, python, "-m", "moto.server", "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Env = append(os.Environ(), "MOTO_ENABLE_AMI_VALIDATION=true", "MOTO_ENABLE_KEYPAIR_VALIDATION=true",
		"MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION=true")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if !testbin.Gone(pid, 10*time.Second) {
			t.Errorf("moto_server (pid %d) still runs", pid)
		}
	})
	m := &moto{URL: fmt.Sprintf("http://127.0.0.1:%d", port), faults: &faults{counts: map[string]int{}}}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(m.URL + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("moto_server exited: %s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not answer on %s: %v", m.URL, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	target, _ := url.Parse(m.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(m.faults.handler(rp))
	t.Cleanup(srv.Close)
	m.Proxy = srv.URL
	m.EC2 = ec2.New(ec2.Options{Region: testRegion, BaseEndpoint: aws.String(m.URL),
		Credentials: credentials.NewStaticCredentialsProvider("direct-test", "direct-test", "")})
	return m
}

// fault is an error the proxy answers instead of moto.
type fault struct {
	// Action is the EC2 API action it answers (RunInstances, ...).
	Action string
	// After lets that many calls of the action through first.
	After int
	// Times is how many calls it answers; 0 means every one.
	Times  int
	Status int
	Code   string
	// Delay holds the call that long; with no Status, it then goes on
	// to moto.
	Delay time.Duration
}

// faults is the proxy's state: the faults to inject and the calls seen.
type faults struct {
	mu     sync.Mutex
	list   []*fault
	counts map[string]int // calls that reached the proxy, by action
}

// Inject adds a fault; it applies from the next call on.
func (m *moto) Inject(f fault) {
	m.faults.mu.Lock()
	defer m.faults.mu.Unlock()
	m.faults.list = append(m.faults.list, &f)
}

// Clear removes every fault.
func (m *moto) Clear() {
	m.faults.mu.Lock()
	defer m.faults.mu.Unlock()
	m.faults.list = nil
}

// Calls returns the calls seen by action since the last call, and resets
// the counts.
func (m *moto) Calls() map[string]int {
	m.faults.mu.Lock()
	defer m.faults.mu.Unlock()
	c := m.faults.counts
	m.faults.counts = map[string]int{}
	return c
}

func (f *faults) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		action := form.Get("Action")
		f.mu.Lock()
		f.counts[action]++
		var hit *fault
		for _, ft := range f.list {
			if ft.Action != action {
				continue
			}
			if ft.After > 0 {
				ft.After--
				continue
			}
			if ft.Times >= 0 {
				hit = ft
				if ft.Times > 0 {
					ft.Times--
					if ft.Times == 0 {
						ft.Times = -1 // used up
					}
				}
				break
			}
		}
		f.mu.Unlock()
		if hit != nil && hit.Delay > 0 {
			select {
			case <-time.After(hit.Delay):
			case <-r.Context().Done():
				return
			}
		}
		if hit == nil || hit.Status == 0 {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(hit.Status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>%s</Code><Message>injected by the test proxy: %s</Message></Error></Errors><RequestID>e2e-test</RequestID></Response>`,
			hit.Code, hit.Code)
	})
}
