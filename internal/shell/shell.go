// Package shell quotes words for a POSIX shell: the command lines e2e
// sends to a node's shell (over SSH, or through the exec transport) and
// the lines its installers run there. One own function rather than a
// library: the remote command line is the core of what e2e does, and the
// libraries at hand either leave "=" unquoted (a first word "A=b" then
// becomes an assignment) or refuse control characters POSIX single quotes
// carry.
package shell

import "strings"

// Quote joins words into a POSIX shell command line that gives the command
// exactly these arguments: each one is single-quoted unless it is made only
// of characters no shell treats specially. Quote() is "".
func Quote(words ...string) string {
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		if w != "" && strings.IndexFunc(w, needsQuote) < 0 {
			b.WriteString(w)
			continue
		}
		b.WriteByte('\'')
		b.WriteString(strings.ReplaceAll(w, "'", `'\''`))
		b.WriteByte('\'')
	}
	return b.String()
}

// needsQuote is true for any rune outside a conservative safe set; "=" is
// outside it so that a first word "A=b" is not taken for an assignment.
func needsQuote(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return false
	}
	return !strings.ContainsRune("_-./:@%+,", r)
}
