package main

// Node addresses. Every node shares the host's network, so two nodes (of
// any cluster, any dir option, any plugin process: creates of different
// clusters run in parallel in separate processes) must never get the same
// address. A lease file per address, in one directory of the host, says
// which cluster holds it; leases are taken under an exclusive flock.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// leaseDir is the host-wide directory of address leases.
func leaseDir() string { return filepath.Join(os.TempDir(), "e2e-nspawn-addresses") }

// lease is the content of a lease file: the cluster holding the address.
type lease struct {
	Marker string `json:"marker"`
	UID    string `json:"uid"`
}

// withLeaseLock runs f while holding the host-wide lease lock.
func withLeaseLock(f func() error) error {
	if err := os.MkdirAll(leaseDir(), 0o755); err != nil {
		return fmt.Errorf("address leases: %w", err)
	}
	lf, err := os.OpenFile(filepath.Join(leaseDir(), ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("address leases: %w", err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("address leases: %w", err)
	}
	defer func() { _ = syscall.Flock(int(lf.Fd()), syscall.LOCK_UN) }()
	return f()
}

// leaseAddresses gives every node of rec a free address of subnet and
// records the leases. An address is free when no live cluster leases it
// and nothing listens on its SSH port (a host sshd listening on every
// address makes every address busy: the error then says to change the
// port).
func leaseAddresses(rec *record, subnet netip.Prefix, port int) error {
	marker := filepath.Join(rec.dir, markerName)
	return withLeaseLock(func() error {
		size := 1 << (32 - subnet.Bits())
		// Skip the network address and start at a random place, so that
		// parallel runs rarely probe the same addresses.
		start := 1 + rand.IntN(size-2)
		busy := 0
		next := 0
		for i := 0; i < size-2 && next < len(rec.Nodes); i++ {
			addr := nth(subnet, 1+(start-1+i)%(size-2))
			if leased(addr) {
				continue
			}
			if !portFree(addr, port) {
				busy++
				if busy >= 16 && next == 0 {
					return fmt.Errorf("port %d is taken on every address tried in %s (a host sshd listening on every address?): "+
						"give the nodes another port with -o ssh_port=2222", port, subnet)
				}
				continue
			}
			b, _ := json.Marshal(lease{Marker: marker, UID: rec.UID})
			if err := os.WriteFile(filepath.Join(leaseDir(), addr.String()), b, 0o644); err != nil {
				return fmt.Errorf("address leases: %w", err)
			}
			rec.Nodes[next].Address = addr.String()
			next++
		}
		if next < len(rec.Nodes) {
			return fmt.Errorf("subnet %s has no free address left for %d nodes: give a larger one with -o subnet=", subnet, len(rec.Nodes))
		}
		return nil
	})
}

// nth is the address i places after the subnet's first one.
func nth(subnet netip.Prefix, i int) netip.Addr {
	a := subnet.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(i)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// leased reports whether addr is leased by a cluster that still exists; a
// lease whose cluster's marker is gone (or belongs to a later cluster) is
// stale and removed.
func leased(addr netip.Addr) bool {
	path := filepath.Join(leaseDir(), addr.String())
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	var l lease
	if err == nil && json.Unmarshal(b, &l) == nil {
		if rec, err := readRecord(filepath.Dir(l.Marker)); err == nil && rec.UID == l.UID {
			return true
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return true // unreadable: keep it, to be safe
		}
	}
	return os.Remove(path) != nil
}

// portFree reports whether nothing listens on addr:port.
func portFree(addr netip.Addr, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(addr.String(), strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// releaseAddresses removes the leases rec holds.
func releaseAddresses(rec *record) error {
	return withLeaseLock(func() error {
		for _, n := range rec.Nodes {
			if n.Address == "" {
				continue
			}
			path := filepath.Join(leaseDir(), n.Address)
			b, err := os.ReadFile(path)
			if err != nil {
				continue
			}
			var l lease
			if json.Unmarshal(b, &l) == nil && l.UID == rec.UID {
				if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
		}
		return nil
	})
}
