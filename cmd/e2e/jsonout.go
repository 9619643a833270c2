package main

import (
	"bytes"
	"strings"
)

// jsonLines runs a command whose results are lines on stdout (ids,
// resources) and prints them instead as one JSON array of strings, also
// when the command failed part way (what was done is listed).
func jsonLines(e *env, run func() error) error {
	var buf bytes.Buffer
	out := e.stdout
	e.stdout = &buf
	err := run()
	e.stdout = out
	lines := []string{}
	for _, l := range strings.Split(buf.String(), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	if perr := printJSON(e, lines); perr != nil && err == nil {
		err = perr
	}
	return err
}
