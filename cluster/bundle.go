package cluster

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// bundle records the files and directories one CollectLogs call creates,
// so that an interrupted call removes exactly those and nothing else.
// Files are created new (O_EXCL, 0600): a file that appeared meanwhile is
// never replaced.
type bundle struct {
	mu   sync.Mutex
	made []string
}

// mkdirAll makes dir and its missing parents (0700), recording each
// directory it made.
func (b *bundle) mkdirAll(dir string) error {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	slices.Reverse(missing)
	for _, d := range missing {
		err := os.Mkdir(d, 0o700)
		if errors.Is(err, fs.ErrExist) {
			// Made by someone else meanwhile (another node's part of
			// this bundle records its own).
			if st, serr := os.Stat(d); serr == nil && st.IsDir() {
				continue
			}
		}
		if err != nil {
			return err
		}
		b.record(d)
	}
	if st, err := os.Stat(dir); err != nil {
		return err
	} else if !st.IsDir() {
		return &fs.PathError{Op: "mkdir", Path: dir, Err: errors.New("not a directory")}
	}
	return nil
}

// create creates a new file (0600) and records it.
func (b *bundle) create(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	b.record(path)
	return f, nil
}

// writeFile writes data into a new file (0600) and records it.
func (b *bundle) writeFile(path string, data []byte) error {
	f, err := b.create(path)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (b *bundle) record(path string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.made = append(b.made, path)
}

// undo removes what the bundle recorded, newest first; a directory that
// holds something else stays (os.Remove never removes a tree).
func (b *bundle) undo() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := len(b.made) - 1; i >= 0; i-- {
		_ = os.Remove(b.made[i])
	}
	b.made = nil
}
