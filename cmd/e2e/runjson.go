package main

import (
	"bytes"
	"sync"

	"github.com/e2e-tool/e2e/cluster"
)

// nodeOutput is one node's part of e2e run --json.
type nodeOutput struct {
	Node string `json:"node"`
	Name string `json:"name"`
	// ExitCode is the remote command's exit code (128+N after signal N);
	// -1 when it did not run to its end (see Error).
	ExitCode int    `json:"exit_code"`
	Signal   string `json:"signal,omitempty"`
	// Stdout and Stderr are the command's output, as text (bytes that are
	// not UTF-8 become U+FFFD).
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
	// Error says why the command did not run or finish (SSH failed, the
	// node does not run).
	Error string `json:"error,omitempty"`
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
			var stdout, stderr bytes.Buffer
			one := cmd
			one.Stdin, one.Stdout, one.Stderr, one.TTY = nil, &stdout, &stderr, false
			st, err := n.Run(e.ctx, one)
			results[i] = cluster.NodeResult{Node: n, Status: st, Err: err}
			o := nodeOutput{Node: n.ID(), Name: n.Name, ExitCode: st.Code, Signal: st.Signal,
				Stdout: stdout.String(), Stderr: stderr.String()}
			if err != nil {
				o.ExitCode, o.Error = -1, oneLine(err)
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
