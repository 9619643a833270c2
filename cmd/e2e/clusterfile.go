package main

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/e2e-tool/e2e/internal/yamlfile"
	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// clusterFile is the YAML cluster file of --config. A count left out is
// nil.
type clusterFile struct {
	Backend      string
	ClusterID    string
	Masters      *int
	Agents       *int
	PublicAgents *int
	Options      map[string]any
	// Path is the file, and OptionLines the line of each option in it,
	// for messages about an option the backend refuses.
	Path        string
	OptionLines map[string]int
}

// clusterFileKeys are the keys a cluster file may have, in the order the
// README shows them.
var clusterFileKeys = []string{"backend", "cluster_id", "masters", "agents", "public_agents", "options"}

// yamlPosition is how go-yaml starts an error: "[LINE:COLUMN] ".
var yamlPosition = regexp.MustCompile(`^\[(\d+):\d+\] `)

// yamlAt is how go-yaml refers to another place: "at [LINE:COLUMN]".
var yamlAt = regexp.MustCompile(`at \[(\d+):\d+\]`)

// loadClusterFile reads a cluster file. It is checked whole before any of
// it is used: one YAML document, a mapping of the known keys, each of its
// type. Errors name the file, the line and the key, as the user wrote them.
func loadClusterFile(path string) (clusterFile, error) {
	f := clusterFile{Path: path}
	b, err := yamlfile.Read(path)
	if err != nil {
		return f, invalid(fmt.Errorf("cluster file: %w", err))
	}
	bad := func(line int, format string, args ...any) error {
		where := "cluster file " + path
		if line > 0 {
			where += fmt.Sprintf(": line %d", line)
		}
		return invalid(fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...)))
	}
	file, err := parser.ParseBytes(b, 0)
	if err != nil {
		msg := strings.TrimSpace(yaml.FormatError(err, false, false))
		msg, _, _ = strings.Cut(msg, "\n")
		msg = yamlAt.ReplaceAllString(msg, "on line $1")
		if m := yamlPosition.FindStringSubmatch(msg); m != nil {
			return f, invalid(fmt.Errorf("cluster file %s: line %s: %s", path, m[1], msg[len(m[0]):]))
		}
		return f, bad(0, "%s", msg)
	}
	var body ast.Node
	for _, doc := range file.Docs {
		if doc.Body == nil {
			continue
		}
		if body != nil {
			// A second document would be silently ignored by a decoder.
			return f, bad(line(doc.Body), "a second YAML document (after ---): put everything in one document")
		}
		body = doc.Body
	}
	if body == nil {
		return f, bad(0, "the file is empty: give at least backend: NAME (keys: %s)", strings.Join(clusterFileKeys, ", "))
	}
	m, ok := body.(*ast.MappingNode)
	if !ok {
		return f, bad(line(body), "want a mapping of keys (%s), got %s", strings.Join(clusterFileKeys, ", "), nodeKind(body))
	}
	if err := yamlfile.CheckExpansion(m); err != nil {
		return f, bad(line(m), "%v", err)
	}
	var values yaml.MapSlice
	if err := yaml.NodeToValue(m, &values); err != nil {
		return f, bad(line(m), "%s", oneLine(errors.New(yaml.FormatError(err, false, false))))
	}
	for i, item := range values {
		at := line(m.Values[i].Key)
		key, ok := item.Key.(string)
		if !ok {
			key = fmt.Sprint(item.Key)
		}
		if !slices.Contains(clusterFileKeys, key) {
			return f, bad(at, "unknown key %q (valid keys: %s; backend options go under options:)", key, strings.Join(clusterFileKeys, ", "))
		}
		if item.Value == nil {
			// "agents:" with nothing after it is the key left out.
			continue
		}
		switch key {
		case "backend", "cluster_id":
			s, err := scalarString(item.Value)
			if err != nil {
				return f, bad(at, "%s: want a string, got %s", key, err)
			}
			if key == "backend" {
				f.Backend = s
			} else {
				f.ClusterID = s
			}
		case "masters", "agents", "public_agents":
			n, err := wholeNumber(item.Value)
			if err != nil {
				return f, bad(at, "%s: want a whole number, got %s", key, err)
			}
			switch key {
			case "masters":
				f.Masters = &n
			case "agents":
				f.Agents = &n
			default:
				f.PublicAgents = &n
			}
		case "options":
			opts, ok := item.Value.(map[string]any)
			if !ok {
				return f, bad(at, "options: want a mapping of option names to values (see `e2e plugin info NAME`), got %s", valueKind(item.Value))
			}
			f.Options = opts
			f.OptionLines = optionLines(m.Values[i].Value)
		}
	}
	return f, nil
}

// scalarString accepts a string, or a number written where an id may be
// all digits (cluster_id: 7), as written.
func scalarString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case uint64, int64:
		return fmt.Sprint(x), nil
	}
	return "", errors.New(valueKind(v))
}

// wholeNumber accepts a non-negative whole number.
func wholeNumber(v any) (int, error) {
	switch x := v.(type) {
	case uint64:
		if x <= math.MaxInt32 {
			return int(x), nil
		}
	case int64:
		if x >= 0 && x <= math.MaxInt32 {
			return int(x), nil
		}
		if x < 0 {
			return 0, fmt.Errorf("%d (counts cannot be negative)", x)
		}
	}
	return 0, errors.New(valueKind(v))
}

// valueKind describes a decoded YAML value for an error message.
func valueKind(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("%q", x)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	case bool:
		return fmt.Sprint(x)
	case nil:
		return "nothing"
	}
	return fmt.Sprint(v)
}

// nodeKind describes a YAML node that should have been a mapping.
func nodeKind(n ast.Node) string {
	switch n.(type) {
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	case *ast.IntegerNode, *ast.FloatNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	}
	return "a " + strings.ToLower(n.Type().String())
}

// optionLines maps each key of the options: mapping to its line.
func optionLines(n ast.Node) map[string]int {
	var values []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{m}
	}
	lines := map[string]int{}
	for _, v := range values {
		key := v.Key.String()
		if s, ok := v.Key.(*ast.StringNode); ok {
			key = s.Value
		}
		lines[key] = line(v.Key)
	}
	return lines
}

func line(n ast.Node) int {
	if t := n.GetToken(); t != nil && t.Position != nil {
		return t.Position.Line
	}
	return 0
}
