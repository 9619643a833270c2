package cluster

import (
	"testing"

	"github.com/e2e-tool/e2e/sdk"
)

// TestOptionErrorHint: the pointer to `e2e plugin info` is added only when
// a refusal names an option, and never beside a hint of the backend's own:
// a refused --ssh-user or node count is not about an option.
func TestOptionErrorHint(t *testing.T) {
	for _, tt := range []struct {
		name  string
		diags []sdk.Diagnostic
		want  string
	}{
		{"an option", []sdk.Diagnostic{sdk.Errorf("memory", `option "memory": expected an integer, got "lots"`)},
			`example: option "memory": expected an integer, got "lots" (see ` + "`e2e plugin info example`)"},
		{"no option", []sdk.Diagnostic{sdk.Errorf("", `SSH user "nosuchuser" does not exist in the node image: use an image that has it, or --ssh-user root`)},
			`example: SSH user "nosuchuser" does not exist in the node image: use an image that has it, or --ssh-user root`},
		{"a hint of its own", []sdk.Diagnostic{sdk.Errorf("network", `option "network": no network "x" (see docker network ls)`)},
			`example: option "network": no network "x" (see docker network ls)`},
		{"one option among others", []sdk.Diagnostic{sdk.Errorf("", "at most 3 masters, not 5"), sdk.Errorf("memory", `option "memory": too little`)},
			`example: at most 3 masters, not 5; option "memory": too little (see ` + "`e2e plugin info example`)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := sdkInvalid(&sdk.DiagnosticsError{Diagnostics: tt.diags}, "example")
			if err == nil || !IsInvalid(err) {
				t.Fatalf("sdkInvalid = %v, want an InvalidError", err)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n%s\nwant\n%s", err, tt.want)
			}
		})
	}
}
