// Package yamlfile reads the YAML files users hand to e2e (cluster files,
// DC/OS extra config) within limits, so that a wrong file (a log,
// /dev/zero) or a YAML alias bomb ("billion laughs": aliases of aliases
// that expand exponentially) is refused at once instead of taking the
// machine's memory. Such files are a few lines of counts and options in
// practice.
package yamlfile

import (
	"fmt"
	"io"
	"os"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

const (
	// MaxBytes is the largest file Read accepts: 1 MiB.
	MaxBytes = 1 << 20
	// MaxValues is the most YAML values (mappings, sequences, scalars) a
	// document may stand for once every alias is replaced by what its
	// anchor holds.
	MaxValues = 100_000
)

// Read returns the content of the file at path. It refuses (an error
// naming the path and the limit) a file of more than MaxBytes, also when
// stat cannot tell its size (pipes, devices, process substitution).
func Read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > MaxBytes {
		return nil, fmt.Errorf("%s is %d bytes; it may be at most %d (is it the right file?)", path, st.Size(), MaxBytes)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("%s is more than %d bytes; it may be at most that (is it the right file?)", path, MaxBytes)
	}
	return b, nil
}

// CheckExpansion returns an error when n, with its aliases expanded, stands
// for more than MaxValues values; decoding it would build all of them.
func CheckExpansion(n ast.Node) error {
	if expandedSize(n, map[string]int{}) > MaxValues {
		return fmt.Errorf("its aliases (*name) expand to more than %d values: write the values out, or alias less", MaxValues)
	}
	return nil
}

// Check parses b (every document in it) and applies CheckExpansion, for
// callers that then decode b with yaml.Unmarshal. Syntax errors are left
// to the decoder, which reports them with their line.
func Check(b []byte) error {
	f, err := parser.ParseBytes(b, 0)
	if err != nil {
		return nil
	}
	for _, doc := range f.Docs {
		if err := CheckExpansion(doc.Body); err != nil {
			return err
		}
	}
	return nil
}

// expandedSize counts the values n stands for once every alias is
// replaced by what its anchor holds. anchors maps an anchor's name to its
// expanded size, filled in document order as YAML defines anchors, so the
// count takes one pass however deep aliases nest.
func expandedSize(n ast.Node, anchors map[string]int) int {
	switch n := n.(type) {
	case nil:
		return 0
	case *ast.MappingNode:
		total := 1
		for _, v := range n.Values {
			total = capAdd(total, expandedSize(v, anchors))
		}
		return total
	case *ast.MappingValueNode:
		return capAdd(expandedSize(n.Key, anchors), expandedSize(n.Value, anchors))
	case *ast.MappingKeyNode:
		return expandedSize(n.Value, anchors)
	case *ast.SequenceNode:
		total := 1
		for _, v := range n.Values {
			total = capAdd(total, expandedSize(v, anchors))
		}
		return total
	case *ast.AnchorNode:
		size := expandedSize(n.Value, anchors)
		if n.Name != nil {
			anchors[n.Name.String()] = size
		}
		return size
	case *ast.AliasNode:
		if n.Value == nil {
			return 1
		}
		return max(anchors[n.Value.String()], 1)
	case *ast.TagNode:
		return expandedSize(n.Value, anchors)
	default:
		return 1
	}
}

// capAdd adds sizes without overflowing: past MaxValues the exact count no
// longer matters.
func capAdd(a, b int) int {
	return min(a+b, MaxValues+1)
}
