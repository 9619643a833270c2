//go:build unix

package ssh

import (
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/term"
)

// localTerminal returns the size of stdin's terminal, puts it in raw mode
// and forwards its size changes to sess until restore is called. For a stdin
// that is not a terminal it returns 80x24 and does nothing.
func localTerminal(stdin io.Reader, sess *gossh.Session) (w, h int, restore func()) {
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
		state = nil
	}
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-winch:
				if w, h, err := term.GetSize(fd); err == nil {
					sess.WindowChange(h, w)
				}
			}
		}
	}()
	return w, h, sync.OnceFunc(func() {
		signal.Stop(winch)
		close(stop)
		if state != nil {
			term.Restore(fd, state)
		}
	})
}
