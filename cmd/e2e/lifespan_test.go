package main

import (
	"testing"
	"time"
)

func TestLifespanColumns(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name        string
		created     time.Time
		expires     time.Time
		age, expiry string
	}{
		{"no times", time.Time{}, time.Time{}, "-", "-"},
		{"fresh", now.Add(-45 * time.Second), now.Add(59*time.Minute + 15*time.Second), "45s", "in 59m"},
		{"hours", now.Add(-(5*time.Hour + 7*time.Minute)), now.Add(-12 * time.Minute), "5h07m", "expired 12m ago"},
		{"days", now.Add(-(76 * time.Hour)), now.Add(50 * time.Hour), "3d04h", "in 2d02h"},
		{"created in the future (clock skew)", now.Add(time.Minute), now, "0s", "expired 0s ago"},
	} {
		if got := ageColumn(tc.created, now); got != tc.age {
			t.Errorf("%s: age %q, want %q", tc.name, got, tc.age)
		}
		if got := expiresColumn(tc.expires, now); got != tc.expiry {
			t.Errorf("%s: expires %q, want %q", tc.name, got, tc.expiry)
		}
	}
}
