//go:build !unix

package state

// syncDir is a no-op where directories cannot be opened for fsync.
func syncDir(string) error { return nil }
