package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/e2e-tool/e2e/internal/testbin"
)

// goBlock is one ```go block of a document, with the paragraph before it.
type goBlock struct {
	doc, before, code string
	line              int
}

// goBlocks returns every ```go block of the markdown file doc.
func goBlocks(t *testing.T, doc string) []goBlock {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testbin.Root(), doc))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	var out []goBlock
	for _, m := range regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatchIndex(text, -1) {
		head := strings.TrimRight(text[:m[0]], "\n")
		before := head[strings.LastIndex(head, "\n\n")+1:]
		out = append(out, goBlock{doc: doc, before: strings.TrimSpace(before), code: text[m[2]:m[3]],
			line: strings.Count(text[:m[0]], "\n") + 1})
	}
	return out
}

func (b goBlock) String() string { return fmt.Sprintf("%s:%d", b.doc, b.line) }

// TestGuideGoBlocks: every Go block of docs/plugin-authoring.md and
// docs/library.md compiles, or says what it is. Blocks labelled "File
// `NAME`:" are files of a module that another test builds and runs
// (TestGuideExample, TestLibraryExample); a declaration of an SDK type is
// the SDK's own, method by method; a migration's "before" block no longer
// compiles against this SDK, for the reason the section gives; every
// other block compiles in a package of its own beside the SDK.
func TestGuideGoBlocks(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the guide's blocks: %v", err)
	}
	sdkDecls := sdkInterfaces(t)
	mod := t.TempDir()
	writeFile(t, filepath.Join(mod, "go.mod"), "module example.com/blocks\n\ngo 1.26.0\n\n"+
		"require github.com/e2e-tool/e2e/sdk v0.0.0-00010101000000-000000000000\n\n"+
		"replace github.com/e2e-tool/e2e/sdk => "+filepath.Join(testbin.Root(), "sdk")+"\n")
	sums, err := os.ReadFile(filepath.Join(testbin.Root(), "sdk", "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(mod, "go.sum"), string(sums))

	var compile, fail []string // package directories
	where := map[string]goBlock{}
	files, decls := 0, 0
	for _, doc := range []string{"docs/plugin-authoring.md", "docs/library.md"} {
		for _, b := range goBlocks(t, doc) {
			switch {
			case regexp.MustCompile("^File `[^`]+`:$").MatchString(b.before):
				files++
			case strings.HasPrefix(b.code, "type ") && strings.Contains(b.code, " interface {"),
				!strings.Contains(strings.TrimSpace(b.code), "\n") && !strings.HasPrefix(b.code, "func "):
				decls++
				checkSDKDecl(t, b, sdkDecls)
			default:
				dir := fmt.Sprintf("block%d", len(where))
				if err := os.Mkdir(filepath.Join(mod, dir), 0o755); err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(mod, dir, "block.go"), fragmentSource(b.code))
				writeFile(t, filepath.Join(mod, dir, "stub.go"), fragmentStub(b.code))
				where[dir] = b
				if strings.HasSuffix(strings.ToLower(b.before), "before:") {
					fail = append(fail, dir)
				} else {
					compile = append(compile, dir)
				}
			}
		}
	}
	t.Logf("%d file blocks, %d SDK declarations, %d blocks to compile, %d that must not", files, decls, len(compile), len(fail))
	if files == 0 || decls == 0 || len(compile) == 0 || len(fail) == 0 {
		t.Errorf("found %d file blocks, %d SDK declarations, %d blocks to compile and %d that must not: the documents changed shape", files, decls, len(compile), len(fail))
	}
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	build := func(dir string) (string, error) {
		cmd := exec.Command(goTool, "vet", "./"+dir)
		cmd.Dir, cmd.Env = mod, env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, dir := range compile {
		if out, err := build(dir); err != nil {
			t.Errorf("the Go block at %s does not compile: %v\n%s\n%s", where[dir], err, out, where[dir].code)
		}
	}
	for _, dir := range fail {
		out, err := build(dir)
		if err == nil || !strings.Contains(out, "Capabilities") {
			t.Errorf("the migration's \"before\" block at %s should fail to compile on sdk.Capabilities, which is gone: %v\n%s", where[dir], err, out)
		}
	}
}

// fragmentSource makes a block a file of package main, importing what it
// uses when it has no imports of its own.
func fragmentSource(code string) string {
	src := code
	if !strings.Contains(code, "\nimport ") && !strings.HasPrefix(code, "import ") && !strings.HasPrefix(code, "package ") {
		var imports []string
		for pkg, path := range map[string]string{"sdk.": "github.com/e2e-tool/e2e/sdk", "context.": "context", "errors.": "errors"} {
			if strings.Contains(code, pkg) {
				imports = append(imports, fmt.Sprintf("%q", path))
			}
		}
		if len(imports) > 0 {
			src = "import (\n" + strings.Join(imports, "\n") + "\n)\n\n" + src
		}
	}
	if !strings.HasPrefix(src, "package ") {
		src = "package main\n\n" + src
	}
	return src
}

// fragmentStub declares what the guide's blocks take from the sample
// backend (its type, its version variable) and a main, unless the block
// declares them itself.
func fragmentStub(code string) string {
	stub := "package main\n\n"
	if !strings.Contains(code, "type backend ") {
		stub += "type backend struct{}\n\n"
	}
	if !regexp.MustCompile(`(?m)^\s*version\s*=|var version`).MatchString(code) {
		stub += "var version = \"0.0.0-dev\"\n\nvar _ = version\n\n"
	}
	if !strings.Contains(code, "func main()") {
		stub += "func main() {}\n"
	}
	return stub
}

// sdkInterfaces returns the methods of every interface the sdk package
// declares, printed without the package name: interface -> method -> type.
func sdkInterfaces(t *testing.T) map[string]map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	out := map[string]map[string]string{}
	paths, err := filepath.Glob(filepath.Join(testbin.Root(), "sdk", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range paths {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for name, methods := range interfacesOf(fset, f) {
			out[name] = methods
		}
	}
	return out
}

func interfacesOf(fset *token.FileSet, f *ast.File) map[string]map[string]string {
	out := map[string]map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		it, ok := ts.Type.(*ast.InterfaceType)
		if !ok {
			return true
		}
		methods := map[string]string{}
		for _, m := range it.Methods.List {
			var buf bytes.Buffer
			_ = printer.Fprint(&buf, fset, m.Type)
			for _, name := range m.Names {
				methods[name.Name] = strings.ReplaceAll(buf.String(), "sdk.", "")
			}
		}
		out[ts.Name.Name] = methods
		return true
	})
	return out
}

