package sdk

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testSchema has one option of every type, none required, no defaults.
func testSchema() Schema {
	return Schema{
		StringOption("name", "a name"),
		IntOption("memory", "memory in MiB"),
		BoolOption("privileged", "run privileged"),
		DurationOption("timeout", "how long to wait"),
		ListOption("tags", "tags"),
		MapOption("labels", "labels"),
		MountsOption("volumes", "volumes"),
	}
}

// noEnv is a getenv that sees an empty environment, so that tests never
// depend on the variables of the process running them.
func noEnv(string) string { return "" }

// fakeEnv returns a getenv that sees only env.
func fakeEnv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// value reads option name with the accessor of its type, as a backend
// would. Int values are returned as int64 so that tests of values above
// 2^53 compile on every platform.
func value(t *testing.T, s Schema, opts Options, name string) any {
	t.Helper()
	o, ok := s.Lookup(name)
	if !ok {
		t.Fatalf("option %q is not in the test schema", name)
	}
	switch o.Type {
	case TypeString:
		return opts.String(name)
	case TypeInt:
		return int64(opts.Int(name))
	case TypeBool:
		return opts.Bool(name)
	case TypeDuration:
		return opts.Duration(name)
	case TypeList:
		return opts.List(name)
	case TypeMap:
		return opts.Map(name)
	case TypeMounts:
		return opts.Mounts(name)
	}
	t.Fatalf("option %q has type %q", name, o.Type)
	return nil
}

func diagsString(diags []Diagnostic) string {
	var b strings.Builder
	for _, d := range diags {
		fmt.Fprintf(&b, "\n  %s option=%q summary=%q detail=%q", d.Severity, d.Option, d.Summary, d.Detail)
	}
	return b.String()
}

func TestParseValidValues(t *testing.T) {
	s := testSchema()
	tests := []struct {
		name   string
		option string
		json   string
		want   any
	}{
		{"string", "name", `"web"`, "web"},
		{"empty string", "name", `""`, ""},
		{"int native", "memory", `2048`, int64(2048)},
		{"int string", "memory", `"2048"`, int64(2048)},
		{"int string with spaces", "memory", `" 2048 "`, int64(2048)},
		{"int negative", "memory", `-1`, int64(-1)},
		{"int above 2^53 native", "memory", `9007199254740993`, int64(9007199254740993)},
		{"int above 2^53 string", "memory", `"9007199254740993"`, int64(9007199254740993)},
		{"bool native true", "privileged", `true`, true},
		{"bool native false", "privileged", `false`, false},
		{"bool string true", "privileged", `"true"`, true},
		{"bool string false", "privileged", `"false"`, false},
		{"duration seconds", "timeout", `"90s"`, 90 * time.Second},
		{"duration compound", "timeout", `"1h30m"`, 90 * time.Minute},
		{"list native", "tags", `["a","b"]`, []string{"a", "b"}},
		{"list single string", "tags", `"a"`, []string{"a"}},
		{"map native", "labels", `{"k":"v"}`, map[string]string{"k": "v"}},
		{"map single pair", "labels", `"k=v"`, map[string]string{"k": "v"}},
		{"map list of pairs", "labels", `["k=v","k2=v2"]`, map[string]string{"k": "v", "k2": "v2"}},
		{"map value with equals", "labels", `"k=a=b"`, map[string]string{"k": "a=b"}},
		{"map empty value", "labels", `"k="`, map[string]string{"k": ""}},
		{"mounts single read-only", "volumes", `"/src:/dst:ro"`, []Mount{{Source: "/src", Target: "/dst", ReadOnly: true}}},
		{"mounts list", "volumes", `["/a:/b","vol:/c:rw"]`, []Mount{{Source: "/a", Target: "/b"}, {Source: "vol", Target: "/c"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := fmt.Sprintf(`{%q: %s}`, tt.option, tt.json)
			opts, diags := s.Parse([]byte(raw), noEnv)
			if len(diags) != 0 {
				t.Fatalf("Parse(%s): unexpected diagnostics:%s", raw, diagsString(diags))
			}
			if got := value(t, s, opts, tt.option); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%s): %s = %#v, want %#v", raw, tt.option, got, tt.want)
			}
			if !opts.IsSet(tt.option) {
				t.Errorf("Parse(%s): IsSet(%q) = false, want true", raw, tt.option)
			}
			for _, other := range s.Names() {
				if other != tt.option && opts.IsSet(other) {
					t.Errorf("Parse(%s): IsSet(%q) = true for an option not given", raw, other)
				}
			}
		})
	}
}

