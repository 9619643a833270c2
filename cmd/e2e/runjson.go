package main

import (
	"bytes"
	"encoding/base64"
	"sync"
	"unicode/utf8"

	"github.com/e2e-tool/e2e/cluster"
)

// runJSONCapture is how much of each stream (stdout, stderr) of each node
// e2e run --json keeps, in bytes; the rest is counted and dropped
// (stdout_dropped, stderr_dropped).
const runJSONCapture = 16 << 20

// nodeOutput is one node's part of e2e run --json. Fields marked
// omitempty are left out when empty, zero or false.
type nodeOutput struct {
	// Node is the node's id (master_0, agent_1).
	Node string `json:"node"`
	// Name is the backend's name of the node.
	Name string `json:"name"`
	// ExitCode is the remote command's exit code (128+N after signal N);
	// 255, as OpenSSH's ssh says, when it did not run to its end (see
	// Error).
	ExitCode int `json:"exit_code"`
	// Signal is the signal that ended the command (TERM, KILL), if one
	// did.
	Signal string `json:"signal,omitempty"`
	// Stdout and Stderr are the command's output when it is UTF-8 text;
	// otherwise they are "" and StdoutBase64/StderrBase64 hold the
	// bytes, base64 (standard, padded).
	Stdout       string `json:"stdout"`
	StdoutBase64 string `json:"stdout_base64,omitempty"`
	Stderr       string `json:"stderr"`
	StderrBase64 string `json:"stderr_base64,omitempty"`
	// StdoutDropped and StderrDropped count the bytes past the first
	// runJSONCapture (16 MiB) of a stream, which are not kept.
	StdoutDropped int64 `json:"stdout_dropped,omitempty"`
	StderrDropped int64 `json:"stderr_dropped,omitempty"`
	// Error says why the command did not run or finish (SSH failed, the
	// node does not run).
	Error string `json:"error,omitempty"`
}

// capped keeps the first runJSONCapture bytes written to it and counts
// the rest.
type capped struct {
	buf     bytes.Buffer
	dropped int64
}

func (c *capped) Write(p []byte) (int, error) {
	keep := min(len(p), runJSONCapture-c.buf.Len())
	c.buf.Write(p[:keep])
	c.dropped += int64(len(p) - keep)
	return len(p), nil
}

// text returns the stream as text when it is valid UTF-8, otherwise as
// base64 (lossless; a cut at the cap that splits a character makes it
// base64 too).
func (c *capped) text() (text, b64 string) {
	b := c.buf.Bytes()
	if utf8.Valid(b) {
		return string(b), ""
	}
	return "", base64.StdEncoding.EncodeToString(b)
}

// runJSON runs cmd on every node at once, capturing each node's output,
// prints one JSON array in node order, and returns run's usual exit.
func runJSON(e *env, nodes []cluster.Node, cmd cluster.Command) error {
	outs := make([]nodeOutput, len(nodes))
	results := make([]cluster.NodeResult, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var stdout, stderr capped
			one := cmd
			one.Stdin, one.Stdout, one.Stderr, one.TTY = nil, &stdout, &stderr, false
			st, err := n.Run(e.ctx, one)
			results[i] = cluster.NodeResult{Node: n, Status: st, Err: err}
			o := nodeOutput{Node: n.ID(), Name: n.Name, ExitCode: st.Code, Signal: st.Signal,
				StdoutDropped: stdout.dropped, StderrDropped: stderr.dropped}
			o.Stdout, o.StdoutBase64 = stdout.text()
			o.Stderr, o.StderrBase64 = stderr.text()
			if err != nil {
				o.ExitCode, o.Error = 255, oneLine(err)
			}
			outs[i] = o
		}()
	}
	wg.Wait()
	if err := printJSON(e, outs); err != nil {
		return err
	}
	return runSummary(results)
}
