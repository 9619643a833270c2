// Package wire holds what both ends of the backend protocol share beside the
// generated code (backendv1): the go-plugin handshake, the name the service
// is dispensed under, and the one rule that names the protocol's enum values
// in Go.
package wire

import (
	"strings"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// PluginName is the name the backend service is dispensed under.
const PluginName = "backend"

// LogLevelEnv is the environment variable the core sets to the log level
// it wants from plugins (hclog level names).
const LogLevelEnv = "E2E_PLUGIN_LOG_LEVEL"

// ParentPIDEnv is the environment variable the core sets to its own pid
// when it starts a plugin, so the plugin can tell that e2e died even
// before it looked at its parent (it was then already re-parented).
const ParentPIDEnv = "E2E_PARENT_PID"

// Handshake is the go-plugin handshake of e2e backends for a protocol
// major. The cookie only tells a plugin it was started by e2e; it is not a
// security measure.
func Handshake(protocol int) plugin.HandshakeConfig {
	return plugin.HandshakeConfig{
		ProtocolVersion:  uint(protocol),
		MagicCookieKey:   "E2E_BACKEND_PLUGIN",
		MagicCookieValue: "d3b1c7a2-e2e-backend",
	}
}

// Enum is a generated protobuf enum type.
type Enum interface {
	~int32
	protoreflect.Enum
}

// Name returns the Go name of an enum value: its protobuf name without the
// enum's prefix, in lower case (ROLE_PUBLIC_AGENT is "public_agent",
// NODE_STATE_STOPPED "stopped"), which is the string the SDK's constant of
// the same meaning holds. The unspecified value, and a value this build
// does not know (a later protocol minor's), give "".
func Name(e protoreflect.Enum) string {
	if e.Number() == 0 {
		return ""
	}
	values := e.Descriptor().Values()
	v := values.ByNumber(e.Number())
	if v == nil {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(string(v.Name()), prefix(values)))
}

// Value is the inverse of Name: the enum value whose Name is name, or the
// unspecified value (0) when there is none.
func Value[E Enum](name string) E {
	var zero E
	if name == "" {
		return zero
	}
	values := zero.Descriptor().Values()
	v := values.ByName(protoreflect.Name(prefix(values) + strings.ToUpper(name)))
	if v == nil {
		return zero
	}
	return E(v.Number())
}

// prefix is what every value name of an enum starts with: buf lint
// (ENUM_ZERO_VALUE_SUFFIX, ENUM_VALUE_PREFIX) makes the zero value
// PREFIX_UNSPECIFIED and every other value PREFIX_NAME.
func prefix(values protoreflect.EnumValueDescriptors) string {
	return strings.TrimSuffix(string(values.ByNumber(0).Name()), "UNSPECIFIED")
}

// HoldCreateEnv is set to "1" in the environment of a plugin that sdktest
// starts for its cancellation check: the SDK then holds a Create's first
// event until the call is cancelled, so the check cancels a Create that is
// certainly half-way, however fast the backend is.
const HoldCreateEnv = "E2E_SDKTEST_HOLD_CREATE"
