package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/e2e-tool/e2e/cluster"
)

// locateOptions adds to a backend's refusal of options the cluster file
// and line of each refused option that came from the file (and was not
// given again with -o), as mistakes in the file's own keys are reported:
// "cluster file c.yaml: line 4: unknown option "memroy" (see ...)".
// Other errors are returned as they are.
func (f clusterFile) locateOptions(err error, fromFlags map[string]any) error {
	var oe *cluster.OptionError
	if f.Path == "" || !errors.As(err, &oe) {
		return err
	}
	var fromFile, others []string
	for _, p := range oe.Problems {
		_, flag := fromFlags[p.Option]
		if ln, ok := f.OptionLines[p.Option]; ok && p.Option != "" && !flag {
			fromFile = append(fromFile, fmt.Sprintf("line %d: %s", ln, p.Message))
			continue
		}
		others = append(others, p.Message)
	}
	if len(fromFile) == 0 {
		return err
	}
	msg := fmt.Sprintf("cluster file %s: %s", f.Path, strings.Join(fromFile, "; "))
	if len(others) > 0 {
		msg += "; and from -o: " + strings.Join(others, "; ")
	}
	return invalid(errors.New(msg + oe.Hint()))
}
