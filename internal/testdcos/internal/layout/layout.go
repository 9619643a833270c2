// Package layout holds what the fixture's two halves must agree on: the
// build side (package testdcos, on the machine running the tests) and the
// node side (cmd/dcos-fixture, inside the installer and on every node). It
// names the paths of a DC/OS node, the ports the stand-in services listen
// on, and the JSON documents passed between genconf and the nodes.
package layout

// Paths on a node, as real DC/OS lays them out.
const (
	InstallRoot       = "/opt/mesosphere"
	Binary            = InstallRoot + "/bin/dcos-fixture"
	CheckRunner       = InstallRoot + "/bin/dcos-check-runner"
	DetectIP          = InstallRoot + "/bin/detect_ip"
	VersionFile       = InstallRoot + "/etc/dcos-version.json"
	NodeConfigFile    = InstallRoot + "/etc/expanded.config.json"
	UserConfigFile    = InstallRoot + "/etc/user.config.yaml"
	BootstrapConfig   = InstallRoot + "/etc/bootstrap-config.json"
	EnvironmentFile   = InstallRoot + "/environment"
	EnvironmentExport = InstallRoot + "/environment.export"
	IntegrationTest   = InstallRoot + "/active/dcos-integration-test"
	RolesDir          = "/etc/mesosphere/roles"
	SetupFlagsDir     = "/etc/mesosphere/setup-flags"
)

// Roles as dcos_install.sh spells them.
var Roles = []string{"master", "slave", "slave_public"}

// ValidRole reports whether r is one of Roles.
func ValidRole(r string) bool {
	for _, x := range Roles {
		if r == x {
			return true
		}
	}
	return false
}

// UnitName is the systemd unit that runs the stand-in services of a role.
func UnitName(role string) string { return "dcos-fixture-" + role + ".service" }

// Ports the stand-in services listen on (before any --port-offset). These
// are the ports of the real services DC/OS E2E's wait reached.
const (
	PortAdminRouter = 80   // Admin Router: /, /marathon, /exhibitor, /mesos
	PortMesosMaster = 5050 // Mesos master
	PortMesosAgent  = 5051 // Mesos agent (agents and public agents)
	PortMarathon    = 8080 // Marathon
	PortExhibitor   = 8181 // Exhibitor
)

// Manifest describes one built installer. Build writes it into the
// installer's payload as fixture.json; genconf reads it.
type Manifest struct {
	Version     string `json:"version"`
	Variant     string `json:"variant"` // "oss" or "enterprise"
	BootstrapID string `json:"bootstrap_id"`
	// BootstrapSHA256 lets dcos_install.sh refuse a truncated or corrupt
	// copy of the payload with a clear message.
	BootstrapSHA256 string `json:"bootstrap_sha256"`
	Commit          string `json:"dcos_image_commit"`
	PayloadMiB      int    `json:"payload_mib"`
	FailOnHost      string `json:"fail_on_host,omitempty"`
}

// InstallerVariant is the variant as `dcos_generate_config.sh --version`
// prints it: "" for open source, "ee" for enterprise.
func (m Manifest) InstallerVariant() string {
	if m.Variant == "enterprise" {
		return "ee"
	}
	return ""
}

// NodeVariant is the variant as dcos-version.json on a node spells it.
func (m Manifest) NodeVariant() string {
	if m.Variant == "enterprise" {
		return "enterprise"
	}
	return "open"
}

// BootstrapFile is the payload's name under serve/bootstrap/.
func (m Manifest) BootstrapFile() string { return m.BootstrapID + ".bootstrap.tar.xz" }

// VersionInfo is /opt/mesosphere/etc/dcos-version.json.
type VersionInfo struct {
	Version     string `json:"version"`
	Variant     string `json:"dcos-variant"`
	Commit      string `json:"dcos-image-commit"`
	BootstrapID string `json:"bootstrap-id"`
}

// NodeConfig is /opt/mesosphere/etc/expanded.config.json: the config as
// genconf resolved it, which the stand-in services read for the topology.
type NodeConfig struct {
	ClusterName       string   `json:"cluster_name"`
	MasterList        []string `json:"master_list"`
	AgentList         []string `json:"agent_list"`
	PublicAgentList   []string `json:"public_agent_list"`
	NumMasters        string   `json:"num_masters"`
	BootstrapURL      string   `json:"bootstrap_url"`
	BootstrapID       string   `json:"bootstrap_id"`
	DCOSVersion       string   `json:"dcos_version"`
	DCOSVariant       string   `json:"dcos_variant"`
	SuperuserUsername string   `json:"superuser_username,omitempty"`
}