func TestParseAllOptionsAtOnce(t *testing.T) {
	s := testSchema()
	raw := `{
		"name": "web", "memory": "2048", "privileged": true, "timeout": "90s",
		"tags": ["a", "b"], "labels": ["k=v"], "volumes": "/src:/dst:ro"
	}`
	opts, diags := s.Parse([]byte(raw), noEnv)
	if len(diags) != 0 {
		t.Fatalf("unexpected diagnostics:%s", diagsString(diags))
	}
	want := map[string]any{
		"name": "web", "memory": int64(2048), "privileged": true, "timeout": 90 * time.Second,
		"tags": []string{"a", "b"}, "labels": map[string]string{"k": "v"},
		"volumes": []Mount{{Source: "/src", Target: "/dst", ReadOnly: true}},
	}
	for name, w := range want {
		if got := value(t, s, opts, name); !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %#v, want %#v", name, got, w)
		}
		if !opts.IsSet(name) {
			t.Errorf("IsSet(%q) = false, want true", name)
		}
	}
}

func TestParseEmptyInput(t *testing.T) {
	s := testSchema()
	want := map[string]any{
		"name": "", "memory": int64(0), "privileged": false, "timeout": time.Duration(0),
		"tags": []string(nil), "labels": map[string]string{}, "volumes": []Mount(nil),
	}
	for _, raw := range []string{"", "{}", "null", " { } "} {
		t.Run(fmt.Sprintf("%q", raw), func(t *testing.T) {
			opts, diags := s.Parse([]byte(raw), noEnv)
			if len(diags) != 0 {
				t.Fatalf("unexpected diagnostics:%s", diagsString(diags))
			}
			for name, w := range want {
				if got := value(t, s, opts, name); !reflect.DeepEqual(got, w) {
					t.Errorf("%s = %#v, want the zero value %#v", name, got, w)
				}
				if opts.IsSet(name) {
					t.Errorf("IsSet(%q) = true, want false", name)
				}
			}
		})
	}
}

