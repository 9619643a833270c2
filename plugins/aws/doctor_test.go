package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/e2e-tool/e2e/sdk"
)

// TestDoctor: credentials are found where the user put them and never
// shown; missing ones and a missing region fail with the fix. Nothing is
// dialled: the metadata service is off and the key is static.
func TestDoctor(t *testing.T) {
	const key, secret = "AKIADOCTORTESTKEY000", "doctor-test-secret-value-0000000000000000"
	for _, tc := range []struct {
		name string
		env  map[string]string
		want map[string]bool // check name: ok
		fix  string          // what every failed check's fix names
	}{
		{"static keys and region", map[string]string{"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": "us-east-1"},
			map[string]bool{"AWS credentials found": true, "AWS region": true}, ""},
		{"profile", map[string]string{"AWS_PROFILE": "doc"},
			map[string]bool{"AWS credentials found": true, "AWS region": true}, ""},
		{"nothing", map[string]string{},
			map[string]bool{"AWS credentials found": false, "AWS region": false}, "AWS_"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			cfg := filepath.Join(home, "config")
			creds := filepath.Join(home, "credentials")
			if err := os.WriteFile(cfg, []byte("[profile doc]\nregion = eu-west-1\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(creds, []byte("[doc]\naws_access_key_id = "+key+"\naws_secret_access_key = "+secret+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			t.Setenv("HOME", home)
			t.Setenv("AWS_CONFIG_FILE", cfg)
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
			t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			opts, diags := backend{}.Info().Options.Parse(nil, os.Getenv)
			if sdk.HasErrors(diags) {
				t.Fatalf("options: %v", diags)
			}
			checks := backend{}.Doctor(context.Background(), opts)
			got := map[string]bool{}
			for _, c := range checks {
				got[c.Name] = c.OK
				if strings.Contains(c.Detail+c.Fix, secret) || strings.Contains(c.Detail+c.Fix, key) {
					t.Errorf("check %q shows a credential: %+v", c.Name, c)
				}
				if !c.OK && !strings.Contains(c.Fix, tc.fix) {
					t.Errorf("failed check %q has fix %q, want one naming %s", c.Name, c.Fix, tc.fix)
				}
				if !c.OK && tc.fix == "" {
					t.Errorf("check %q failed: %+v", c.Name, c)
				}
			}
			for name, ok := range tc.want {
				if g, seen := got[name]; !seen || g != ok {
					t.Errorf("check %q: ok %v (present %v), want %v; checks %+v", name, g, seen, ok, checks)
				}
			}
		})
	}
}
