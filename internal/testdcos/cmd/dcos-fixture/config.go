package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/e2e-tool/e2e/internal/testdcos/internal/layout"
)

// loadConfig reads genconf/config.yaml. On failure it returns the real
// installer's message for a missing or unparsable file.
func loadConfig(path string) ([]byte, map[string]any, string) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Sprintf("No config file found at %s. See the DC/OS documentation for the "+
			"available configuration options.", path)
	}
	if err != nil {
		return nil, nil, fmt.Sprintf("Failed to open config file at %s: %v. See the DC/OS documentation to "+
			"learn how to create a config file.", path, err)
	}
	var v any
	if err := yaml.Unmarshal(raw, &v); err != nil {
		return nil, nil, fmt.Sprintf("Unable to load configuration file. %s is not valid YAML: %s",
			path, yaml.FormatError(err, false, false))
	}
	switch c := v.(type) {
	case map[string]any:
		return raw, c, ""
	case nil:
		return nil, nil, fmt.Sprintf("Unable to load configuration file. %s is empty: it must be a YAML "+
			"mapping of configuration keys to values.", path)
	default:
		return nil, nil, fmt.Sprintf("Unable to load configuration file. %s must be a YAML mapping of "+
			"configuration keys to values, not a %s.", path, typeStr(v))
	}
}

// problems maps a configuration key to what is wrong with it, as the real
// installer reports validation errors ("key: message").
type problems map[string]string

func (p problems) sorted() [][2]string {
	out := make([][2]string, 0, len(p))
	for _, k := range slices.Sorted(maps.Keys(p)) {
		out = append(out, [2]string{k, p[k]})
	}
	return out
}

// validateConfig checks the config the way the real installer does for the
// keys the fixture uses, and resolves what the nodes need. The checks and
// their messages follow DC/OS's gen package: every value is first turned
// into a string (lists and maps into JSON), so a node list may also be given
// as a JSON string; nulls and floats are refused outright.
func validateConfig(cfg map[string]any, m layout.Manifest) (layout.NodeConfig, []byte, problems) {
	p := problems{}
	str := map[string]string{}
	for k, v := range cfg {
		s, ok := stringify(v)
		if !ok {
			p[k] = fmt.Sprintf("Invalid type for value of %s in config. Got %s, only can handle list, dict, "+
				"int, bool, and str", k, typeStr(v))
			continue
		}
		str[k] = s
	}

	nc := layout.NodeConfig{
		ClusterName: "DC/OS",
		DCOSVersion: m.Version,
		DCOSVariant: m.NodeVariant(),
		BootstrapID: m.BootstrapID,
	}
	if v, ok := str["cluster_name"]; ok {
		nc.ClusterName = v
	}
	nc.SuperuserUsername = str["superuser_username"]

	// master_list is required: the fixture supports static master discovery
	// only, as DC/OS E2E used.
	if v, ok := str["master_discovery"]; ok && v != "static" {
		p["master_discovery"] = fmt.Sprintf("The DC/OS contract fixture supports only `static`, got `%s`", v)
	}
	if v, ok := str["master_list"]; ok {
		if ips, msg := ipList(v); msg != "" {
			p["master_list"] = msg
		} else if len(ips) == 0 {
			p["master_list"] = "Must contain at least one master IPv4 address"
		} else {
			nc.MasterList = ips
			nc.NumMasters = strconv.Itoa(len(ips))
			switch len(ips) {
			case 1, 3, 5, 7, 9:
			default:
				p["num_masters"] = fmt.Sprintf("Must have 1, 3, 5, 7, or 9 masters. Found %d", len(ips))
			}
		}
	} else if _, bad := p["master_list"]; !bad {
		p["master_list"] = "Must set master_list, no way to calculate value."
	}
	for _, key := range []string{"agent_list", "public_agent_list"} {
		v, ok := str[key]
		if !ok {
			continue
		}
		ips, msg := ipList(v)
		if msg != "" {
			p[key] = msg
			continue
		}
		if key == "agent_list" {
			nc.AgentList = ips
		} else {
			nc.PublicAgentList = ips
		}
	}
	if nc.AgentList == nil {
		nc.AgentList = []string{}
	}
	if nc.PublicAgentList == nil {
		nc.PublicAgentList = []string{}
	}
	seen := map[string]string{}
	for _, l := range []struct {
		key string
		ips []string
	}{{"master_list", nc.MasterList}, {"agent_list", nc.AgentList}, {"public_agent_list", nc.PublicAgentList}} {
		for _, ip := range l.ips {
			if other, dup := seen[ip]; dup && other != l.key {
				p[l.key] = fmt.Sprintf("%s is also in %s: a node has exactly one role", ip, other)
			}
			seen[ip] = l.key
		}
	}

	if v, ok := str["bootstrap_url"]; ok {
		switch {
		case len(v) <= 1:
			p["bootstrap_url"] = "Should be a url (http://example.com/bar or file:///path/to/local/cache)"
		case strings.HasSuffix(v, "/"):
			p["bootstrap_url"] = "Must not end in a '/'"
		case !strings.HasPrefix(v, "file:///") && !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://"):
			p["bootstrap_url"] = "Must be an http://, https:// or file:/// URL: the contract fixture's " +
				"dcos_install.sh fetches only those"
		default:
			nc.BootstrapURL = v
		}
	} else if _, bad := p["bootstrap_url"]; !bad {
		p["bootstrap_url"] = "Must set bootstrap_url, no way to calculate value."
	}

	ipDetectPath := "genconf/ip-detect"
	if v, ok := str["ip_detect_filename"]; ok {
		ipDetectPath = v
	}
	ipDetect, err := os.ReadFile(ipDetectPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p["ip_detect_contents"] = fmt.Sprintf("ip-detect script `%s` must exist", ipDetectPath)
	case err != nil:
		p["ip_detect_contents"] = fmt.Sprintf("ip-detect script `%s` cannot be read: %v", ipDetectPath, err)
	case len(strings.TrimSpace(string(ipDetect))) == 0:
		p["ip_detect_contents"] = fmt.Sprintf("ip-detect script `%s` is empty", ipDetectPath)
	}
	return nc, ipDetect, p
}

