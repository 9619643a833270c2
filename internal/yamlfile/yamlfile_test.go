package yamlfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// bomb returns YAML whose aliases nest levels deep, ten to a level: it
// stands for 10^levels values in a few hundred bytes.
func bomb(levels int) string {
	lines := []string{"a0: &a0 [x, x, x, x, x, x, x, x, x, x]"}
	for i := 1; i < levels; i++ {
		lines = append(lines, fmt.Sprintf("a%d: &a%d [%s]", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 10), ", ")))
	}
	return strings.Join(lines, "\n") + "\n"
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		ok   bool
	}{
		{"plain map", "backend: docker\nagents: 2\noptions: {memory: 2048}\n", true},
		{"aliases used as people do", "base: &base {memory: 2048, cpus: 2}\nmaster: *base\nagent: *base\n", true},
		{"four levels (10^4 values)", bomb(4), true},
		{"nine levels (10^9 values)", bomb(9), false},
		{"bomb in a second document", "a: 1\n---\n" + bomb(9), false},
		{"syntax error is left to the decoder", "a: [x\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check([]byte(tt.yaml))
			if (err == nil) != tt.ok {
				t.Fatalf("Check = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "more than 100000 values") {
				t.Errorf("error %q does not say what the limit is", err)
			}
			if tt.ok && tt.name != "syntax error is left to the decoder" {
				// What passes decodes.
				var v any
				if err := yaml.Unmarshal([]byte(tt.yaml), &v); err != nil {
					t.Errorf("decoding what Check passed: %v", err)
				}
			}
		})
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small.yaml")
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(small, []byte("agents: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, []byte(strings.Repeat("#", MaxBytes+1)), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, want string // want: a fragment of the error, or "" for success
	}{
		{small, ""},
		{big, "is 1048577 bytes; it may be at most 1048576"},
		{"/dev/zero", "/dev/zero is more than 1048576 bytes"},
		{filepath.Join(dir, "missing.yaml"), "no such file"},
	}
	for _, tt := range tests {
		b, err := Read(tt.path)
		switch {
		case tt.want == "" && (err != nil || string(b) != "agents: 2\n"):
			t.Errorf("Read(%s) = %q, %v", tt.path, b, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("Read(%s) error = %v, want %q", tt.path, err, tt.want)
		}
	}
}
