package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/alecthomas/kong"
	"github.com/e2e-tool/e2e/cluster"
)

// CompleteCmd is what the completion scripts call: given the words of a
// command line after "e2e", the last being the word under the cursor
// (possibly empty), it prints the words that may stand there, one a line.
// An empty answer lets the shell complete file names.
type CompleteCmd struct {
	Words []string `arg:"" optional:"" passthrough:"all" help:"The command line's words after e2e, the last one being completed."`
}

func (c *CompleteCmd) Run(e *env) error {
	words := c.Words
	if len(words) > 0 && words[0] == "--" {
		words = words[1:]
	}
	if len(words) == 0 {
		words = []string{""}
	}
	parser, err := kong.New(&CLI{}, kong.Name("e2e"), kong.Vars{"default_id": cluster.DefaultID, "version": version},
		kong.ExplicitGroups([]kong.Group{{Key: "global", Title: "Global flags:"}}),
		kong.NamedMapper("existingfile", existingMapper{dir: false}),
		kong.NamedMapper("existingdir", existingMapper{dir: true}))
	if err != nil {
		return err
	}
	s := scanWords(parser.Model.Node, words[:len(words)-1])
	if len(s.pluginDirs) > 0 {
		// Plugins are looked for where the command line says.
		m, err := cluster.New(cluster.Options{PluginDirs: s.pluginDirs})
		if err != nil {
			return err
		}
		defer m.Close()
		e = &env{ctx: e.ctx, manager: m, stdout: e.stdout, stderr: e.stderr, progress: e.progress}
	}
	cur := words[len(words)-1]
	var cands []string
	switch {
	case s.pending != nil:
		cands = s.values(e, s.pending, cur)
	case strings.HasPrefix(cur, "--") && strings.Contains(cur, "="):
		name, value, _ := strings.Cut(cur, "=")
		if f := s.flag(strings.TrimPrefix(name, "--")); f != nil {
			for _, v := range s.values(e, f, value) {
				cands = append(cands, name+"="+v)
			}
		}
	case strings.HasPrefix(cur, "-") && !s.dashdash:
		cands = s.flagNames()
	default:
		cands = s.positional(e)
	}
	for _, c := range cands {
		if strings.HasPrefix(c, cur) {
			fmt.Fprintln(e.stdout, c)
		}
	}
	return nil
}

// scan is what the words before the cursor say: the command they select,
// the flag waiting for its value, and the values given so far.
type scan struct {
	node       *kong.Node
	pending    *kong.Flag // a flag whose value is the word under the cursor
	given      map[string][]string
	pluginDirs []string
	args       int  // positional arguments given
	dashdash   bool // after --: no more flags
}

func scanWords(root *kong.Node, words []string) *scan {
	s := &scan{node: root, given: map[string][]string{}}
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case s.dashdash:
			s.args++
		case w == "--":
			s.dashdash = true
		case strings.HasPrefix(w, "-") && len(w) > 1:
			name, value, hasValue := strings.Cut(strings.TrimLeft(w, "-"), "=")
			f := s.flag(name)
			if f == nil || f.Value.IsBool() || f.Value.IsCounter() {
				continue
			}
			if !hasValue {
				if i+1 == len(words) {
					s.pending = f
					continue
				}
				i++
				value = words[i]
			}
			s.given[f.Name] = append(s.given[f.Name], value)
			if f.Name == "plugin-dir" {
				s.pluginDirs = append(s.pluginDirs, value)
			}
		default:
			if child := s.child(w); child != nil && s.args == 0 {
				s.node = child
				continue
			}
			s.args++
		}
	}
	return s
}

// child is the command named w under the selected one.
func (s *scan) child(w string) *kong.Node {
	for _, c := range s.node.Children {
		if c.Type == kong.CommandNode && (c.Name == w || slices.Contains(c.Aliases, w)) {
			return c
		}
	}
	return nil
}

// flag finds a flag of the selected command or its parents by long name
// or, for one letter, short name.
func (s *scan) flag(name string) *kong.Flag {
	for _, group := range s.node.AllFlags(true) {
		for _, f := range group {
			if f.Name == name || (len(name) == 1 && f.Short == rune(name[0])) {
				return f
			}
		}
	}
	return nil
}

func (s *scan) flagNames() []string {
	var out []string
	for _, group := range s.node.AllFlags(true) {
		for _, f := range group {
			if f.Name == "help" && s.node.Parent != nil {
				continue
			}
			out = append(out, "--"+f.Name)
		}
	}
	return out
}

// value is the last value given to a flag, or def.
func (s *scan) value(flag, def string) string {
	if v := s.given[flag]; len(v) > 0 {
		return v[len(v)-1]
	}
	return def
}

// values are the candidates for flag f's value.
func (s *scan) values(e *env, f *kong.Flag, cur string) []string {
	switch f.Name {
	case "cluster-id":
		ids, _ := e.manager.IDs()
		return ids
	case "backend":
		names, _ := e.manager.BackendNames()
		return names
	case "node":
		nodes, _ := e.manager.RecordedNodes(s.value("cluster-id", cluster.DefaultID))
		return nodes
	case "role":
		return []string{string(cluster.RoleMaster), string(cluster.RoleAgent), string(cluster.RolePublicAgent)}
	case "option":
		return s.optionNames(e, cur)
	}
	return nil
}

// optionNames are NAME= for each option of the backend given with
// --backend (or, for commands on a cluster, of the cluster's backend).
func (s *scan) optionNames(e *env, cur string) []string {
	if strings.Contains(cur, "=") {
		return nil
	}
	backend := s.value("backend", "")
	if backend == "" {
		return nil
	}
	info, err := e.manager.Backend(e.ctx, backend)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(info.Options))
	for _, o := range info.Options {
		if !o.Secret {
			out = append(out, o.Name+"=")
		}
	}
	return out
}

// positional are the candidates where no flag is being given: the
// subcommands, or the backend name of plugin info and plugin remove.
func (s *scan) positional(e *env) []string {
	var out []string
	if s.args == 0 {
		for _, c := range s.node.Children {
			if c.Type == kong.CommandNode && !c.Hidden {
				out = append(out, c.Name)
			}
		}
	}
	switch strings.TrimSpace(s.node.Path()) {
	case "plugin info", "plugin remove":
		if s.args == 0 {
			names, _ := e.manager.BackendNames()
			out = append(out, names...)
		}
	case "completion":
		if s.args == 0 {
			out = append(out, shells...)
		}
	}
	return out
}
