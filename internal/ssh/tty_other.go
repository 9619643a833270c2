//go:build !unix

package ssh

import (
	"io"
	"os"
	"sync"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/term"
)

// localTerminal returns the size of stdin's terminal and puts it in raw mode
// until restore is called (no resize forwarding without SIGWINCH). For a
// stdin that is not a terminal it returns 80x24 and does nothing.
func localTerminal(stdin io.Reader, _ *gossh.Session) (w, h int, restore func()) {
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return ptyWidth, ptyHeight, func() {}
	}
	fd := int(f.Fd())
	w, h, err := term.GetSize(fd)
	if err != nil {
		w, h = ptyWidth, ptyHeight
	}
	state, err := term.MakeRaw(fd)
	if err != nil {
		return w, h, func() {}
	}
	return w, h, sync.OnceFunc(func() { term.Restore(fd, state) })
}