func TestParseDefaults(t *testing.T) {
	s := Schema{
		StringOption("name", "").WithDefault("web"),
		IntOption("memory", "").WithDefault(1024),
		IntOption("big", "").WithDefault(int64(9007199254740993)),
		BoolOption("privileged", "").WithDefault(true),
		DurationOption("timeout", "").WithDefault("5m"),
		ListOption("tags", "").WithDefault([]string{"a", "b"}),
		MapOption("labels", "").WithDefault(map[string]string{"k": "v"}),
		MountsOption("volumes", "").WithDefault([]string{"/a:/b:ro"}),
		// A required option with a default is satisfied by the default.
		StringOption("region", "").WithDefault("eu").MarkRequired(),
	}
	if err := s.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	want := map[string]any{
		"name": "web", "memory": int64(1024), "big": int64(9007199254740993), "privileged": true,
		"timeout": 5 * time.Minute, "tags": []string{"a", "b"}, "labels": map[string]string{"k": "v"},
		"volumes": []Mount{{Source: "/a", Target: "/b", ReadOnly: true}}, "region": "eu",
	}
	tests := []struct {
		name string
		raw  string
	}{
		{"nothing given", `{}`},
		{"null given", `{"name": null, "memory": null, "big": null, "privileged": null, "timeout": null,
			"tags": null, "labels": null, "volumes": null, "region": null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, diags := s.Parse([]byte(tt.raw), noEnv)
			if len(diags) != 0 {
				t.Fatalf("unexpected diagnostics:%s", diagsString(diags))
			}
			for name, w := range want {
				if got := value(t, s, opts, name); !reflect.DeepEqual(got, w) {
					t.Errorf("%s = %#v, want default %#v", name, got, w)
				}
				if opts.IsSet(name) {
					t.Errorf("IsSet(%q) = true for a defaulted option, want false", name)
				}
			}
		})
	}

	t.Run("given value beats default", func(t *testing.T) {
		opts, diags := s.Parse([]byte(`{"memory": 4096, "privileged": false}`), noEnv)
		if len(diags) != 0 {
			t.Fatalf("unexpected diagnostics:%s", diagsString(diags))
		}
		if got := opts.Int("memory"); got != 4096 {
			t.Errorf("memory = %d, want 4096", got)
		}
		if got := opts.Bool("privileged"); got {
			t.Errorf("privileged = true, want the given false over the default true")
		}
		if !opts.IsSet("memory") || !opts.IsSet("privileged") {
			t.Errorf("IsSet = false for given options")
		}
		if opts.IsSet("name") {
			t.Errorf("IsSet(name) = true for a defaulted option")
		}
	})
}

func TestParseEnv(t *testing.T) {
	s := Schema{
		IntOption("memory", "").FromEnv("E2E_MEMORY").WithDefault(512),
		BoolOption("debug", "").FromEnv("E2E_DEBUG"),
		ListOption("tags", "").FromEnv("E2E_TAGS"),
		MapOption("labels", "").FromEnv("E2E_LABELS"),
		StringOption("region", "").FromEnv("E2E_REGION").MarkRequired(),
		StringOption("token", "").MarkSecret("E2E_TOKEN").MarkRequired(),
	}
	if err := s.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	base := map[string]string{"E2E_REGION": "eu", "E2E_TOKEN": "s3cret"}
	tests := []struct {
		name   string
		raw    string
		env    map[string]string
		option string
		want   any
		isSet  bool
	}{
		{"env supplies int", `{}`, map[string]string{"E2E_MEMORY": "4096"}, "memory", int64(4096), true},
		{"given value beats env", `{"memory": 2048}`, map[string]string{"E2E_MEMORY": "4096"}, "memory", int64(2048), true},
		{"given string value beats env", `{"memory": "2048"}`, map[string]string{"E2E_MEMORY": "4096"}, "memory", int64(2048), true},
		{"null given falls back to env", `{"memory": null}`, map[string]string{"E2E_MEMORY": "4096"}, "memory", int64(4096), true},
		{"empty env var is not set", `{}`, map[string]string{"E2E_MEMORY": ""}, "memory", int64(512), false},
		{"unset env var gives default", `{}`, nil, "memory", int64(512), false},
		{"env supplies bool", `{}`, map[string]string{"E2E_DEBUG": "true"}, "debug", true, true},
		{"env supplies list item", `{}`, map[string]string{"E2E_TAGS": "a"}, "tags", []string{"a"}, true},
		{"env supplies map pair", `{}`, map[string]string{"E2E_LABELS": "k=v"}, "labels", map[string]string{"k": "v"}, true},
		{"env satisfies required", `{}`, nil, "region", "eu", true},
		{"env supplies secret", `{}`, nil, "token", "s3cret", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			opts, diags := s.Parse([]byte(tt.raw), fakeEnv(env))
			if len(diags) != 0 {
				t.Fatalf("unexpected diagnostics:%s", diagsString(diags))
			}
			if got := value(t, s, opts, tt.option); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s = %#v, want %#v", tt.option, got, tt.want)
			}
			if got := opts.IsSet(tt.option); got != tt.isSet {
				t.Errorf("IsSet(%q) = %v, want %v", tt.option, got, tt.isSet)
			}
		})
	}

	t.Run("bad env value names the option", func(t *testing.T) {
		env := map[string]string{"E2E_REGION": "eu", "E2E_TOKEN": "x", "E2E_MEMORY": "lots"}
		_, diags := s.Parse([]byte(`{}`), fakeEnv(env))
		if len(diags) != 1 || diags[0].Option != "memory" || diags[0].Severity != SeverityError {
			t.Fatalf("want one error diagnostic for memory, got:%s", diagsString(diags))
		}
	})
}

func TestParseRequired(t *testing.T) {
	tests := []struct {
		name        string
		opt         Option
		raw         string
		contains    []string
		notContains []string
	}{
		{
			name:     "no env",
			opt:      StringOption("image", "the image to run").MarkRequired(),
			raw:      `{}`,
			contains: []string{`"image"`, "required", "-o image=VALUE"},
		},
		{
			name:     "null counts as not given",
			opt:      StringOption("image", "the image to run").MarkRequired(),
			raw:      `{"image": null}`,
			contains: []string{`"image"`, "required", "-o image=VALUE"},
		},
		{
			name:     "with env",
			opt:      StringOption("region", "the region").FromEnv("E2E_REGION").MarkRequired(),
			raw:      `{}`,
			contains: []string{`"region"`, "required", "-o region=VALUE", "E2E_REGION"},
		},
		{
			name:        "secret",
			opt:         StringOption("token", "the API token").MarkSecret("E2E_TOKEN").MarkRequired(),
			raw:         `{}`,
			contains:    []string{`"token"`, "required", "environment variable E2E_TOKEN"},
			notContains: []string{"-o token"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Schema{tt.opt, StringOption("other", "")}
			if err := s.Check(); err != nil {
				t.Fatalf("Check: %v", err)
			}
			opts, diags := s.Parse([]byte(tt.raw), noEnv)
			if len(diags) != 1 {
				t.Fatalf("want one diagnostic, got:%s", diagsString(diags))
			}
			d := diags[0]
			if d.Option != tt.opt.Name {
				t.Errorf("Option = %q, want %q", d.Option, tt.opt.Name)
			}
			if d.Severity != SeverityError || !HasErrors(diags) {
				t.Errorf("Severity = %q, want error", d.Severity)
			}
			for _, c := range tt.contains {
				if !strings.Contains(d.Summary, c) {
					t.Errorf("Summary %q does not contain %q", d.Summary, c)
				}
			}
			for _, c := range tt.notContains {
				if strings.Contains(d.Summary, c) {
					t.Errorf("Summary %q contains %q", d.Summary, c)
				}
			}
			if d.Detail != tt.opt.Help {
				t.Errorf("Detail = %q, want the option's help %q", d.Detail, tt.opt.Help)
			}
			if opts.IsSet(tt.opt.Name) {
				t.Errorf("IsSet(%q) = true for a missing option", tt.opt.Name)
			}
		})
	}
}

func TestParseUnknownOptions(t *testing.T) {
	s := testSchema()
	tests := []struct {
		name    string
		raw     string
		unknown []string // in the order diagnostics are expected
	}{
		{"one unknown", `{"bogus": 1}`, []string{"bogus"}},
		{"unknown null", `{"bogus": null}`, []string{"bogus"}},
		{"unknown beside known", `{"name": "web", "mem": 2048}`, []string{"mem"}},
		{"several unknown, sorted", `{"zeta": 1, "alpha": "x", "name": "web"}`, []string{"alpha", "zeta"}},
		{"case matters", `{"Name": "web"}`, []string{"Name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := s.Parse([]byte(tt.raw), noEnv)
			if len(diags) != len(tt.unknown) {
				t.Fatalf("want %d diagnostics, got:%s", len(tt.unknown), diagsString(diags))
			}
			for i, name := range tt.unknown {
				d := diags[i]
				if d.Option != name {
					t.Errorf("diagnostic %d: Option = %q, want %q", i, d.Option, name)
				}
				if d.Severity != SeverityError {
					t.Errorf("diagnostic %d: Severity = %q, want error", i, d.Severity)
				}
				if !strings.Contains(d.Summary, name) {
					t.Errorf("diagnostic %d: Summary %q does not name %q", i, d.Summary, name)
				}
				for _, known := range s.Names() {
					if !strings.Contains(d.Detail, known) {
						t.Errorf("diagnostic %d: Detail %q does not list known option %q", i, d.Detail, known)
					}
				}
			}
		})
	}
}

func TestParseWrongTypes(t *testing.T) {
	s := testSchema()
	tests := []struct {
		name   string
		option string
		json   string
	}{
		{"string given a number", "name", `5`},
		{"string given a list", "name", `["a"]`},
		{"int not a number", "memory", `"abc"`},
		{"int fraction", "memory", `1.5`},
		{"int fraction string", "memory", `"1.5"`},
		{"int bool", "memory", `true`},
		{"int overflow", "memory", `99999999999999999999`},
		{"bool maybe", "privileged", `"maybe"`},
		{"bool number", "privileged", `2`},
		{"duration soon", "timeout", `"soon"`},
		{"duration bare number", "timeout", `90`},
		{"list number", "tags", `5`},
		{"list of numbers", "tags", `[1, 2]`},
		{"list map", "tags", `{"a":"b"}`},
		{"map number", "labels", `5`},
		{"map no value", "labels", `"novalue"`},
		{"map empty key", "labels", `"=v"`},
		{"map pair list with bad item", "labels", `["k=v","novalue"]`},
		{"map pair list with number", "labels", `["k=v", 5]`},
		{"map non-string value", "labels", `{"k": 1}`},
		{"mounts no colon", "volumes", `"nocolon"`},
		{"mounts relative target", "volumes", `"src:relative"`},
		{"mounts bad mode", "volumes", `"/a:/b:rx"`},
		{"mounts empty source", "volumes", `":/b"`},
		{"mounts too many parts", "volumes", `"/a:/b:ro:x"`},
		{"mounts bad item in list", "volumes", `["/a:/b", "nocolon"]`},
		{"mounts number", "volumes", `5`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := fmt.Sprintf(`{%q: %s}`, tt.option, tt.json)
			opts, diags := s.Parse([]byte(raw), noEnv)
			if len(diags) != 1 {
				t.Fatalf("Parse(%s): want one diagnostic, got:%s", raw, diagsString(diags))
			}
			d := diags[0]
			if d.Option != tt.option {
				t.Errorf("Option = %q, want %q", d.Option, tt.option)
			}
			if d.Severity != SeverityError {
				t.Errorf("Severity = %q, want error", d.Severity)
			}
			if !strings.Contains(d.Summary, tt.option) {
				t.Errorf("Summary %q does not name the option %q", d.Summary, tt.option)
			}
			if opts.IsSet(tt.option) {
				t.Errorf("IsSet(%q) = true for a refused value", tt.option)
			}
		})
	}

	t.Run("every bad option is reported", func(t *testing.T) {
		raw := `{"memory": "abc", "privileged": "maybe", "volumes": "nocolon", "bogus": 1}`
		_, diags := s.Parse([]byte(raw), noEnv)
		got := map[string]bool{}
		for _, d := range diags {
			got[d.Option] = true
		}
		want := map[string]bool{"memory": true, "privileged": true, "volumes": true, "bogus": true}
		if len(diags) != len(want) || !reflect.DeepEqual(got, want) {
			t.Errorf("want one diagnostic for each of %v, got:%s", want, diagsString(diags))
		}
	})
}

func TestParseNotAnObject(t *testing.T) {
	s := testSchema()
	for _, raw := range []string{`[1, 2]`, `"name=web"`, `42`, `true`, `{`, `{"name": "web"`, `name=web`} {
		t.Run(raw, func(t *testing.T) {
			_, diags := s.Parse([]byte(raw), noEnv)
			if len(diags) != 1 {
				t.Fatalf("Parse(%s): want one diagnostic, got:%s", raw, diagsString(diags))
			}
			if diags[0].Severity != SeverityError {
				t.Errorf("Severity = %q, want error", diags[0].Severity)
			}
			if !strings.Contains(diags[0].Summary, "JSON object") {
				t.Errorf("Summary %q does not say the options are not a JSON object", diags[0].Summary)
			}
		})
	}
}

func TestParseNilGetenvUsesProcessEnvironment(t *testing.T) {
	t.Setenv("E2E_SDK_TEST_MEMORY", "1234")
	s := Schema{IntOption("memory", "").FromEnv("E2E_SDK_TEST_MEMORY")}
	opts, diags := s.Parse(nil, nil)
	if len(diags) != 0 {
		t.Fatalf("unexpected diagnostics:%s", diagsString(diags))
	}
	if got := opts.Int("memory"); got != 1234 {
		t.Errorf("memory = %d, want 1234 from the process environment", got)
	}
}

func TestOptionsAccessorsReturnCopies(t *testing.T) {
	s := testSchema()
	opts, diags := s.Parse([]byte(`{"tags": ["a"], "labels": {"k": "v"}, "volumes": "/a:/b"}`), noEnv)
	if len(diags) != 0 {
		t.Fatalf("unexpected diagnostics:%s", diagsString(diags))
	}
	opts.List("tags")[0] = "changed"
	opts.Map("labels")["k"] = "changed"
	opts.Mounts("volumes")[0].Source = "changed"
	if got := opts.List("tags"); !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("tags = %v after changing a returned copy", got)
	}
	if got := opts.Map("labels"); !reflect.DeepEqual(got, map[string]string{"k": "v"}) {
		t.Errorf("labels = %v after changing a returned copy", got)
	}
	if got := opts.Mounts("volumes"); got[0].Source != "/a" {
		t.Errorf("volumes = %v after changing a returned copy", got)
	}
}

func TestSchemaCheck(t *testing.T) {
	tests := []struct {
		name    string
		schema  Schema
		wantErr string // substring of the error; "" means Check must pass
	}{
		{"nil schema", nil, ""},
		{"empty schema", Schema{}, ""},
		{"good schema", Schema{
			StringOption("name", "").WithDefault("web"),
			IntOption("memory", "").WithDefault(2048),
			IntOption("memory_string", "").WithDefault("2048"),
			BoolOption("privileged", "").WithDefault(false),
			DurationOption("timeout", "").WithDefault("90s"),
			ListOption("tags", "").WithDefault([]string{"a"}),
			ListOption("tag", "").WithDefault("a"),
			MapOption("labels", "").WithDefault(map[string]string{"k": "v"}),
			MapOption("label_pairs", "").WithDefault([]string{"k=v"}),
			MountsOption("volumes", "").WithDefault([]string{"/a:/b:ro"}),
			StringOption("token", "").MarkSecret("E2E_TOKEN").MarkRequired(),
			StringOption("region", "").FromEnv("E2E_REGION").MarkRequired(),
			StringOption("v2_name", ""),
		}, ""},
		{"capitalised name", Schema{StringOption("Name", "")}, `"Name"`},
		{"kebab-case name", Schema{StringOption("mem-size", "")}, `"mem-size"`},
		{"name starting with a digit", Schema{StringOption("1abc", "")}, `"1abc"`},
		{"name starting with underscore", Schema{StringOption("_x", "")}, `"_x"`},
		{"name with a space", Schema{StringOption("a b", "")}, `"a b"`},
		{"empty name", Schema{StringOption("", "")}, `""`},
		{"duplicate name", Schema{StringOption("name", ""), IntOption("name", "")}, `"name"`},
		{"unknown type", Schema{{Name: "ratio", Type: "float"}}, `"ratio"`},
		{"empty type", Schema{{Name: "ratio"}}, `"ratio"`},
		{"secret without env", Schema{{Name: "token", Type: TypeString, Secret: true}}, `"token"`},
		{"secret with default", Schema{StringOption("token", "").MarkSecret("E2E_TOKEN").WithDefault("x")}, `"token"`},
		{"string default is a number", Schema{StringOption("name", "").WithDefault(5)}, `"name"`},
		{"int default not a number", Schema{IntOption("memory", "").WithDefault("abc")}, `"memory"`},
		{"int default fraction", Schema{IntOption("memory", "").WithDefault(1.5)}, `"memory"`},
		{"bool default not a bool", Schema{BoolOption("privileged", "").WithDefault("yes please")}, `"privileged"`},
		{"duration default not a duration", Schema{DurationOption("timeout", "").WithDefault("soon")}, `"timeout"`},
		{"list default a number", Schema{ListOption("tags", "").WithDefault(5)}, `"tags"`},
		{"map default without value", Schema{MapOption("labels", "").WithDefault("novalue")}, `"labels"`},
		{"mounts default not a mount", Schema{MountsOption("volumes", "").WithDefault("nocolon")}, `"volumes"`},
		{"default that is not JSON", Schema{StringOption("name", "").WithDefault(make(chan int))}, `"name"`},
		{"later option is checked too", Schema{StringOption("ok", ""), IntOption("Bad", "")}, `"Bad"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.schema.Check()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Check() = %v, want nil", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("Check() = nil, want an error naming %s", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("Check() = %q, want it to name %s", err, tt.wantErr)
			}
		})
	}
}

