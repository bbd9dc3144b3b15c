package gateway

import (
	"bytes"
	"encoding/json"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/pingora-go/pingora/conf"
)

var update = flag.Bool("update", false, "rewrite schema.json from the Go types")

// schemaFile is the JSON Schema of the configuration file, for editors (the YAML language
// server reads it from a "# yaml-language-server: $schema=..." comment).
const schemaFile = "schema.json"

// TestSchema generates the JSON Schema of the configuration file from the Go types (with
// their doc comments as descriptions) and fails when schema.json differs: run
// `go test ./gateway -run TestSchema -update` after changing a type.
func TestSchema(t *testing.T) {
	got, err := generateSchema()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(schemaFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run go test ./gateway -run TestSchema -update", schemaFile)
	}
	// Every key of a complete configuration is in the schema.
	var s map[string]any
	if err := json.Unmarshal(got, &s); err != nil {
		t.Fatal(err)
	}
	props := s["properties"].(map[string]any)
	for _, k := range append(append([]string(nil), Keys...), "version", "grace_period_seconds", "max_retries") {
		if _, ok := props[k]; !ok {
			t.Errorf("the schema lacks the top-level key %s", k)
		}
	}
	defs := s["$defs"].(map[string]any)
	route := defs["Route"].(map[string]any)["properties"].(map[string]any)
	for _, k := range []string{"match", "upstream", "files", "basic_auth", "rate_limit", "rewrite", "websocket"} {
		if _, ok := route[k]; !ok {
			t.Errorf("Route lacks %s", k)
		}
	}
}

// schemaGen builds a JSON Schema from Go types.
type schemaGen struct {
	docs map[string]string // "Type.Field" -> doc comment; "Type" -> type comment
	defs map[string]any
}

func generateSchema() ([]byte, error) {
	g := &schemaGen{docs: map[string]string{}, defs: map[string]any{}}
	if err := g.readDocs("."); err != nil {
		return nil, err
	}
	if err := g.readDocs(filepath.Join("..", "conf")); err != nil {
		return nil, err
	}
	props := map[string]any{}
	g.properties(reflect.TypeFor[conf.ServerConf](), props)
	g.properties(reflect.TypeFor[Config](), props)
	s := map[string]any{
		"$schema":     "https://json-schema.org/draft/2020-12/schema",
		"$id":         "https://github.com/pingora-go/pingora/gateway/schema.json",
		"title":       "pingora configuration file",
		"description": "The server keys (package conf) and the proxy of the pingora binary (package gateway). Generated from the Go types by gateway/schema_test.go; see docs/user_guide/binary.md.",
		"type":        "object",
		"properties":  props,
		// The reference ignores unknown top-level keys, so that users may keep their own
		// settings in the file; inside the proxy's keys unknown keys are errors.
		"additionalProperties": true,
		"$defs":                g.defs,
	}
	out, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// readDocs records the doc comments of the struct types and fields of the package in dir.
func (g *schemaGen) readDocs(dir string) error {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.ParseComments)
	if err != nil {
		return err
	}
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, d := range f.Decls {
				gd, ok := d.(*ast.GenDecl)
				if !ok {
					continue
				}
				for _, sp := range gd.Specs {
					ts, ok := sp.(*ast.TypeSpec)
					if !ok {
						continue
					}
					doc := gd.Doc
					if ts.Doc != nil {
						doc = ts.Doc
					}
					g.docs[ts.Name.Name] = clean(doc.Text())
					st, ok := ts.Type.(*ast.StructType)
					if !ok {
						continue
					}
					for _, fl := range st.Fields.List {
						for _, n := range fl.Names {
							g.docs[ts.Name.Name+"."+n.Name] = clean(fl.Doc.Text())
						}
					}
				}
			}
		}
	}
	return nil
}

// clean joins a doc comment's lines.
func clean(s string) string { return strings.Join(strings.Fields(s), " ") }

// properties adds the yaml-tagged fields of struct t to props.
func (g *schemaGen) properties(t reflect.Type, props map[string]any) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		s := g.schema(f.Type)
		if d := g.docs[t.Name()+"."+f.Name]; d != "" {
			s = withDescription(s, d)
		}
		if enum := f.Tag.Get("enum"); enum != "" {
			var vals []any
			for _, v := range strings.Split(enum, ",") {
				if n, err := strconv.Atoi(v); err == nil && f.Type.Kind() == reflect.Int {
					vals = append(vals, n)
				} else {
					vals = append(vals, v)
				}
			}
			s["enum"] = vals
		}
		props[name] = s
	}
}

func withDescription(s map[string]any, d string) map[string]any {
	if _, ref := s["$ref"]; ref {
		return map[string]any{"allOf": []any{s}, "description": d}
	}
	s["description"] = d
	return s
}

var scalarSetterType = reflect.TypeFor[scalarSetter]()

// schema returns the schema of a value of type t.
func (g *schemaGen) schema(t reflect.Type) map[string]any {
	if t == reflect.TypeFor[Duration]() {
		g.defs["Duration"] = map[string]any{
			"type":        "string",
			"pattern":     `^([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$`,
			"description": g.docs["Duration"],
		}
		return map[string]any{"$ref": "#/$defs/Duration"}
	}
	if t == reflect.TypeFor[Size]() {
		g.defs["Size"] = map[string]any{
			"oneOf": []any{
				map[string]any{"type": "integer", "minimum": 0},
				map[string]any{"type": "string", "pattern": `^\s*[0-9]+\s*([kKmMgGtT][bB]?|[kKmMgGtT][iI][bB]|[bB])?\s*$`},
			},
			"description": g.docs["Size"],
		}
		return map[string]any{"$ref": "#/$defs/Size"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.schema(t.Elem())
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Slice:
		items := g.schema(t.Elem())
		// One item may be written without the list.
		return map[string]any{"anyOf": []any{map[string]any{"type": "array", "items": items}, items}}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Struct:
		name := t.Name()
		if _, ok := g.defs[name]; !ok {
			g.defs[name] = nil // breaks cycles
			props := map[string]any{}
			g.properties(t, props)
			def := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
			if d := g.docs[name]; d != "" {
				def["description"] = d
			}
			if reflect.PointerTo(t).Implements(scalarSetterType) {
				scalar := "string"
				if st, ok := reflect.New(t).Interface().(interface{ scalarSchemaType() string }); ok {
					scalar = st.scalarSchemaType()
				}
				def = map[string]any{"anyOf": []any{def, map[string]any{"type": scalar}}, "description": def["description"]}
			}
			g.defs[name] = def
		}
		return map[string]any{"$ref": "#/$defs/" + name}
	}
	return map[string]any{}
}
