package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/alecthomas/kong"
	"github.com/e2e-tool/e2e/cluster"
)

// kongExit carries kong's request to exit (after --help) out of Parse.
type kongExit struct{ code int }

// parseArgs parses the command line. When ok is false e2e exits at once
// with code: after --help or --version, or a usage error it has reported
// (one line on stderr, or the usage when no command was given).
func parseArgs(args []string, stdout, stderr io.Writer) (cli *CLI, kctx *kong.Context, code int, ok bool) {
	cli = &CLI{}
	parser, err := kong.New(cli,
		kong.Name("e2e"),
		kong.Description("Create throw-away clusters for end-to-end tests, through backend plugins."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(c int) { panic(kongExit{c}) }),
		kong.Vars{"default_id": cluster.DefaultID, "version": version},
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Help(globalFlagsLast),
		kong.ExplicitGroups([]kong.Group{{Key: "global", Title: "Global flags:"}}),
		kong.NamedMapper("existingfile", existingMapper{dir: false}),
		kong.NamedMapper("existingdir", existingMapper{dir: true}),
	)
	if err != nil {
		fmt.Fprintf(stderr, "e2e: %v\n", err)
		return nil, nil, exitFailure, false
	}
	defer func() {
		if r := recover(); r != nil {
			ke, isExit := r.(kongExit)
			if !isExit {
				panic(r)
			}
			cli, kctx, ok = nil, nil, false
			code = ke.code
			if code == 80 || code == 1 {
				// kong's parse-error code becomes the usage code.
				code = exitUsage
			}
		}
	}()
	kctx, err = parser.Parse(args)
	if err == nil {
		err = checkFlags(kctx)
	}
	if err == nil {
		return cli, kctx, exitOK, true
	}
	var pe *kong.ParseError
	if errors.As(err, &pe) && pe.Context != nil && needsCommand(pe.Context) {
		// No command (e2e alone, e2e plugin): the usage says what there is.
		parser.Stdout = stderr
		_ = pe.Context.PrintUsage(false)
		if sel := pe.Context.Selected(); sel != nil {
			fmt.Fprintf(stderr, "\ne2e: give a command after %s: %s\n", sel.FullPath(), commandNames(sel))
		}
		return nil, nil, exitUsage, false
	}
	fmt.Fprintf(stderr, "e2e: %s\n", usageMessage(err, pe))
	return nil, nil, exitUsage, false
}

// needsCommand reports whether parsing stopped because no command was
// given where one is needed.
func needsCommand(kctx *kong.Context) bool {
	node := kctx.Selected()
	if node == nil {
		node = kctx.Model.Node
	}
	for _, c := range node.Children {
		if c.Type == kong.CommandNode && !c.Hidden {
			return true
		}
	}
	return false
}

