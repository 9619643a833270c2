package main

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/e2e-tool/e2e/sdk"
)

// Option names: the seed's (DC/OS E2E's AWS backend) first, then what
// users of EC2 tools expect.
const (
	optAccessKeyID         = "aws_access_key_id"
	optSecretAccessKey     = "aws_secret_access_key"
	optRegion              = "aws_region"
	optAdminLocation       = "admin_location"
	optInstanceType        = "instance_type"
	optDeployTimeout       = "deploy_timeout"
	optWorkspaceDir        = "workspace_dir"
	optAMI                 = "ami"
	optAMIOwner            = "ami_owner"
	optAMIName             = "ami_name"
	optMasterType          = "master_instance_type"
	optAgentType           = "agent_instance_type"
	optPublicAgentType     = "public_agent_instance_type"
	optTags                = "tags"
	optSubnetID            = "subnet_id"
	optSSHUser             = "ssh_user"
	optRootVolumeSize      = "root_volume_size"
	optUsePrivateAddresses = "use_private_addresses"
	defaultDeployTimeout   = 60
	defaultAMIOwner        = "136693071363" // Debian's account, the same in every region
	defaultAMIName         = "debian-12-amd64-*"
	maxDeployTimeout       = 7 * 24 * 60
	minRootVolumeGiB       = 8
	maxRootVolumeGiB       = 16384
	envAccessKeyID         = "AWS_ACCESS_KEY_ID"
	envSecretAccessKey     = "AWS_SECRET_ACCESS_KEY"
	envRegion              = "AWS_REGION"
	reservedTagPrefixE2E   = "e2e:"
	reservedTagPrefixAWS   = "aws:"
	maxUserTags            = 40
	adminLocationEveryone  = "the whole internet"
)

// regions are the regions DC/OS E2E's AWS backend supported.
var regions = []string{
	"ap-northeast-1", "ap-southeast-1", "ap-southeast-2", "eu-central-1", "eu-west-1",
	"sa-east-1", "us-east-1", "us-west-1", "us-west-2",
}

// roleTypeOptions maps each role to its instance type option.
var roleTypeOptions = map[sdk.Role]string{
	sdk.RoleMaster: optMasterType, sdk.RoleAgent: optAgentType, sdk.RolePublicAgent: optPublicAgentType,
}

func schema() sdk.Schema {
	return sdk.Schema{
		sdk.StringOption(optAccessKeyID, "AWS access key id; without it the standard AWS credential chain is used (shared credentials and config files, AWS_PROFILE, SSO, AWS_SESSION_TOKEN)").MarkSecret(envAccessKeyID),
		sdk.StringOption(optSecretAccessKey, "AWS secret access key, with aws_access_key_id").MarkSecret(envSecretAccessKey),
		sdk.StringOption(optRegion, "region: "+strings.Join(regions, ", ")+" (default: AWS_REGION, else the profile's region)").FromEnv(envRegion),
		sdk.StringOption(optAdminLocation, "required: CIDR allowed to reach the nodes' SSH, HTTP and HTTPS, such as 203.0.113.7/32"),
		sdk.StringOption(optInstanceType, "required: EC2 instance type of the nodes, such as m5.xlarge"),
		sdk.IntOption(optDeployTimeout, "minutes the cluster lives: then every instance shuts down and terminates by itself, destroyed or not").WithDefault(defaultDeployTimeout),
		sdk.StringOption(optWorkspaceDir, "directory for the backend's local files: a directory e2e-ID-UID per cluster inside it, removed on destroy (default: none)"),
		sdk.StringOption(optAMI, "image id (ami-...) of every node (default: the newest image named ami_name owned by ami_owner in the region)"),
		sdk.StringOption(optAMIOwner, "owner of the default image: an account id, or amazon, aws-marketplace, self").WithDefault(defaultAMIOwner),
		sdk.StringOption(optAMIName, "name pattern of the default image (* and ? match)").WithDefault(defaultAMIName),
		sdk.StringOption(optMasterType, "instance type of masters (default: instance_type)"),
		sdk.StringOption(optAgentType, "instance type of agents (default: instance_type)"),
		sdk.StringOption(optPublicAgentType, "instance type of public agents (default: instance_type)"),
		sdk.MapOption(optTags, "extra tags KEY=VALUE on every instance, volume, security group and key pair"),
		sdk.StringOption(optSubnetID, "subnet to launch into, for a VPC of your own (default: the default VPC's subnets)"),
		sdk.StringOption(optSSHUser, "user the image lets in with the key pair (default: from the image's name: admin for Debian, ubuntu, ec2-user for Amazon Linux and RHEL, ...)"),
		sdk.IntOption(optRootVolumeSize, "root volume size in GiB (0: the image's)").WithDefault(0),
		sdk.BoolOption(optUsePrivateAddresses, "log in to the nodes' private addresses (from inside the VPC or over a VPN) instead of their public ones").WithDefault(false),
	}
}

