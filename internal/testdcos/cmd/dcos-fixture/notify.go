package main

import (
	"fmt"
	"net"
)

// notifyReady tells systemd (Type=notify) that the services are up, so
// `systemctl start` returns, and the unit counts as active, only once every
// port is bound. socket is $NOTIFY_SOCKET; empty when not run by systemd.
func notifyReady(socket string) error {
	if socket == "" {
		return nil
	}
	// A leading @ names an abstract socket; the net package maps it.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("dial %s: %w", socket, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("READY=1")); err != nil {
		return fmt.Errorf("write %s: %w", socket, err)
	}
	return nil
}
