package proto

import (
	"fmt"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// The JSON lexing of MVDecoder (Decode, DecodeRPCRequest). It accepts
// exactly what encoding/json accepts (its scanner: RFC 8259, white space
// ' ', \t, \n, \r, nesting at most 10000 deep, invalid UTF-8 allowed in
// strings) and decodes strings as encoding/json does (invalid UTF-8 and
// lone surrogates become U+FFFD), so that a body is refused or taken,
// and read, the same way by both paths. Functions take the input and an
// index and return the index past what they read.

// maxJSONDepth is encoding/json's limit on nested arrays and objects.
const maxJSONDepth = 10000

// JSONError is a syntax error in a JSON document.
type JSONError struct {
	Offset int    // byte offset of the error in the input
	Msg    string // what was wrong
}

func (e *JSONError) Error() string { return fmt.Sprintf("%s at offset %d", e.Msg, e.Offset) }

const msgEOF = "unexpected end of JSON input"

// Truncated reports whether the input ended before the JSON value did:
// more input may complete it.
func (e *JSONError) Truncated() bool { return e.Msg == msgEOF }

func jsonErr(b []byte, i int, what string) error {
	if i >= len(b) {
		return &JSONError{Offset: len(b), Msg: msgEOF}
	}
	return &JSONError{Offset: i, Msg: fmt.Sprintf("invalid character %q %s", b[i], what)}
}

// Flags of a scanned string.
const (
	strEscaped  = 1 << iota // holds a backslash escape
	strNonASCII             // holds a byte >= 0x80
)

// strPlain marks the bytes a string holds as they are: not a quote, a
// backslash, a control character or a byte of a multi-byte sequence.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// skipWS returns the index of the first byte at or after i that is not
// JSON white space.
func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanString reads the string whose opening quote is b[i]; end is the
// index past its closing quote.
func scanString(b []byte, i int) (end int, flags uint8, err error) {
	i++
	for {
		for i+4 <= len(b) && strPlain[b[i]] && strPlain[b[i+1]] && strPlain[b[i+2]] && strPlain[b[i+3]] {
			i += 4
		}
		for i < len(b) && strPlain[b[i]] {
			i++
		}
		if i >= len(b) {
			return 0, 0, jsonErr(b, i, "")
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, flags, nil
		case c == '\\':
			flags |= strEscaped
			i++
			if i >= len(b) {
				return 0, 0, jsonErr(b, i, "")
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				for k := 1; k <= 4; k++ {
					if i+k >= len(b) || !isHex(b[i+k]) {
						return 0, 0, jsonErr(b, i+k, "in \\u hexadecimal character escape")
					}
				}
				i += 5
			default:
				return 0, 0, jsonErr(b, i, "in string escape code")
			}
		case c < 0x20:
			return 0, 0, jsonErr(b, i, "in string literal")
		default:
			flags |= strNonASCII
			i++
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// scanNumber reads the number starting at b[i]; isInt is false when it
// has a fraction or an exponent.
func scanNumber(b []byte, i int) (end int, isInt bool, err error) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return 0, false, jsonErr(b, i, "")
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = digits(b, i+1)
	default:
		return 0, false, jsonErr(b, i, "in numeric literal")
	}
	isInt = true
	if i < len(b) && b[i] == '.' {
		isInt = false
		if i++; i >= len(b) || b[i] < '0' || b[i] > '9' {
			return 0, false, jsonErr(b, i, "after decimal point in numeric literal")
		}
		i = digits(b, i)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		isInt = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return 0, false, jsonErr(b, i, "in exponent of numeric literal")
		}
		i = digits(b, i)
	}
	return i, isInt, nil
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// scanLiteral reads true, false or null starting at b[i].
func scanLiteral(b []byte, i int) (int, error) {
	var lit string
	switch b[i] {
	case 't':
		lit = "true"
	case 'f':
		lit = "false"
	default:
		lit = "null"
	}
	for k := 1; k < len(lit); k++ {
		if i+k >= len(b) || b[i+k] != lit[k] {
			return 0, jsonErr(b, i+k, "in literal "+lit)
		}
	}
	return i + len(lit), nil
}

// scanScalar reads the string, number or literal starting at b[i]; ok is
// false when b[i] starts an array, an object or nothing valid.
func scanScalar(b []byte, i int) (end int, ok bool, err error) {
	switch c := b[i]; {
	case c == '"':
		end, _, err = scanString(b, i)
	case c == '-' || '0' <= c && c <= '9':
		end, _, err = scanNumber(b, i)
	case c == 't' || c == 'f' || c == 'n':
		end, err = scanLiteral(b, i)
	default:
		return 0, false, nil
	}
	return end, true, err
}

// skipValue reads the value starting at b[i] (white space skipped),
// checking its syntax; depth is the number of arrays and objects open
// around it. stack is scratch space, returned for reuse.
func skipValue(b []byte, i, depth int, stack []byte) (int, []byte, error) {
	stack = stack[:0]
	for {
		// A value starts at i.
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, stack, jsonErr(b, i, "")
		}
		end, ok, err := scanScalar(b, i)
		switch {
		case err != nil:
			return 0, stack, err
		case ok:
			i = end
		case b[i] == '{' || b[i] == '[':
			if depth+len(stack)+1 > maxJSONDepth {
				return 0, stack, &JSONError{Offset: i, Msg: "exceeded max depth"}
			}
			open := b[i]
			stack = append(stack, open)
			i = skipWS(b, i+1)
			if i < len(b) && b[i] == open+2 { // '[' + 2 == ']', '{' + 2 == '}'
				i++
				stack = stack[:len(stack)-1]
			} else if open == '{' {
				if i, err = scanKey(b, i); err != nil {
					return 0, stack, err
				}
				continue
			} else {
				continue
			}
		default:
			return 0, stack, jsonErr(b, i, "looking for beginning of value")
		}
		// A value ended at i: close what it ends, find the next one.
		for {
			if len(stack) == 0 {
				return i, stack, nil
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return 0, stack, jsonErr(b, i, "")
			}
			top := stack[len(stack)-1]
			if b[i] == top+2 {
				i++
				stack = stack[:len(stack)-1]
				continue
			}
			if b[i] != ',' {
				return 0, stack, jsonErr(b, i, "after array element or object key:value pair")
			}
			i++
			if top == '{' {
				if i, err = scanKey(b, skipWS(b, i)); err != nil {
					return 0, stack, err
				}
			}
			break
		}
	}
}

// scanKey reads an object key and the colon after it, starting at b[i].
func scanKey(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, jsonErr(b, i, "looking for beginning of object key string")
	}
	i, _, err := scanString(b, i)
	if err != nil {
		return 0, err
	}
	return colon(b, i)
}

