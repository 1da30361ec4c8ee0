package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize bounds the configuration file read.
const MaxFileSize = 16 << 20

// Error lists every problem found in a configuration file, each as "file:line: message".
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0]
	}
	return fmt.Sprintf("%d problems:\n  %s", len(e.Problems), strings.Join(e.Problems, "\n  "))
}

// problems collects the problems of one file.
type problems struct {
	file    string
	list    []string
	visited map[visit]bool // what checkKeys has seen: an alias is checked once per type
}

type visit struct {
	n *yaml.Node
	t reflect.Type
}

func (p *problems) add(line int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if line > 0 {
		p.list = append(p.list, fmt.Sprintf("%s:%d: %s", p.file, line, msg))
	} else {
		p.list = append(p.list, fmt.Sprintf("%s: %s", p.file, msg))
	}
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return &Error{Problems: p.list}
}

// Load reads, decodes and checks the file at path, and reads the files it names (passwords,
// TLS certificates and keys), relative paths relative to path's directory.
func Load(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the configuration file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading the configuration file: %w", err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, MaxFileSize)
	}
	return Parse(data, path)
}

// Parse decodes and checks a configuration file's content; name is the file's path, used in
// error messages and to resolve the relative paths the file names.
func Parse(data []byte, name string) (*File, error) {
	p := &problems{file: name}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		addYAMLError(p, err)
		return nil, p.err()
	}
	f := &File{Path: name}
	if len(root.Content) == 0 || isNull(root.Content[0]) { // an empty file: nothing configured
		return f, nil
	}
	doc := root.Content[0]
	p.visited = map[visit]bool{}
	checkKeys(p, doc, reflect.TypeOf(f).Elem(), "", 0)
	if err := p.err(); err != nil {
		return nil, err
	}
	if err := doc.Decode(f); err != nil {
		addYAMLError(p, err)
		return nil, p.err()
	}
	f.Path = name
	placeEntries(f, doc, name)
	f.check(p)
	if err := p.err(); err != nil {
		return nil, err
	}
	return f, nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

var (
	yamlLine  = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)
	backticks = regexp.MustCompile("`[^`]*`")
)

// addYAMLError turns the YAML library's errors into problems with the file's name. A value
// the library quotes is left out: it could be a secret written in the wrong place.
func addYAMLError(p *problems, err error) {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	for _, m := range msgs {
		m = backticks.ReplaceAllString(m, "a value")
		line := 0
		if sm := yamlLine.FindStringSubmatch(m); sm != nil {
			line, _ = strconv.Atoi(sm[1])
			m = m[len(sm[0]):]
		}
		m = strings.TrimPrefix(m, "yaml: ")
		p.add(line, "%s", m)
	}
}

// posErrorf is an error of a value at node n, in the form the YAML library collects.
func posErrorf(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: ", n.Line) + fmt.Sprintf(format, args...)}}
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// maxDepth bounds the nesting checkKeys follows (the schema is four levels deep).
const maxDepth = 32

// checkKeys reports the unknown and the repeated keys of the mappings under n, which is
// decoded into a value of type t; where names the place for messages ("sources[2]", "" for
// the top level).
func checkKeys(p *problems, n *yaml.Node, t reflect.Type, where string, depth int) {
	if depth > maxDepth {
		p.add(n.Line, "%s: nested too deeply", placeName(where))
		return
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	// Aliases can make a small document a huge tree: each node is checked once per type.
	if p.visited[visit{n, t}] {
		return
	}
	p.visited[visit{n, t}] = true
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // a type error, reported by the decoder
		}
		fields := structFields(t)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" && k.Tag == "!!merge" {
				checkMerge(p, v, t, where, depth)
				continue
			}
			if prev, ok := seen[k.Value]; ok {
				p.add(k.Line, "%s: key %q given twice (first at line %d)", placeName(where), k.Value, prev)
				continue
			}
			seen[k.Value] = k.Line
			ft, ok := fields[k.Value]
			if !ok {
				p.add(k.Line, "%s: unknown key %q%s (known keys: %s)", placeName(where), k.Value, secretHint(k.Value), strings.Join(sortedKeys(fields), ", "))
				continue
			}
			checkKeys(p, v, ft, join(where, k.Value), depth+1)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if prev, ok := seen[k.Value]; ok {
				p.add(k.Line, "%s: key %q given twice (first at line %d)", placeName(where), k.Value, prev)
				continue
			}
			seen[k.Value] = k.Line
			checkKeys(p, v, t.Elem(), join(where, k.Value), depth+1)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, item := range n.Content {
			checkKeys(p, item, t.Elem(), fmt.Sprintf("%s[%d]", where, i), depth+1)
		}
	}
}

// placeName names a place for messages.
func placeName(where string) string {
	if where == "" {
		return "top level"
	}
	return where
}

func join(where, key string) string {
	if where == "" {
		return key
	}
	return where + "." + key
}

// checkMerge checks the mapping(s) a merge key (<<) brings in.
func checkMerge(p *problems, v *yaml.Node, t reflect.Type, where string, depth int) {
	if v.Kind == yaml.SequenceNode {
		for _, m := range v.Content {
			checkKeys(p, m, t, where, depth+1)
		}
		return
	}
	checkKeys(p, v, t, where, depth+1)
}

// secretHint points to the file-based setting when a key looks like an inline secret.
func secretHint(key string) string {
	switch strings.ToLower(key) {
	case "password", "bearer_token", "token", "secret":
		return ": secrets are read only from files (password_file), never written in the configuration"
	}
	return ""
}

// structFields maps the YAML keys of struct type t to their types, inline fields included.
func structFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "inline" {
			maps := structFields(f.Type)
			for k, v := range maps {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// placeEntries records the line of every source and module.
func placeEntries(f *File, doc *yaml.Node, file string) {
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], doc.Content[i+1]
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		switch k.Value {
		case "sources":
			for j, item := range v.Content {
				if j < len(f.Sources) && f.Sources[j] != nil {
					f.Sources[j].Line, f.Sources[j].file = item.Line, file
				}
			}
		case "modules":
			for j := 0; j+1 < len(v.Content); j += 2 {
				name := v.Content[j].Value
				if m := f.Modules[name]; m != nil {
					m.Name, m.Line, m.file = name, v.Content[j].Line, file
				}
			}
		}
	}
}

// dump is the canonical text of a value, for fingerprints.
func dump(v any) []byte {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	_ = enc.Encode(v)
	_ = enc.Close()
	return b.Bytes()
}
