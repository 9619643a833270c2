package dcos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"

	"github.com/e2e-tool/e2e/cluster"
)

// Version is what /opt/mesosphere/etc/dcos-version.json on master_0
// says; empty when DC/OS is not installed.
type Version struct {
	Version string `json:"version"`
	Variant string `json:"dcos-variant"`
	Commit  string `json:"dcos-image-commit,omitempty"`
}

// versionFile is read up to 1 MiB: it is a few lines of JSON.
const versionFile = "head -c 1048576 /opt/mesosphere/etc/dcos-version.json 2>/dev/null || true"

// InstalledVersion reads the DC/OS version installed on master_0, as
// DC/OS E2E's dcos_build_info did; an empty Version when e2e did not
// install DC/OS or the file is missing.
func InstalledVersion(ctx context.Context, c *cluster.Cluster) (Version, error) {
	ms := c.Masters()
	if len(ms) == 0 || c.Installed != Installed {
		return Version{}, nil
	}
	var out bytes.Buffer
	st, err := ms[0].Run(ctx, cluster.Command{Shell: versionFile, Stdout: &out, Stderr: io.Discard})
	if err != nil {
		return Version{}, err
	}
	if st.Code != 0 || out.Len() == 0 {
		return Version{}, nil
	}
	var v Version
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		return Version{}, errors.New("master_0's /opt/mesosphere/etc/dcos-version.json is not JSON")
	}
	return v, nil
}
