package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// The YAML library (go.yaml.in/yaml/v3) reports a syntax error at the line
// where the enclosing construct starts, not where the parser stopped, and
// for parser errors that line is 0-based: a key indented one space too few
// on line 4 of
//
//	strategies:
//	  - id: 1
//	    metric: cpu.idle
//	   func: "all(#3)"
//
// comes out as "yaml: line 1: did not find expected '-' indicator" (the
// list starts on line 2). The library exposes neither position, so
// syntaxError finds the line itself: the first line L such that the file
// cut after L already fails with exactly the same error. Lines before the
// one the parser stopped at parse (a block list or mapping cut short is
// closed by the end of the input) or fail differently; from that line on
// the parser meets the same token in the same state. In a flow collection
// ([...] or {...}) left open, L is the line where it opens.

// yamlSyntaxRE splits the library's error text: the optional line and the
// problem.
var yamlSyntaxRE = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.+)$`)

// parserProblems are the library's parser (not scanner) problems, whose
// line is 0-based, with the construct each one's line is the start of.
var parserProblems = map[string]string{
	"did not find expected '-' indicator":    "block sequence",
	"did not find expected key":              "block mapping",
	"did not find expected ',' or ']'":       "flow sequence",
	"did not find expected ',' or '}'":       "flow mapping",
	"found undefined tag handle":             "node",
	"did not find expected node content":     "",
	"did not find expected <document start>": "",
	"did not find expected <stream-start>":   "",
	"found duplicate %YAML directive":        "",
	"found incompatible YAML document":       "",
	"found duplicate %TAG directive":         "",
}

// syntaxError returns err, the error of decoding b, with the line of a
// syntax error corrected (see above) and, when it differs, the line where
// the enclosing construct starts. Other errors (a value of the wrong type,
// an unknown field: their lines are right) are returned as they are.
func syntaxError(b []byte, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return err
	}
	m := yamlSyntaxRE.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	problem := m[2]
	start := 0 // 1-based line the library named, 0 when none
	if m[1] != "" {
		start, _ = strconv.Atoi(m[1])
	}
	what, parser := parserProblems[problem]
	if parser && m[1] != "" {
		start++
	}
	if !parser {
		what = "token"
	}
	line := firstFailingLine(b, err.Error())
	if line == 0 || line < start {
		return err
	}
	msg := fmt.Sprintf("yaml: line %d: %s", line, problem)
	if start > 0 && start < line && what != "" {
		msg += fmt.Sprintf(" (in the %s that starts on line %d)", what, start)
	}
	return errors.New(msg)
}

// firstFailingLine returns the first 1-based line L such that b cut after
// L fails to parse with the error text full; 0 if even all of b does not.
// It bisects: cut after any line from L on, the text fails the same way.
func firstFailingLine(b []byte, full string) int {
	ends := lineEnds(b)
	if parseError(b) != full {
		return 0
	}
	lo, hi := 0, len(ends)-1 // the cut after line hi+1 fails the same way
	for lo < hi {
		mid := lo + (hi-lo)/2
		if parseError(b[:ends[mid]]) == full {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo + 1
}

// parseError parses b as YAML (syntax only) and returns the error text,
// "" when it parses.
func parseError(b []byte) string {
	var n yaml.Node
	err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&n)
	if err == nil || errors.Is(err, io.EOF) {
		return ""
	}
	return err.Error()
}

// lineEnds returns the end offset of every line of b, the line breaks
// counted as the YAML library counts them: LF, CR LF, CR, NEL, LS and PS.
// The last line ends at len(b) (it is empty when b ends with a break).
func lineEnds(b []byte) []int {
	var ends []int
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n':
			i++
		case b[i] == '\r', b[i] == '\n':
		case b[i] == 0xc2 && i+1 < len(b) && b[i+1] == 0x85: // NEL
			i++
		case b[i] == 0xe2 && i+2 < len(b) && b[i+1] == 0x80 && (b[i+2] == 0xa8 || b[i+2] == 0xa9): // LS, PS
			i += 2
		default:
			continue
		}
		ends = append(ends, i+1)
	}
	return append(ends, len(b))
}
