package main

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"strings"
	"text/template"

	"github.com/e2e-tool/e2e/internal/testdcos/internal/layout"
)

//go:embed templates/*.tmpl
var scriptTemplates embed.FS

// nodeFile is a file dcos_install.sh (and the upgrade script) writes on the
// node from a here-document, as the real dcos_install.sh writes its setup
// flags and config.
type nodeFile struct {
	Path    string
	Mode    string
	Content string
	Delim   string
}

type scriptData struct {
	layout.Manifest
	NodeVariant    string
	BootstrapFile  string
	BootstrapURL   string
	GenerationDate string
	FromVersion    string
	Files          []nodeFile
}

func (w serveWriter) scriptData(fromVersion string) scriptData {
	m := w.in.m
	nodeConfig, _ := json.MarshalIndent(w.nc, "", "  ")
	bootstrapConfig, _ := json.MarshalIndent(map[string]any{
		// wait_for_dcos_ee reads ssl_enabled; the fixture serves plain HTTP.
		"ssl_enabled":  false,
		"cluster_name": w.nc.ClusterName,
		"bootstrap_id": m.BootstrapID,
	}, "", "  ")
	files := []nodeFile{
		{Path: layout.SetupFlagsDir + "/repository-url", Mode: "0644", Content: w.nc.BootstrapURL},
		{Path: layout.SetupFlagsDir + "/bootstrap-id", Mode: "0644", Content: "BOOTSTRAP_ID=" + m.BootstrapID},
		{Path: layout.NodeConfigFile, Mode: "0644", Content: string(nodeConfig)},
		{Path: layout.BootstrapConfig, Mode: "0644", Content: string(bootstrapConfig)},
		{Path: layout.UserConfigFile, Mode: "0644", Content: string(w.raw)},
		{Path: layout.DetectIP, Mode: "0755", Content: string(w.ipDetect)},
	}
	for i := range files {
		// A here-document adds the final newline itself.
		files[i].Content = strings.TrimSuffix(files[i].Content, "\n")
		files[i].Delim = heredocDelim(files[i].Content)
	}
	return scriptData{
		Manifest:       m,
		NodeVariant:    m.NodeVariant(),
		BootstrapFile:  m.BootstrapFile(),
		BootstrapURL:   w.nc.BootstrapURL,
		GenerationDate: w.now.Format("2006-01-02 15:04:05 UTC"),
		FromVersion:    fromVersion,
		Files:          files,
	}
}

// heredocDelim picks a here-document delimiter that no line of content
// equals.
func heredocDelim(content string) string {
	lines := map[string]bool{}
	for _, l := range strings.Split(content, "\n") {
		lines[l] = true
	}
	d := "DCOS_FIXTURE_EOF"
	for i := 1; lines[d]; i++ {
		d = fmt.Sprintf("DCOS_FIXTURE_EOF_%d", i)
	}
	return d
}

// shellQuote quotes s for bash as one word.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func renderScript(name string, data scriptData) ([]byte, error) {
	t, err := template.New(name).Funcs(template.FuncMap{"q": shellQuote}).
		ParseFS(scriptTemplates, "templates/*.tmpl")
	if err != nil {
		return nil, fmt.Errorf("parse script templates: %w", err)
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, name, data); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return b.Bytes(), nil
}
