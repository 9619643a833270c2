package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// OptionType is the type of a backend option's value.
type OptionType string

// Option types. Values travel as JSON; strings are accepted for every type
// and converted, so that `-o memory=2048` and `memory: 2048` in YAML agree.
const (
	TypeString   OptionType = "string"
	TypeInt      OptionType = "int"
	TypeBool     OptionType = "bool"
	TypeDuration OptionType = "duration"
	TypeList     OptionType = "list"
	TypeMap      OptionType = "map"
	TypeMounts   OptionType = "mounts"
)

// Option declares one option a backend takes.
type Option struct {
	// Name is snake_case, as given with -o and in the cluster file.
	Name string
	Type OptionType
	Help string
	// Default is used when the option is not given; nil means none.
	Default any
	// Required options must be given (or come from Env).
	Required bool
	// Secret options are never stored, logged or taken from the command
	// line; they come from Env.
	Secret bool
	// Env names an environment variable of the plugin's process that
	// supplies the value when it is not given.
	Env string
}

// StringOption declares a string option.
func StringOption(name, help string) Option { return Option{Name: name, Type: TypeString, Help: help} }

// IntOption declares an integer option.
func IntOption(name, help string) Option { return Option{Name: name, Type: TypeInt, Help: help} }

// BoolOption declares a boolean option.
func BoolOption(name, help string) Option { return Option{Name: name, Type: TypeBool, Help: help} }

// DurationOption declares a duration option ("90s", "1h").
func DurationOption(name, help string) Option {
	return Option{Name: name, Type: TypeDuration, Help: help}
}

// ListOption declares a list-of-strings option.
func ListOption(name, help string) Option { return Option{Name: name, Type: TypeList, Help: help} }

// MapOption declares a string-to-string map option.
func MapOption(name, help string) Option { return Option{Name: name, Type: TypeMap, Help: help} }

// MountsOption declares a list of docker-style mounts "src:dst[:ro|rw]".
func MountsOption(name, help string) Option { return Option{Name: name, Type: TypeMounts, Help: help} }

// WithDefault returns o with a default value.
func (o Option) WithDefault(v any) Option { o.Default = v; return o }

// MarkRequired returns o as a required option.
func (o Option) MarkRequired() Option { o.Required = true; return o }

// MarkSecret returns o as a secret read from the environment variable env.
func (o Option) MarkSecret(env string) Option { o.Secret = true; o.Env = env; return o }

// FromEnv returns o with an environment variable that supplies its value.
func (o Option) FromEnv(env string) Option { o.Env = env; return o }

// Schema is the set of options a backend takes.
type Schema []Option

// Lookup returns the option called name.
func (s Schema) Lookup(name string) (Option, bool) {
	for _, o := range s {
		if o.Name == name {
			return o, true
		}
	}
	return Option{}, false
}

// Names returns the option names, sorted.
func (s Schema) Names() []string {
	names := make([]string, 0, len(s))
	for _, o := range s {
		names = append(names, o.Name)
	}
	sort.Strings(names)
	return names
}

var optionName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Check reports mistakes in the schema itself; Serve refuses to start a
// backend whose schema is wrong, and sdktest checks it too.
func (s Schema) Check() error {
	seen := map[string]bool{}
	for _, o := range s {
		if !optionName.MatchString(o.Name) {
			return fmt.Errorf("option name %q is not snake_case", o.Name)
		}
		if seen[o.Name] {
			return fmt.Errorf("option %q is declared twice", o.Name)
		}
		seen[o.Name] = true
		switch o.Type {
		case TypeString, TypeInt, TypeBool, TypeDuration, TypeList, TypeMap, TypeMounts:
		default:
			return fmt.Errorf("option %q has unknown type %q", o.Name, o.Type)
		}
		if o.Secret && o.Env == "" {
			return fmt.Errorf("secret option %q needs an environment variable to come from", o.Name)
		}
		if o.Secret && o.Default != nil {
			return fmt.Errorf("secret option %q cannot have a default", o.Name)
		}
		if o.Default != nil {
			raw, err := defaultJSON(o)
			if err != nil {
				return fmt.Errorf("option %q: default: %w", o.Name, err)
			}
			if _, err := convert(o.Type, raw); err != nil {
				return fmt.Errorf("option %q: default %s: %w", o.Name, raw, err)
			}
		}
	}
	return nil
}

