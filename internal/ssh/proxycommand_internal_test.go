package ssh

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// A ProxyCommand that has exited ends the connection as EOF whichever way
// it is met, reading or writing (a broken pipe), so that Dial retries it
// while the node boots, and says why.
func TestProxyCommandEndIsEOF(t *testing.T) {
	conn, err := dialProxyCommand("sh -c 'echo no route >&2; exit 3'", "192.0.2.1:22")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	<-conn.(*proxyConn).exited
	for name, op := range map[string]func() error{
		"write": func() error { _, err := conn.Write([]byte("SSH-2.0-test\r\n")); return err },
		"read":  func() error { _, err := conn.Read(make([]byte, 16)); return err },
	} {
		err := op()
		if !errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "no route") {
			t.Errorf("%s after the command exited: %v; want io.EOF saying why", name, err)
		}
	}
	if got := conn.RemoteAddr().String(); got != "192.0.2.1:22" {
		t.Errorf("RemoteAddr %q, want the node's address", got)
	}
}