// settings are the options of a call, typed.
type settings struct {
	accessKeyID, secretAccessKey string
	region                       string
	adminLocation                string
	instanceTypes                map[sdk.Role]string
	deployTimeout                int // minutes
	workspaceDir                 string
	ami, amiOwner, amiName       string
	tags                         map[string]string
	subnetID                     string
	sshUser                      string
	rootVolumeSize               int // GiB, 0: the image's
	usePrivateAddresses          bool
}

func settingsOf(opts sdk.Options) settings {
	s := settings{
		accessKeyID: opts.String(optAccessKeyID), secretAccessKey: opts.String(optSecretAccessKey),
		region: opts.String(optRegion), adminLocation: opts.String(optAdminLocation),
		deployTimeout: opts.Int(optDeployTimeout), workspaceDir: opts.String(optWorkspaceDir),
		ami: opts.String(optAMI), amiOwner: opts.String(optAMIOwner), amiName: opts.String(optAMIName),
		tags: opts.Map(optTags), subnetID: opts.String(optSubnetID), sshUser: opts.String(optSSHUser),
		rootVolumeSize: opts.Int(optRootVolumeSize), usePrivateAddresses: opts.Bool(optUsePrivateAddresses),
		instanceTypes: map[sdk.Role]string{},
	}
	for role, name := range roleTypeOptions {
		s.instanceTypes[role] = opts.String(name)
		if s.instanceTypes[role] == "" {
			s.instanceTypes[role] = opts.String(optInstanceType)
		}
	}
	return s
}

