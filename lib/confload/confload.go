// Package confload decodes a binary's YAML config file the way every
// Kestrel binary does: strictly (an unknown field is an error), with the
// file and the field named in every error, and with plain time.Duration
// fields written as Go duration strings ("30s", "5m").
//
// A config package uses it as
//
//	func Load(path string) (Config, error) {
//		c := Default()
//		if err := confload.Load(path, &c); err != nil {
//			return Config{}, err
//		}
//		return c, confload.InFile(path, c.Validate())
//	}
//
// where Validate joins (errors.Join) one error per bad field, each
// starting with the field's name ("http.listen: ...").
package confload

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads the file at path and decodes it into v (see Decode). Fields
// the file does not set keep the values v already has: fill v with the
// defaults first.
func Load(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read config: %w", err)
	}
	return Decode(path, b, v)
}

// Decode decodes b, the contents of file, strictly into v. An empty
// document leaves v as it is. Each error starts with the file and the
// line, and names the field ("ops-meta.yaml: line 7: rollout.soak: cannot
// unmarshal !!str `soon` into time.Duration"); several errors are joined.
func Decode(file string, b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	err := dec.Decode(v)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("%s: %w", file, err) // a syntax error: the library names the line
	}
	fields := fieldsByLine(b)
	errs := make([]error, 0, len(te.Errors))
	for _, msg := range te.Errors {
		errs = append(errs, fmt.Errorf("%s: %s", file, describe(msg, fields)))
	}
	return errors.Join(errs...)
}

// InFile prefixes every error joined in err (as Validate returns them,
// also joins of joins) with file; nil stays nil.
func InFile(file string, err error) error {
	if err == nil {
		return nil
	}
	var out []error
	var flatten func(error)
	flatten = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				flatten(e)
			}
			return
		}
		out = append(out, fmt.Errorf("%s: %w", file, e))
	}
	flatten(err)
	return errors.Join(out...)
}

// field is a key of the file: its dotted path, its name, and its value
// when that is a scalar.
type field struct {
	path, key string
	tag, val  string // the value node's short tag and scalar value
	valLine   int
}

// fieldsByLine maps each line to the fields whose key or value is on it.
func fieldsByLine(b []byte) map[int][]field {
	var root yaml.Node
	if yaml.Unmarshal(b, &root) != nil {
		return nil
	}
	out := map[int][]field{}
	var walk func(n *yaml.Node, path string)
	add := func(line int, f field) { out[line] = append(out[line], f) }
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				f := field{path: p, key: k.Value, tag: v.ShortTag(), val: v.Value, valLine: v.Line}
				add(k.Line, f)
				if v.Line != k.Line {
					add(v.Line, f)
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := path + "[" + strconv.Itoa(i) + "]"
				add(c.Line, field{path: p, tag: c.ShortTag(), val: c.Value, valLine: c.Line})
				walk(c, p)
			}
		}
	}
	walk(&root, "")
	return out
}

var (
	lineRE     = regexp.MustCompile(`^line (\d+): (.*)$`)
	notFoundRE = regexp.MustCompile(`^field (.+) not found in type `)
	// the library's type error: "cannot unmarshal !!str `abc` into T",
	// the value cut to 7 characters and "..." when longer than 10.
	unmarshalRE = regexp.MustCompile("^cannot unmarshal (!!\\w+)(?: `(.*)`)? into ")
)

// describe puts the field's path in a type error of the library:
// "line 3: cannot unmarshal ..." becomes "line 3: download.timeout:
// cannot unmarshal ...".
func describe(msg string, fields map[int][]field) string {
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	line, _ := strconv.Atoi(m[1])
	rest := m[2]
	if strings.HasSuffix(rest, "into time.Duration") {
		// A bare number: YAML durations need their unit.
		rest += ` (write a duration with its unit, e.g. "30s", "500ms", "0s")`
	}
	if p := fieldOf(rest, fields[line], line); p != "" {
		return fmt.Sprintf("line %d: %s: %s", line, p, rest)
	}
	return fmt.Sprintf("line %d: %s", line, rest)
}

func fieldOf(msg string, cands []field, line int) string {
	if m := notFoundRE.FindStringSubmatch(msg); m != nil {
		for _, f := range cands {
			if f.key == m[1] {
				return f.path
			}
		}
		return ""
	}
	m := unmarshalRE.FindStringSubmatch(msg)
	if m == nil {
		return ""
	}
	tag, val := m[1], m[2]
	for _, f := range cands {
		if f.valLine != line || f.tag != tag {
			continue
		}
		if val == "" || f.val == val || (strings.HasSuffix(val, "...") && strings.HasPrefix(f.val, strings.TrimSuffix(val, "..."))) {
			return f.path
		}
	}
	return ""
}
