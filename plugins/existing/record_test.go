package main

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/sdk"
)

// A record keeps its cluster whichever JSON wrote it: the SDK's tags, or
// Go's field names (e2e-backend-existing before the SDK had tags).
func TestDecodeRecord(t *testing.T) {
	want := sdk.Cluster{ID: "lab", UID: "u1", CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Details: map[string]string{"machines": "existing (e2e did not create them)"},
		Nodes: []sdk.Node{
			{Role: sdk.RoleMaster, Index: 0, Name: "10.0.0.5:2222", PrivateAddress: "10.0.0.5", PublicAddress: "203.0.113.5",
				SSH: sdk.SSHEndpoint{Host: "10.0.0.5", Port: 2222, User: "root"}, HostKeys: []string{"ssh-ed25519 AAAA"}},
			{Role: sdk.RoleAgent, Index: 0, Name: "10.0.0.6", PrivateAddress: "10.0.0.6",
				SSH: sdk.SSHEndpoint{Host: "10.0.0.6", Port: 22, User: "root"}},
		}}
	tagged, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	// As an e2e-backend-existing built before the tags wrote it.
	legacy := `{"ID":"lab","UID":"u1","Nodes":[` +
		`{"Role":"master","Index":0,"Name":"10.0.0.5:2222","Hostname":"","PrivateAddress":"10.0.0.5","PublicAddress":"203.0.113.5",` +
		`"SSH":{"Host":"10.0.0.5","Port":2222,"User":"root"},"HostKeys":["ssh-ed25519 AAAA"],"State":""},` +
		`{"Role":"agent","Index":0,"Name":"10.0.0.6","Hostname":"","PrivateAddress":"10.0.0.6","PublicAddress":"",` +
		`"SSH":{"Host":"10.0.0.6","Port":22,"User":"root"},"HostKeys":null,"State":""}],` +
		`"Record":null,"Details":{"machines":"existing (e2e did not create them)"},"CreatedAt":"2025-01-02T03:04:05Z"}`
	for name, b := range map[string][]byte{"tagged": tagged, "legacy": []byte(legacy)} {
		got, err := decodeRecord(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got  %+v\n want %+v", name, got, want)
		}
	}
	if _, err := decodeRecord([]byte("{")); err == nil {
		t.Error("a corrupt record decoded")
	}
}
