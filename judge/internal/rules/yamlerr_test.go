package rules

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// The YAML library reports a block structure error at the (0-based) line
// where the enclosing list or mapping starts: an indentation mistake on
// line 4 came out as "line 1". The judge reports the line the parser could
// not accept, and where the enclosing structure starts.
func TestSyntaxErrorLineRealFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	body := `strategies:
  - id: 1
    metric: cpu.idle
   func: "all(#3)"
    operator: "<"
    rightValue: 5
    maxStep: 3
`
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(path, 11)
	if err == nil {
		t.Fatal("no error")
	}
	want := path + ": yaml: line 4: did not find expected '-' indicator (in the block sequence that starts on line 2)"
	if err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
}

func TestSyntaxErrorLines(t *testing.T) {
	f := func(yaml, want string) {
		t.Helper()
		_, err := Parse([]byte(yaml), 11)
		if err == nil || err.Error() != want {
			t.Errorf("%q\n got  %v\n want %s", yaml, err, want)
		}
	}
	// Block structure (parser) errors: the line of the offending token.
	f("# rules\nstrategies:\n  - id: 1\n   metric: m\n",
		"yaml: line 4: did not find expected '-' indicator (in the block sequence that starts on line 3)")
	f("strategies:\n  - id: 1\n    metric: m\n  note: x\nexpressions: []\n",
		"yaml: line 4: did not find expected '-' indicator (in the block sequence that starts on line 2)")
	f("strategies:\n  - id: 1\n    metric: m\n\n# comment\n    - x\n",
		"yaml: line 6: did not find expected key (in the block mapping that starts on line 2)")
	f("strategies:\r\n  - id: 1\r\n    metric: m\r\n   func: x\r\n",
		"yaml: line 4: did not find expected '-' indicator (in the block sequence that starts on line 2)")
	f("strategies:\n  - id: 1\n    metric: m\n  }\n",
		"yaml: line 4: did not find expected '-' indicator (in the block sequence that starts on line 2)")
	f("strategies:\n  - id: 1\n    metric: m\n    func: x\n    tags: !x!y z\n",
		"yaml: line 5: found undefined tag handle")
	// An unclosed flow collection: the line where it opens (the file is
	// broken from there on).
	f("strategies:\n  - id: 1\n    tags: {a: \"1\"\n    metric: m\n    func: x\n",
		"yaml: line 3: did not find expected ',' or '}'")
	f("strategies:\n  - id: 1\n    endpoints: [a, b\n    metric: m\n",
		"yaml: line 3: did not find expected ',' or ']'")
	// Scanner errors reported on their line: unchanged.
	f("strategies:\n  - id: 1\n    metric: m\n    note: a: b\n",
		"yaml: line 4: mapping values are not allowed in this context")
	// Scanner errors the library reports where the token it was reading
	// starts: the line it stopped at, and where that token starts.
	f("strategies:\n  - id: 1\n\tmetric: m\n",
		"yaml: line 3: found a tab character that violates indentation (in the token that starts on line 2)")
	f("strategies:\n  - id: 1\n    maxStep: 3\n  \"  priority: 1\n    note: x\n    tags: {mount: \"/\"}\n    func: x\n",
		"yaml: line 6: could not find expected ':' (in the token that starts on line 4)")
	f("strategies:\n  - id: 1\n    metric: m\n    note: \"open\n",
		"yaml: line 4: found unexpected end of stream")
	// Errors found after parsing carry the right line already.
	f("strategies:\n  - id: 1\n    maxStep: [1]\n",
		"yaml: unmarshal errors:\n  line 3: cannot unmarshal !!seq into int")
}

// Whatever the input, a syntax error names a line of it.
func FuzzSyntaxErrorLine(f *testing.F) {
	f.Add([]byte("strategies:\n  - id: 1\n    metric: cpu.idle\n   func: \"all(#3)\"\n"))
	f.Add([]byte("strategies:\n  - id: 1\n    tags: {a: \"1\"\n    metric: m\n"))
	f.Add([]byte("strategies:\n  - id: 1\n\tmetric: m\n"))
	f.Add([]byte("strategies: [\n  {id: 1},\n  {id: 2}\n  {id: 3}\n]\n"))
	f.Add([]byte("strategies:\r\n  - id: 1\r    metric: m\u2028   func: x\u0085"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := Parse(b, 11)
		if err == nil {
			return
		}
		m := yamlSyntaxRE.FindStringSubmatch(err.Error())
		if m == nil || m[1] == "" {
			return
		}
		n, _ := strconv.Atoi(m[1])
		if lines := len(lineEnds(b)); n < 1 || n > lines {
			t.Fatalf("%q: %v names line %d of %d", b, err, n, lines)
		}
	})
}