func TestParseMount(t *testing.T) {
	valid := []struct {
		in   string
		want Mount
		str  string // Mount.String of the result
	}{
		{"/src:/dst", Mount{Source: "/src", Target: "/dst"}, "/src:/dst"},
		{"/src:/dst:ro", Mount{Source: "/src", Target: "/dst", ReadOnly: true}, "/src:/dst:ro"},
		{"/src:/dst:rw", Mount{Source: "/src", Target: "/dst"}, "/src:/dst"},
		{"named_volume:/data", Mount{Source: "named_volume", Target: "/data"}, "named_volume:/data"},
		{"./rel:/", Mount{Source: "./rel", Target: "/"}, "./rel:/"},
	}
	for _, tt := range valid {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseMount(tt.in)
			if err != nil {
				t.Fatalf("ParseMount(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseMount(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
			if s := got.String(); s != tt.str {
				t.Errorf("String() = %q, want %q", s, tt.str)
			}
			again, err := ParseMount(got.String())
			if err != nil {
				t.Fatalf("ParseMount(%q) of String(): %v", got.String(), err)
			}
			if again != got {
				t.Errorf("round trip: ParseMount(%q) = %#v, want %#v", got.String(), again, got)
			}
		})
	}

	invalid := []string{"", "nocolon", ":/dst", "src:", "src:relative", "/a:/b:rx", "/a:/b:RO", "/a:/b:", "/a:/b:ro:x"}
	for _, in := range invalid {
		t.Run("invalid "+in, func(t *testing.T) {
			if m, err := ParseMount(in); err == nil {
				t.Errorf("ParseMount(%q) = %#v, want an error", in, m)
			} else if !strings.Contains(err.Error(), fmt.Sprintf("%q", in)) {
				t.Errorf("ParseMount(%q) error %q does not quote the input", in, err)
			}
		})
	}

	// Every Mount a backend may build with a usable source and absolute
	// target survives String and ParseMount unchanged.
	for _, m := range []Mount{
		{Source: "/a", Target: "/b"},
		{Source: "/a", Target: "/b", ReadOnly: true},
		{Source: "vol", Target: "/var/lib/x", ReadOnly: true},
	} {
		got, err := ParseMount(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMount(%q) = %#v, %v; want %#v", m.String(), got, err, m)
		}
	}
}