// defaultJSON encodes an option's default the way values travel, so that
// Go values such as time.Duration and []Mount work as defaults.
func defaultJSON(o Option) ([]byte, error) {
	switch d := o.Default.(type) {
	case time.Duration:
		return json.Marshal(d.String())
	case Mount:
		return json.Marshal([]string{d.String()})
	case []Mount:
		items := make([]string, 0, len(d))
		for _, m := range d {
			items = append(items, m.String())
		}
		return json.Marshal(items)
	}
	return json.Marshal(o.Default)
}

// Mount is one parsed mount option entry.
type Mount struct {
	Source   string
	Target   string
	ReadOnly bool
}

// String returns the mount in docker volume syntax.
func (m Mount) String() string {
	if m.ReadOnly {
		return m.Source + ":" + m.Target + ":ro"
	}
	return m.Source + ":" + m.Target
}

// ParseMount parses docker volume syntax "src:dst[:ro|rw]".
func ParseMount(s string) (Mount, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Mount{}, fmt.Errorf("mount %q is not SRC:DST[:ro|rw]", s)
	}
	m := Mount{Source: parts[0], Target: parts[1]}
	if m.Source == "" {
		return Mount{}, fmt.Errorf("mount %q has an empty source", s)
	}
	if !strings.HasPrefix(m.Target, "/") {
		return Mount{}, fmt.Errorf("mount %q: target %q is not an absolute path", s, m.Target)
	}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			m.ReadOnly = true
		case "rw":
		default:
			return Mount{}, fmt.Errorf("mount %q: mode %q is neither ro nor rw", s, parts[2])
		}
	}
	return m, nil
}

// convert turns a JSON value into the Go value of type t: string, int64,
// bool, time.Duration, []string, map[string]string or []Mount.
func convert(t OptionType, raw json.RawMessage) (any, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	// Numbers stay exact: an int option above 2^53 must not be rounded.
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	switch t {
	case TypeString:
		if s, ok := v.(string); ok {
			return s, nil
		}
		return nil, fmt.Errorf("expected a string, got %s", describe(v))
	case TypeInt:
		switch x := v.(type) {
		case json.Number:
			n, err := x.Int64()
			if err != nil {
				return nil, fmt.Errorf("expected an integer, got %v", x)
			}
			return n, nil
		case string:
			n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("expected an integer, got %q", x)
			}
			return n, nil
		}
		return nil, fmt.Errorf("expected an integer, got %s", describe(v))
	case TypeBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			b, err := strconv.ParseBool(x)
			if err != nil {
				return nil, fmt.Errorf("expected true or false, got %q", x)
			}
			return b, nil
		}
		return nil, fmt.Errorf("expected true or false, got %s", describe(v))
	case TypeDuration:
		if s, ok := v.(string); ok {
			d, err := time.ParseDuration(s)
			if err != nil {
				return nil, fmt.Errorf("expected a duration such as 90s or 1h, got %q", s)
			}
			return d, nil
		}
		return nil, fmt.Errorf("expected a duration such as 90s or 1h, got %s", describe(v))
	case TypeList, TypeMounts:
		var items []string
		switch x := v.(type) {
		case string:
			items = []string{x}
		case []any:
			for _, it := range x {
				s, ok := it.(string)
				if !ok {
					return nil, fmt.Errorf("expected a list of strings, got an item that is %s", describe(it))
				}
				items = append(items, s)
			}
		default:
			return nil, fmt.Errorf("expected a list of strings, got %s", describe(v))
		}
		if t == TypeList {
			return items, nil
		}
		mounts := make([]Mount, 0, len(items))
		for _, it := range items {
			m, err := ParseMount(it)
			if err != nil {
				return nil, err
			}
			mounts = append(mounts, m)
		}
		return mounts, nil
	case TypeMap:
		out := map[string]string{}
		addPair := func(s string) error {
			k, val, ok := strings.Cut(s, "=")
			if !ok || k == "" {
				return fmt.Errorf("expected KEY=VALUE, got %q", s)
			}
			out[k] = val
			return nil
		}
		switch x := v.(type) {
		case map[string]any:
			for k, it := range x {
				if k == "" {
					return nil, fmt.Errorf("expected non-empty keys, got an empty one")
				}
				s, ok := it.(string)
				if !ok {
					return nil, fmt.Errorf("expected string values, key %q is %s", k, describe(it))
				}
				out[k] = s
			}
		case string:
			if err := addPair(x); err != nil {
				return nil, err
			}
		case []any:
			for _, it := range x {
				s, ok := it.(string)
				if !ok {
					return nil, fmt.Errorf("expected KEY=VALUE strings, got %s", describe(it))
				}
				if err := addPair(s); err != nil {
					return nil, err
				}
			}
		default:
			return nil, fmt.Errorf("expected a map, got %s", describe(v))
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown option type %q", t)
}

