package gateway

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Keys are the top-level keys the gateway reads; the others belong to the server
// configuration (package conf).
var Keys = []string{"listeners", "services", "upstreams", "access_log", "metrics", "caches", "redis"}

// MaxFileSize caps the configuration file read.
const MaxFileSize = 16 << 20

// Error is a problem in a configuration file, at the line of the key it is about.
type Error struct {
	// File is the file's path ("" when the configuration came from memory).
	File string
	// Line is the line of the key, 0 when unknown.
	Line int
	// Path is the key's path, such as "services.web.routes[2].match.path_regex".
	Path string
	// Msg says what is wrong.
	Msg string
}

// Error formats the problem as "FILE:LINE: PATH: MESSAGE", leaving out what is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteByte(':')
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one file, in the order of the file.
type Errors []*Error

// Error lists the problems, one a line.
func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Has reports whether data (a whole configuration file) holds any of the gateway's Keys
// at the top level. A file without them configures the server only.
func Has(data []byte) bool {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return false
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if slices.Contains(Keys, m.Content[i].Value) {
			return true
		}
	}
	return false
}

// Load reads the configuration file at path, fills in the defaults and validates it.
// The error is an Errors naming the lines, or the error of reading the file.
func Load(path string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// readFile reads at most MaxFileSize bytes of path.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, MaxFileSize)
	}
	data := make([]byte, st.Size())
	n, err := f.ReadAt(data, 0)
	if n == len(data) {
		err = nil
	}
	return data[:n], err
}

// Parse reads the gateway keys of a configuration file's contents, fills in the defaults
// and validates them. file names the file in messages, and relative paths in the
// configuration are relative to its directory (the working directory when file is "").
func Parse(data []byte, file string) (*Config, error) {
	c := &Config{file: file, lines: map[string]int{}}
	if file != "" {
		c.dir = filepath.Dir(file)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Errors{{File: file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	var errs Errors
	if len(doc.Content) == 1 {
		root := doc.Content[0]
		if root.Kind != yaml.MappingNode {
			if !isNull(root) {
				return nil, Errors{{File: file, Line: root.Line, Msg: "the file must be a mapping of keys to values"}}
			}
		} else {
			d := &decoder{c: c}
			v := reflect.ValueOf(c).Elem()
			fields := fieldsOf(v.Type())
			for i := 0; i+1 < len(root.Content); i += 2 {
				k, val := root.Content[i], root.Content[i+1]
				if fi, ok := fields[k.Value]; ok && slices.Contains(Keys, k.Value) {
					c.lines[k.Value] = k.Line
					d.decode(val, v.Field(fi), k.Value)
				}
			}
			errs = d.errs
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// decoder fills Go values from YAML nodes, strictly: unknown keys, duplicate keys and values
// of the wrong type are errors naming their line. It records the line of every key path.
type decoder struct {
	c    *Config
	errs Errors
}

// scalarSetter is a struct (or named type) that may also be written as one scalar.
type scalarSetter interface {
	setScalar(s string) error
}

func (d *decoder) fail(n *yaml.Node, path, msg string) {
	d.errs = append(d.errs, &Error{File: d.c.file, Line: n.Line, Path: path, Msg: msg})
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// decode stores n into v, the value at path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if _, ok := d.c.lines[path]; !ok {
		d.c.lines[path] = n.Line
	}
	if isNull(n) {
		return
	}
	if v.CanAddr() {
		if s, ok := v.Addr().Interface().(scalarSetter); ok && n.Kind == yaml.ScalarNode {
			if err := s.setScalar(n.Value); err != nil {
				d.fail(n, path, err.Error())
			}
			return
		}
	}
	switch v.Kind() {
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		d.decode(n, e.Elem(), path)
		v.Set(e)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "want a mapping of keys to values, not "+kindName(n))
			return
		}
		fields := fieldsOf(v.Type())
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			p := path + "." + k.Value
			fi, ok := fields[k.Value]
			if !ok {
				d.fail(k, p, "unknown key; the keys here are "+strings.Join(sortedKeys(fields), ", "))
				continue
			}
			if seen[k.Value] {
				d.fail(k, p, "key given twice")
				continue
			}
			seen[k.Value] = true
			d.c.lines[p] = k.Line
			d.decode(val, v.Field(fi), p)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "want a mapping, not "+kindName(n))
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			p := path + "." + k.Value
			if k.Kind != yaml.ScalarNode || k.Value == "" {
				d.fail(k, p, "want a non-empty name as key")
				continue
			}
			if v.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
				d.fail(k, p, "key given twice")
				continue
			}
			d.c.lines[p] = k.Line
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, e, p)
			v.SetMapIndex(reflect.ValueOf(k.Value), e)
		}
	case reflect.Slice:
		items := n.Content
		if n.Kind == yaml.ScalarNode {
			items = []*yaml.Node{n} // one item may be written without the list
		} else if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "want a list, not "+kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(items), len(items))
		for i, it := range items {
			d.decode(it, s.Index(i), path+"["+strconv.Itoa(i)+"]")
		}
		v.Set(s)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want a string, not "+kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || err != nil {
			d.fail(n, path, "want true or false, not "+kindName(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || err != nil {
			d.fail(n, path, "want an integer, not "+kindName(n))
			return
		}
		if v.OverflowInt(i) {
			d.fail(n, path, "integer out of range")
			return
		}
		v.SetInt(i)
	default:
		d.fail(n, path, "unsupported type "+v.Type().String())
	}
}

// kindName describes a node for "want X, not Y" messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!str":
		return strconv.Quote(n.Value)
	case "!!int":
		return "the integer " + n.Value
	case "!!bool":
		return n.Value
	}
	return n.Value
}

// fieldsOf maps the yaml names of t's fields to their index.
func fieldsOf(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.IsExported() && name != "" && name != "-" {
			m[name] = i
		}
	}
	return m
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// errAt returns an Error about the key at path, with its line.
func (c *Config) errAt(path, format string, args ...any) *Error {
	return &Error{File: c.file, Line: c.lineOf(path), Path: path, Msg: fmt.Sprintf(format, args...)}
}

// lineOf returns the line of path, or of its nearest parent that has one.
func (c *Config) lineOf(path string) int {
	for path != "" {
		if l, ok := c.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// File returns the path the configuration was read from.
func (c *Config) File() string { return c.file }

// asErrors returns err as Errors when it is one.
func asErrors(err error) (Errors, bool) {
	var es Errors
	ok := errors.As(err, &es)
	return es, ok
}

// YAML returns the configuration as YAML, with every default filled in.
func (c *Config) YAML() ([]byte, error) { return yaml.Marshal(c) }