// recoverPanic runs f and returns what it panicked with, or nil.
func recoverPanic(f func()) (p any) {
	defer func() { p = recover() }()
	f()
	return nil
}

func TestOptionsAccessPanics(t *testing.T) {
	s := testSchema()
	opts, diags := s.Parse([]byte(`{"name": "web", "memory": 1}`), noEnv)
	if len(diags) != 0 {
		t.Fatalf("unexpected diagnostics:%s", diagsString(diags))
	}
	tests := []struct {
		name   string
		option string
		call   func()
	}{
		{"String of unknown option", "nope", func() { opts.String("nope") }},
		{"Int of unknown option", "nope", func() { opts.Int("nope") }},
		{"Mounts of unknown option", "nope", func() { opts.Mounts("nope") }},
		{"Int of a string option", "name", func() { opts.Int("name") }},
		{"String of an int option", "memory", func() { opts.String("memory") }},
		{"Bool of an int option", "memory", func() { opts.Bool("memory") }},
		{"Duration of a list option", "tags", func() { opts.Duration("tags") }},
		{"List of a map option", "labels", func() { opts.List("labels") }},
		{"Map of a mounts option", "volumes", func() { opts.Map("volumes") }},
		{"Mounts of a list option", "tags", func() { opts.Mounts("tags") }},
		{"zero Options", "name", func() { Options{}.String("name") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := recoverPanic(tt.call)
			if p == nil {
				t.Fatalf("no panic")
			}
			if msg := fmt.Sprint(p); !strings.Contains(msg, fmt.Sprintf("%q", tt.option)) {
				t.Errorf("panic %q does not name option %q", msg, tt.option)
			}
		})
	}

	// The right accessor does not panic, whether or not the option is set.
	for _, name := range s.Names() {
		if p := recoverPanic(func() { value(t, s, opts, name) }); p != nil {
			t.Errorf("accessing %q with its own type panicked: %v", name, p)
		}
	}
	if p := recoverPanic(func() { opts.IsSet("nope") }); p != nil {
		t.Errorf("IsSet of an unknown option panicked: %v", p)
	}
}

