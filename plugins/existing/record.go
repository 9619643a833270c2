package main

import (
	"encoding/json"
	"time"

	"github.com/e2e-tool/e2e/sdk"
)

// legacyCluster holds the fields of a record written before sdk.Cluster had
// JSON tags whose names Go's JSON decoder does not match to the tagged
// fields (it ignores case, not underscores): such a record names them
// PrivateAddress, PublicAddress, HostKeys and CreatedAt.
type legacyCluster struct {
	Nodes []struct {
		PrivateAddress string
		PublicAddress  string
		HostKeys       []string
	}
	CreatedAt time.Time
}

// decodeRecord reads the cluster a record holds, in the SDK's JSON or in
// the field names of records from before it (clusters recorded by an
// earlier e2e-backend-existing stay usable).
func decodeRecord(b []byte) (sdk.Cluster, error) {
	var c sdk.Cluster
	if err := json.Unmarshal(b, &c); err != nil {
		return sdk.Cluster{}, err
	}
	var old legacyCluster
	if err := json.Unmarshal(b, &old); err != nil || len(old.Nodes) != len(c.Nodes) {
		return c, nil
	}
	for i, n := range old.Nodes {
		cur := &c.Nodes[i]
		if cur.PrivateAddress == "" {
			cur.PrivateAddress = n.PrivateAddress
		}
		if cur.PublicAddress == "" {
			cur.PublicAddress = n.PublicAddress
		}
		if cur.HostKeys == nil {
			cur.HostKeys = n.HostKeys
		}
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = old.CreatedAt
	}
	return c, nil
}
