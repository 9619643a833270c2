package syserr

import (
	"errors"
	"net"
	"strings"
	"testing"
)

// TestCause: a listen on a port in use gives the system's words alone.
func TestCause(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = net.Listen("tcp", ln.Addr().String())
	if err == nil {
		t.Fatal("a second listen on the same port succeeded")
	}
	if got := Cause(err).Error(); got != "address already in use" {
		t.Errorf("Cause(%v) = %q, want the system's words", err, got)
	}
	plain := errors.New("plain")
	if Cause(plain) != plain {
		t.Error("an error that is no OpError changed")
	}
	if strings.Contains(Cause(err).Error(), "listen tcp") {
		t.Error("Go's wrapping kept")
	}
}