func TestDiagnosticsError(t *testing.T) {
	diags := []Diagnostic{
		Errorf("memory", "option %q: too small", "memory"),
		{Severity: SeverityWarning, Option: "name", Summary: "name is long"},
		Errorf("tags", "bad tags"),
	}
	err := &DiagnosticsError{Diagnostics: diags}
	if got, want := err.Error(), `option "memory": too small; bad tags`; got != want {
		t.Errorf("Error() = %q, want %q (errors only)", got, want)
	}
	tests := []struct {
		name  string
		diags []Diagnostic
		want  bool
	}{
		{"none", nil, false},
		{"warnings only", []Diagnostic{{Severity: SeverityWarning}}, false},
		{"an error", diags, true},
		{"empty severity counts as an error", []Diagnostic{{Summary: "x"}}, true},
	}
	for _, tt := range tests {
		if got := HasErrors(tt.diags); got != tt.want {
			t.Errorf("HasErrors(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// Go values a plugin author naturally writes as defaults.
func TestGoValueDefaults(t *testing.T) {
	s := Schema{
		DurationOption("timeout", "").WithDefault(10 * time.Minute),
		MountsOption("mounts", "").WithDefault([]Mount{{Source: "/a", Target: "/b", ReadOnly: true}}),
	}
	if err := s.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	opts, diags := s.Parse(nil, func(string) string { return "" })
	if len(diags) != 0 {
		t.Fatalf("diagnostics: %+v", diags)
	}
	if got := opts.Duration("timeout"); got != 10*time.Minute {
		t.Errorf("timeout = %v", got)
	}
	if got := opts.Mounts("mounts"); len(got) != 1 || got[0].String() != "/a:/b:ro" {
		t.Errorf("mounts = %v", got)
	}
	desc := describeResponse(minimalBackend{}, Info{Name: "x", Version: "1", Options: s})
	if got := desc.GetOptions()[0].GetDefaultJson(); got != `"10m0s"` {
		t.Errorf("described default = %s, want \"10m0s\"", got)
	}
}

// TestParseSecretValuesAreNeverQuoted: a secret with a value of the wrong
// type is reported by option name and wanted type; the value itself
// appears in no diagnostic.
func TestParseSecretValuesAreNeverQuoted(t *testing.T) {
	const secret = "hunter2-very-secret"
	tests := []struct {
		opt  Option
		want string
	}{
		{IntOption("pin", "").MarkSecret("E2E_PIN"), "an integer"},
		{BoolOption("flag", "").MarkSecret("E2E_FLAG"), "true or false"},
		{DurationOption("ttl", "").MarkSecret("E2E_TTL"), "duration"},
		{MapOption("creds", "").MarkSecret("E2E_CREDS"), "KEY=VALUE"},
		{MountsOption("vols", "").MarkSecret("E2E_VOLS"), "SRC:DST"},
	}
	for _, tt := range tests {
		t.Run(tt.opt.Name, func(t *testing.T) {
			_, diags := Schema{tt.opt}.Parse(nil, fakeEnv(map[string]string{tt.opt.Env: secret}))
			if len(diags) != 1 {
				t.Fatalf("want one diagnostic, got:%s", diagsString(diags))
			}
			d := diags[0]
			if !strings.Contains(d.Summary, `"`+tt.opt.Name+`"`) || !strings.Contains(d.Summary, tt.want) || !strings.Contains(d.Summary, tt.opt.Env) {
				t.Errorf("summary %q does not name the option, its variable and %q", d.Summary, tt.want)
			}
			if strings.Contains(d.Summary+d.Detail, "hunter2") {
				t.Errorf("diagnostic repeats the secret: %+v", d)
			}
		})
	}
}
