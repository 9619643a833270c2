package proc

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Status is what /proc/PID/stat says of a process (Linux's proc(5)).
type Status struct {
	PID  int
	PPID int
	// PGID is the process group id.
	PGID int
	// State is one letter: R running, S sleeping, Z zombie, X dead, ...
	State string
	// Start is the start time in clock ticks since boot, as text: with PID
	// it tells one process from a later one given the same pid.
	Start string
}

// Ended reports whether the process has ended and only waits to be reaped
// (a zombie). In containers whose init does not reap, such processes stay.
func (s Status) Ended() bool { return s.State == "Z" || s.State == "X" }

// Stat reads process pid's status. It fails (fs.ErrNotExist) when there is
// no such process, and on systems without /proc.
func Stat(pid int) (Status, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return Status{}, err
	}
	return parseStat(pid, string(b))
}

// parseStat parses a /proc/PID/stat line. The command name is in
// parentheses and may hold spaces and parentheses: the fields are those
// after its last ')'.
func parseStat(pid int, s string) (Status, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return Status{}, errors.New("malformed /proc stat line")
	}
	// f[0] is field 3 (state), f[1] ppid, f[2] pgrp, f[19] field 22 (start time).
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return Status{}, errors.New("short /proc stat line")
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgid, err2 := strconv.Atoi(f[2])
	if err := errors.Join(err1, err2); err != nil {
		return Status{}, err
	}
	return Status{PID: pid, PPID: ppid, PGID: pgid, State: f[0], Start: f[19]}, nil
}

// All returns the status of every process that can be read, or an error
// when /proc cannot be listed.
func All() ([]Status, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []Status
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := Stat(pid); err == nil {
			out = append(out, st)
		}
	}
	return out, nil
}