// wanted says what a value of type t looks like, without quoting one.
func wanted(t OptionType) string {
	switch t {
	case TypeInt:
		return "an integer"
	case TypeBool:
		return "true or false"
	case TypeDuration:
		return "a duration such as 90s or 1h"
	case TypeList:
		return "a list of strings"
	case TypeMap:
		return "a map of KEY=VALUE"
	case TypeMounts:
		return "a list of mounts SRC:DST[:ro|rw]"
	}
	return "a " + string(t)
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("the string %q", x)
	case json.Number:
		return fmt.Sprintf("the number %v", x)
	case bool:
		return fmt.Sprintf("%v", x)
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	}
	return fmt.Sprintf("%T", v)
}

// Parse validates raw option values (a JSON object) against the schema,
// fills in environment values and defaults, and returns typed options. Every
// problem is reported as a diagnostic naming the option.
func (s Schema) Parse(raw []byte, getenv func(string) string) (Options, []Diagnostic) {
	if getenv == nil {
		getenv = os.Getenv
	}
	values := map[string]json.RawMessage{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &values); err != nil {
			return Options{}, []Diagnostic{{Severity: SeverityError, Summary: "options are not a JSON object: " + err.Error()}}
		}
	}
	var diags []Diagnostic
	opts := Options{values: map[string]any{}, set: map[string]bool{}, schema: s}
	for _, name := range slices.Sorted(maps.Keys(values)) {
		if _, ok := s.Lookup(name); !ok {
			diags = append(diags, Diagnostic{
				Severity: SeverityError, Option: name,
				Summary: fmt.Sprintf("unknown option %q", name),
				Detail:  "options of this backend: " + strings.Join(s.Names(), ", "),
			})
		}
	}
	for _, o := range s {
		rawValue, given := values[o.Name]
		if given && string(rawValue) == "null" {
			given = false
		}
		if !given && o.Env != "" {
			if ev := getenv(o.Env); ev != "" {
				rawValue, _ = json.Marshal(ev)
				given = true
			}
		}
		if given {
			v, err := convert(o.Type, rawValue)
			if err != nil {
				summary := fmt.Sprintf("option %q: %v", o.Name, err)
				if o.Secret {
					// Conversion errors quote the value; a secret's is
					// never repeated, only what was wanted.
					summary = fmt.Sprintf("option %q (secret, from %s): the value is not %s", o.Name, o.Env, wanted(o.Type))
				}
				diags = append(diags, Diagnostic{Severity: SeverityError, Option: o.Name, Summary: summary})
				continue
			}
			opts.values[o.Name] = v
			opts.set[o.Name] = true
			continue
		}
		if o.Default != nil {
			b, _ := defaultJSON(o)
			if v, err := convert(o.Type, b); err == nil {
				opts.values[o.Name] = v
			}
			continue
		}
		if o.Required {
			d := Diagnostic{Severity: SeverityError, Option: o.Name,
				Summary: fmt.Sprintf("option %q is required", o.Name), Detail: o.Help}
			if o.Env != "" {
				d.Summary += fmt.Sprintf(" (give it with -o %s=VALUE or set %s)", o.Name, o.Env)
			} else {
				d.Summary += fmt.Sprintf(" (give it with -o %s=VALUE)", o.Name)
			}
			if o.Secret {
				d.Summary = fmt.Sprintf("option %q is required: set the environment variable %s", o.Name, o.Env)
			}
			diags = append(diags, d)
		}
	}
	return opts, diags
}