// colon reads the colon after an object key (white space around it
// skipped).
func colon(b []byte, i int) (int, error) {
	i = skipWS(b, i)
	if i >= len(b) || b[i] != ':' {
		return 0, jsonErr(b, i, "after object key")
	}
	return skipWS(b, i+1), nil
}

// appendString appends the content of the JSON string s (quotes
// included, as scanned, with its flags) to dst, decoded as encoding/json
// decodes it.
func appendString(dst, s []byte, flags uint8) []byte {
	s = s[1 : len(s)-1]
	if flags == 0 || flags == strNonASCII && utf8.Valid(s) {
		return append(dst, s...)
	}
	for r := 0; r < len(s); {
		switch c := s[r]; {
		case c == '\\':
			r++
			switch c := s[r]; c {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				rr := hex4(s[r+1:])
				r += 5
				if utf16.IsSurrogate(rr) {
					if r+6 <= len(s) && s[r] == '\\' && s[r+1] == 'u' {
						if dec := utf16.DecodeRune(rr, hex4(s[r+2:])); dec != unicode.ReplacementChar {
							dst = utf8.AppendRune(dst, dec)
							r += 6
							continue
						}
					}
					rr = unicode.ReplacementChar
				}
				dst = utf8.AppendRune(dst, rr)
				continue
			default: // '"', '\\', '/'
				dst = append(dst, c)
			}
			r++
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			dst = utf8.AppendRune(dst, rr)
			r += size
		}
	}
	return dst
}

// hex4 decodes the four hexadecimal digits at the start of s (checked
// by scanString).
func hex4(s []byte) rune {
	var r rune
	for _, c := range s[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// keyIs reports whether the object key key (decoded) selects the struct
// field named name (ASCII) for encoding/json: equal
// under its case folding (ASCII letters, and Unicode simple folding,
// where U+017F ſ folds to S and U+212A K to K).
func keyIs(key []byte, name string) bool {
	j := 0
	for i := 0; i < len(key); j++ {
		if j >= len(name) {
			return false
		}
		want := rune(upperASCII(name[j]))
		if c := key[i]; c < utf8.RuneSelf {
			if rune(upperASCII(c)) != want {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(key[i:])
		if foldRune(r) != want {
			return false
		}
		i += n
	}
	return j == len(name)
}

func upperASCII(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// foldRune is encoding/json's: the smallest rune of r's fold orbit.
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}