// checkSDKDecl checks an interface declaration, or a single method
// signature, shown in a document against the SDK's.
func checkSDKDecl(t *testing.T, b goBlock, sdk map[string]map[string]string) {
	t.Helper()
	src := "package sdk\n\n" + b.code
	single := !strings.HasPrefix(b.code, "type ")
	if single {
		src = "package sdk\n\ntype shown interface {\n" + b.code + "\n}\n"
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "block.go", src, 0)
	if err != nil {
		t.Errorf("the Go block at %s does not parse: %v\n%s", b, err, b.code)
		return
	}
	for name, methods := range interfacesOf(fset, f) {
		if single {
			for m, sig := range methods {
				found := false
				for _, ms := range sdk {
					found = found || ms[m] == sig
				}
				if !found {
					t.Errorf("the method at %s, %s%s, is no method of an SDK interface", b, m, sig)
				}
			}
			continue
		}
		want, ok := sdk[name]
		if !ok {
			t.Errorf("the block at %s declares interface %s, which the SDK does not have", b, name)
			continue
		}
		if len(methods) != len(want) {
			t.Errorf("the block at %s shows %d methods of sdk.%s, the SDK has %d", b, len(methods), name, len(want))
		}
		for m, sig := range methods {
			if want[m] != sig {
				t.Errorf("the block at %s shows sdk.%s.%s as %s, the SDK has %q", b, name, m, sig, want[m])
			}
		}
	}
}