// Options are validated option values with typed access. Asking for an
// option that is not in the schema, or as the wrong type, panics: that is a
// bug in the backend, and the SDK turns it into an error.
type Options struct {
	values map[string]any
	set    map[string]bool
	schema Schema
}

func (o Options) get(name string, t OptionType) any {
	opt, ok := o.schema.Lookup(name)
	if !ok {
		panic(fmt.Sprintf("sdk: option %q is not in the schema", name))
	}
	if opt.Type != t {
		panic(fmt.Sprintf("sdk: option %q is a %s, not a %s", name, opt.Type, t))
	}
	return o.values[name]
}

// IsSet reports whether the option was given (or came from its environment
// variable) rather than defaulted.
func (o Options) IsSet(name string) bool { return o.set[name] }

// String returns a string option.
func (o Options) String(name string) string {
	v, _ := o.get(name, TypeString).(string)
	return v
}

// Int returns an integer option.
func (o Options) Int(name string) int {
	v, _ := o.get(name, TypeInt).(int64)
	return int(v)
}

// Bool returns a boolean option.
func (o Options) Bool(name string) bool {
	v, _ := o.get(name, TypeBool).(bool)
	return v
}

// Duration returns a duration option.
func (o Options) Duration(name string) time.Duration {
	v, _ := o.get(name, TypeDuration).(time.Duration)
	return v
}

// List returns a list option.
func (o Options) List(name string) []string {
	v, _ := o.get(name, TypeList).([]string)
	return append([]string(nil), v...)
}

// Map returns a map option.
func (o Options) Map(name string) map[string]string {
	v, _ := o.get(name, TypeMap).(map[string]string)
	out := make(map[string]string, len(v))
	for k, val := range v {
		out[k] = val
	}
	return out
}

// Mounts returns a mounts option.
func (o Options) Mounts(name string) []Mount {
	v, _ := o.get(name, TypeMounts).([]Mount)
	return append([]Mount(nil), v...)
}

// Severity of a diagnostic.
type Severity string

// Severities.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Diagnostic is a problem with the input, naming the option at fault.
type Diagnostic struct {
	Severity Severity
	Option   string
	Summary  string
	Detail   string
}

// Errorf returns an error diagnostic for an option.
func Errorf(option, format string, args ...any) Diagnostic {
	return Diagnostic{Severity: SeverityError, Option: option, Summary: fmt.Sprintf(format, args...)}
}

// DiagnosticsError is the error of a call refused for bad input.
type DiagnosticsError struct {
	Diagnostics []Diagnostic
}

func (e *DiagnosticsError) Error() string {
	var parts []string
	for _, d := range e.Diagnostics {
		if d.Severity == SeverityError {
			parts = append(parts, d.Summary)
		}
	}
	return strings.Join(parts, "; ")
}

// HasErrors reports whether any diagnostic is an error.
func HasErrors(diags []Diagnostic) bool {
	for _, d := range diags {
		if d.Severity != SeverityWarning {
			return true
		}
	}
	return false
}