// commandNames lists the commands of node, "a, b or c".
func commandNames(node *kong.Node) string {
	var names []string
	for _, c := range node.Children {
		if c.Type == kong.CommandNode && !c.Hidden {
			names = append(names, c.Name)
		}
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// usageMessage words kong's parse errors as sentences that say what to
// give. Kong's own words are kept where they are plain already ("unknown
// flag --nodes, did you mean ...?").
func usageMessage(err error, pe *kong.ParseError) string {
	msg := oneLine(err)
	if pe == nil || pe.Context == nil {
		return msg
	}
	node := pe.Context.Selected()
	name := "e2e"
	if node != nil {
		name = strings.TrimSpace(node.Path())
	}
	switch {
	case strings.HasPrefix(msg, "missing positional arguments ") || strings.HasPrefix(msg, "expected \"<"):
		var missing []string
		if node != nil {
			for _, arg := range node.Positional {
				if arg.Required && !arg.Set {
					missing = append(missing, strings.ToUpper(arg.Name))
				}
			}
		}
		if len(missing) > 0 {
			return fmt.Sprintf("%s needs %s: %s", name, joinAnd(missing), usageLine(node))
		}
	case strings.HasPrefix(msg, "missing flags: "):
		return fmt.Sprintf("%s needs %s (see e2e %s --help)", name, strings.TrimPrefix(msg, "missing flags: "), name)
	}
	if m := negativeNumber.FindStringSubmatch(msg); m != nil {
		// kong takes "-5" after a flag for a short flag; every e2e number
		// flag (counts, pids, ports) means nothing when negative.
		return fmt.Sprintf("%s %s: a negative number means nothing here: give 0 or more (see e2e %s --help)", m[1], m[2], name)
	}
	return msg
}

// negativeNumber matches kong's error for a number flag given a negative
// value ("--port -1"), which it takes for a short flag.
var negativeNumber = regexp.MustCompile(`^(--[a-z0-9-]+): expected int value but got "(-[0-9]+)" \(short flag\)`)

// usageLine is how a command is written, with its arguments in upper case:
// "e2e download SRC DST".
func usageLine(node *kong.Node) string {
	parts := []string{node.FullPath(), "[flags]"}
	for _, arg := range node.Positional {
		a := strings.ToUpper(arg.Name)
		if arg.Tag.PlaceHolder != "" {
			a = arg.Tag.PlaceHolder
		}
		if arg.IsCumulative() {
			a += " ..."
		}
		if arg.Tag.Optional {
			a = "[" + a + "]"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

func joinAnd(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// flagRule is a check of the flags given together to one command: Flag
// without any of Needs does nothing, or Flag with one of Excludes would
// silently lose to it (or win over it).
type flagRule struct {
	Flag     string
	Needs    []string
	Excludes []string
	Why      string
}

// flagRules are, per command, the flags that do nothing without another or
// that cannot be given together. Kong leaves these to the program.
var flagRules = map[string][]flagRule{
	"create": {
		{Flag: "extra-config", Needs: []string{"installer", "installer-url"}},
		{Flag: "genconf-dir", Needs: []string{"installer", "installer-url"}},
		{Flag: "ip-detect", Needs: []string{"installer", "installer-url"}},
		{Flag: "variant", Needs: []string{"installer", "installer-url"}},
		{Flag: "wait", Needs: []string{"installer", "installer-url"}},
		{Flag: "timeout", Needs: []string{"wait"}},
		{Flag: "skip-http-checks", Needs: []string{"wait"}},
		{Flag: "superuser-username", Needs: []string{"wait"}},
		{Flag: "superuser-password-file", Needs: []string{"wait"}},
	},
	"install": {
		{Flag: "script", Excludes: []string{"extra-config", "genconf-dir", "ip-detect", "variant"}, Why: "they are DC/OS installer flags"},
		{Flag: "script-arg", Needs: []string{"script"}},
		{Flag: "timeout", Needs: []string{"wait"}},
		{Flag: "skip-http-checks", Needs: []string{"wait"}},
		{Flag: "superuser-username", Needs: []string{"wait"}},
		{Flag: "superuser-password-file", Needs: []string{"wait"}},
	},
	"wait": {
		{Flag: "role", Needs: []string{"command"}},
		{Flag: "command", Excludes: []string{"skip-http-checks", "superuser-username", "superuser-password-file"},
			Why: "--command replaces DC/OS's checks"},
	},
	"run": {
		{Flag: "all", Excludes: []string{"node", "role"}, Why: "--all already means every node"},
		{Flag: "sudo", Excludes: []string{"user"}, Why: "--sudo runs as root, --user as that user"},
		{Flag: "json", Excludes: []string{"tty"}, Why: "--json captures the output"},
	},
	"send-file": {
		{Flag: "all", Excludes: []string{"node", "role"}, Why: "--all already means every node"},
	},
}

// checkFlags refuses what kong lets through silently: a flag of one
// value given twice (the last would win), and flags that do nothing
// without another or that cannot go together (flagRules).
func checkFlags(kctx *kong.Context) error {
	given := map[string]int{}
	for _, p := range kctx.Path {
		if p.Flag == nil {
			continue
		}
		given[p.Flag.Name]++
		v := p.Flag.Value
		if given[p.Flag.Name] == 2 && !v.IsSlice() && !v.IsMap() && !v.IsCounter() && !v.IsBool() {
			return invalid(fmt.Errorf("--%s is given more than once, but it takes one value: give it once", p.Flag.Name))
		}
	}
	node := kctx.Selected()
	if node == nil {
		return nil
	}
	for _, r := range flagRules[strings.TrimSpace(node.Path())] {
		if given[r.Flag] == 0 {
			continue
		}
		if len(r.Needs) > 0 && !slices.ContainsFunc(r.Needs, func(f string) bool { return given[f] > 0 }) {
			return invalid(fmt.Errorf("--%s does nothing without %s: add it, or leave --%s out", r.Flag, joinOr(r.Needs), r.Flag))
		}
		for _, x := range r.Excludes {
			if given[x] > 0 {
				return invalid(fmt.Errorf("--%s and --%s cannot be given together (%s): give one", r.Flag, x, r.Why))
			}
		}
	}
	return nil
}

func joinOr(flags []string) string {
	dashed := make([]string, len(flags))
	for i, f := range flags {
		dashed[i] = "--" + f
	}
	if len(dashed) < 2 {
		return strings.Join(dashed, "")
	}
	return strings.Join(dashed[:len(dashed)-1], ", ") + " or " + dashed[len(dashed)-1]
}

// existingMapper is kong's existingfile and existingdir with the error a
// user reads: "no such file: PATH", not the stat call that found it.
type existingMapper struct{ dir bool }

// Decode reads a path and checks that it is a file (or a directory).
func (m existingMapper) Decode(ctx *kong.DecodeContext, target reflect.Value) error {
	if target.Kind() != reflect.String {
		return fmt.Errorf("existingfile/existingdir applies to strings, not %s", target.Type())
	}
	var path string
	if err := ctx.Scan.PopValueInto("path", &path); err != nil {
		return err
	}
	path = kong.ExpandPath(path)
	if err := checkPath(path, m.dir); err != nil {
		return err
	}
	target.SetString(path)
	return nil
}

// checkPath says, in a user's words, why path is not an existing file (or
// directory when dir).
func checkPath(path string, dir bool) error {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if dir {
			return fmt.Errorf("no such directory: %s", path)
		}
		return fmt.Errorf("no such file: %s", path)
	case err != nil:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("cannot use %s: %v", path, err)
	case dir && !st.IsDir():
		return fmt.Errorf("%s is not a directory", path)
	case !dir && st.IsDir():
		return fmt.Errorf("%s is a directory, not a file", path)
	}
	return nil
}

// globalFlagsLast prints kong's help with the global flags (--plugin-dir,
// -v, --version) after the command's own, so that a command's help starts
// with what is particular to it.
func globalFlagsLast(options kong.HelpOptions, kctx *kong.Context) error {
	out := kctx.Stdout
	var buf bytes.Buffer
	kctx.Stdout = &buf
	err := kong.DefaultHelpPrinter(options, kctx)
	kctx.Stdout = out
	if err != nil {
		return err
	}
	// Sections are separated by blank lines; the global flags go after
	// the command's flags, before any list of commands.
	var global, head, tail []string
	for _, s := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n\n") {
		switch {
		case strings.HasPrefix(s, "Global flags:"):
			global = append(global, s)
		case len(tail) > 0 || strings.HasPrefix(s, "Commands:") || strings.HasPrefix(s, "Run \""):
			tail = append(tail, s)
		default:
			head = append(head, s)
		}
	}
	sections := append(append(head, global...), tail...)
	_, err = io.WriteString(out, strings.Join(sections, "\n\n")+"\n")
	return err
}
