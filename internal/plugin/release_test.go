package plugin

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseArchiveName(t *testing.T) {
	tests := []struct {
		file string
		want archiveLabel
		ok   bool
	}{
		{"e2e-backend-qemu_1.2.0_linux_amd64.tar.gz", archiveLabel{"qemu", "1.2.0", "linux", "amd64"}, true},
		{"e2e-backend-my_cloud_1.0.0-rc.1+b5_darwin_arm64.tgz", archiveLabel{"my_cloud", "1.0.0-rc.1+b5", "darwin", "arm64"}, true},
		{ArchiveName("docker", "0.1.0", "linux", "arm64"), archiveLabel{"docker", "0.1.0", "linux", "arm64"}, true},
		// Installed too, without the checks a conventional name allows.
		{"qemu_1.2.0_Linux_x86_64.tar.gz", archiveLabel{}, false},
		{"e2e-backend-qemu.tar.gz", archiveLabel{}, false},
		{"e2e-backend-qemu_linux_amd64.tar.gz", archiveLabel{}, false},
		{"e2e-backend-Qemu_1.2.0_linux_amd64.tar.gz", archiveLabel{}, false},
		{"e2e-backend-qemu_1.2.0_linux_amd64.zip", archiveLabel{}, false},
	}
	for _, tc := range tests {
		got, ok := parseArchiveName(tc.file)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseArchiveName(%q) = %+v, %v; want %+v, %v", tc.file, got, ok, tc.want, tc.ok)
		}
	}
}

func TestChecksumFor(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	other := strings.Repeat("01", 32)
	tests := []struct {
		name, list, file string
		want             string
		err              string
	}{
		{"text mode", other + "  a.tar.gz\n" + sum + "  b.tar.gz\n", "b.tar.gz", sum, ""},
		{"binary mode", sum + " *b.tar.gz\n", "b.tar.gz", sum, ""},
		{"CRLF and ./", "\r\n" + strings.ToUpper(sum) + "  ./b.tar.gz\r\n", "b.tar.gz", sum, ""},
		{"not listed", other + "  a.tar.gz\n", "b.tar.gz", "", "does not list it"},
		{"a name that only ends alike", sum + "  xb.tar.gz\n", "b.tar.gz", "", "does not list it"},
		{"an HTML page", "<html><body>Not Found</body></html>\n", "b.tar.gz", "", "line 1 is not \"SHA256  FILE\""},
		{"listed twice alike", sum + "  b.tar.gz\n" + other + "  a.tar.gz\n" + sum + " *./b.tar.gz\n", "b.tar.gz", sum, ""},
		{"listed twice with different sums", sum + "  b.tar.gz\n" + other + "  a.tar.gz\n" + other + "  b.tar.gz\n", "b.tar.gz", "",
			"lists it twice with different sums (line 1: " + sum + ", line 3: " + other + ")"},
		{"not hex", strings.Repeat("zz", 32) + "  b.tar.gz\n", "b.tar.gz", "", "does not start with a sha256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), ChecksumsFile)
			if err := os.WriteFile(path, []byte(tc.list), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := checksumFor(context.Background(), path, tc.file)
			switch {
			case tc.err == "" && (err != nil || got != tc.want):
				t.Errorf("checksumFor = %q, %v; want %q", got, err, tc.want)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrBadArchive)):
				t.Errorf("checksumFor error = %v, want an ErrBadArchive saying %q", err, tc.err)
			}
		})
	}
}