// stringify turns a YAML value into the string DC/OS's gen works on; ok is
// false for the types the real installer refuses (null, float).
func stringify(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(x), true
	case []any, map[string]any, map[any]any:
		b, err := json.Marshal(jsonable(x))
		if err != nil {
			return "", false
		}
		return string(b), true
	default:
		return "", false
	}
}

// jsonable turns map[any]any (non-string YAML keys) into JSON-encodable maps.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = jsonable(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = jsonable(e)
		}
		return l
	default:
		return v
	}
}

// ipList validates a stringified node list: a JSON list of unique IPv4
// address strings. It returns the list or the real installer's message.
func ipList(s string) ([]string, string) {
	var v any
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber() // so 10 is reported as an int, as the real installer does
	if err := d.Decode(&v); err != nil || d.More() {
		if err == nil {
			err = errors.New("extra data after the value")
		}
		return nil, fmt.Sprintf("Must be a JSON formatted list, but couldn't be parsed the given value `%s` "+
			"as one because of: %v", s, err)
	}
	items, ok := v.([]any)
	if !ok {
		return nil, fmt.Sprintf("Must be a JSON list. Got a %s", typeStr(v))
	}
	var bad []string
	ips := make([]string, 0, len(items))
	for _, it := range items {
		s, ok := it.(string)
		if !ok {
			bad = append(bad, fmt.Sprintf("%v type %s", it, typeStr(it)))
			continue
		}
		ips = append(ips, s)
	}
	if len(bad) > 0 {
		return nil, "Items in list must be strings, got invalid values: " + strings.Join(bad, ", ")
	}
	count := map[string]int{}
	var dups []string
	for _, ip := range ips {
		count[ip]++
		if count[ip] == 2 {
			dups = append(dups, ip)
		}
	}
	if len(dups) > 0 {
		parts := make([]string, len(dups))
		for i, d := range dups {
			parts[i] = fmt.Sprintf("%s appears %d times", d, count[d])
		}
		return nil, "List cannot contain duplicates: " + strings.Join(parts, ", ")
	}
	var invalid []string
	for _, ip := range ips {
		if a, err := netip.ParseAddr(ip); err != nil || !a.Is4() {
			invalid = append(invalid, ip)
		}
	}
	if len(invalid) > 0 {
		return nil, "Invalid IPv4 addresses in list: " + strings.Join(invalid, ", ")
	}
	return ips, ""
}

// typeStr names a value's type the way the real (Python) installer does.
func typeStr(v any) string {
	switch x := v.(type) {
	case nil:
		return "NoneType"
	case string:
		return "str"
	case bool:
		return "bool"
	case float32, float64:
		return "float"
	case json.Number:
		if strings.ContainsAny(string(x), ".eE") {
			return "float"
		}
		return "int"
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return "int"
	case []any:
		return "list"
	case map[string]any, map[any]any:
		return "dict"
	default:
		return fmt.Sprintf("%T", v)
	}
}
