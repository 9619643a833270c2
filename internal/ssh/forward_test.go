package ssh_test

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/internal/ssh/sshdtest"
)

// TestDialContextForwards: a connection opened through a node reaches an
// address as the node sees it (here the node's own sshd on its loopback).
func TestDialContextForwards(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{})
	c := dial(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := c.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", srv.Endpoint.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "SSH-2.0-") {
		t.Errorf("read %q, %v through the forward; want an SSH banner", line, err)
	}
	if _, err := c.DialContext(ctx, "tcp", "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("forward to a closed port: %v, want an error naming it", err)
	}
}