var (
	instanceTypeRe = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9-]+$`)
	amiRe          = regexp.MustCompile(`^ami-[0-9a-f]{8,17}$`)
	subnetRe       = regexp.MustCompile(`^subnet-[0-9a-f]{8,17}$`)
	userRe         = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
)

// Validate checks the options beyond the schema; it makes no network call.
// admin_location and instance_type are required here, at creation, and
// not in the schema, so that list, get and destroy work without them.
func (backend) Validate(ctx context.Context, opts sdk.Options) []sdk.Diagnostic {
	s := settingsOf(opts)
	var diags []sdk.Diagnostic
	add := func(option, format string, args ...any) { diags = append(diags, sdk.Errorf(option, format, args...)) }
	if (s.accessKeyID == "") != (s.secretAccessKey == "") {
		add(optSecretAccessKey, "set both %s and %s, or neither (then the AWS credential chain is used: profile, SSO, ...)", envAccessKeyID, envSecretAccessKey)
	}
	region := s.region
	if region == "" {
		region = profileRegion(ctx)
	}
	switch {
	case region == "":
		add(optRegion, `no region: give -o %s=REGION or set %s (one of %s)`, optRegion, envRegion, strings.Join(regions, ", "))
	case !slices.Contains(regions, region):
		add(optRegion, `option %q: region %q is not supported; use one of %s`, optRegion, region, strings.Join(regions, ", "))
	}
	if s.adminLocation == "" {
		add(optAdminLocation, `option %q is required: the CIDR allowed to reach the nodes, such as -o %s=203.0.113.7/32 (your address)`, optAdminLocation, optAdminLocation)
	} else if p, err := netip.ParsePrefix(s.adminLocation); err != nil {
		add(optAdminLocation, `option %q: %q is not a CIDR such as 203.0.113.7/32`, optAdminLocation, s.adminLocation)
	} else if p.Bits() == 0 {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityWarning, Option: optAdminLocation,
			Summary: fmt.Sprintf(`option %q is %s: the nodes' SSH, HTTP and HTTPS are open to %s`, optAdminLocation, s.adminLocation, adminLocationEveryone)})
	} else if p.Masked() != p {
		add(optAdminLocation, `option %q: %s has host bits set; did you mean %s?`, optAdminLocation, s.adminLocation, p.Masked())
	}
	if opts.String(optInstanceType) == "" {
		add(optInstanceType, `option %q is required: the EC2 instance type of the nodes, such as -o %s=m5.xlarge`, optInstanceType, optInstanceType)
	}
	for _, name := range []string{optInstanceType, optMasterType, optAgentType, optPublicAgentType} {
		if v := opts.String(name); v != "" && !instanceTypeRe.MatchString(v) {
			add(name, `option %q: %q is not an EC2 instance type such as m5.xlarge`, name, v)
		}
	}
	if s.deployTimeout < 1 || s.deployTimeout > maxDeployTimeout {
		add(optDeployTimeout, `option %q: %d minutes is out of range (1 to %d, a week)`, optDeployTimeout, s.deployTimeout, maxDeployTimeout)
	}
	if s.workspaceDir != "" {
		if !filepath.IsAbs(s.workspaceDir) {
			add(optWorkspaceDir, `option %q: %q is not an absolute path`, optWorkspaceDir, s.workspaceDir)
		} else if st, err := os.Stat(s.workspaceDir); err != nil || !st.IsDir() {
			add(optWorkspaceDir, `option %q: %s is not a directory`, optWorkspaceDir, s.workspaceDir)
		}
	}
	if s.ami != "" && !amiRe.MatchString(s.ami) {
		add(optAMI, `option %q: %q is not an image id such as ami-0123456789abcdef0`, optAMI, s.ami)
	}
	if s.ami == "" && (s.amiOwner == "" || s.amiName == "") {
		add(optAMIName, `options %q and %q pick the image when %q is not given: neither may be empty`, optAMIOwner, optAMIName, optAMI)
	}
	if s.subnetID != "" && !subnetRe.MatchString(s.subnetID) {
		add(optSubnetID, `option %q: %q is not a subnet id such as subnet-0123456789abcdef0`, optSubnetID, s.subnetID)
	}
	if s.sshUser != "" && !userRe.MatchString(s.sshUser) {
		add(optSSHUser, `option %q: %q is not a user name`, optSSHUser, s.sshUser)
	}
	if v := s.rootVolumeSize; v != 0 && (v < minRootVolumeGiB || v > maxRootVolumeGiB) {
		add(optRootVolumeSize, `option %q: %d GiB is out of range (%d to %d, or 0 for the image's size)`, optRootVolumeSize, v, minRootVolumeGiB, maxRootVolumeGiB)
	}
	if len(s.tags) > maxUserTags {
		add(optTags, `option %q: %d tags are too many (at most %d)`, optTags, len(s.tags), maxUserTags)
	}
	for _, k := range slices.Sorted(maps.Keys(s.tags)) {
		lk := strings.ToLower(k)
		switch {
		case strings.HasPrefix(lk, reservedTagPrefixE2E) || strings.HasPrefix(lk, reservedTagPrefixAWS):
			add(optTags, `option %q: key %q uses a reserved prefix (%s or %s)`, optTags, k, reservedTagPrefixE2E, reservedTagPrefixAWS)
		case k == "" || len(k) > 128 || len(s.tags[k]) > 256:
			add(optTags, `option %q: key %q: keys are 1 to 128 characters, values at most 256`, optTags, k)
		}
	}
	return diags
}
