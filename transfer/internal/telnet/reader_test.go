package telnet

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll returns the lines of in as a Reader with lines of at most max
// bytes gives them, and the error that ended reading.
func readAll(rd io.Reader, max int) ([]string, error) {
	r := NewReader(rd, max)
	var lines []string
	for {
		if err := r.Wait(); err != nil {
			return lines, err
		}
		for {
			l, err := r.Next()
			if err != nil {
				return lines, err
			}
			lines = append(lines, string(l))
			if !r.More() {
				break
			}
		}
	}
}

func TestReader(t *testing.T) {
	long := strings.Repeat("y", 70000)
	f := func(in string, max int, want []string, wantErr error) {
		t.Helper()
		for _, rd := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in)), iotest.HalfReader(strings.NewReader(in))} {
			got, err := readAll(rd, max)
			if !errors.Is(err, wantErr) || strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("%.40q (max %d): %q %v, want %q %v", in, max, got, err, want, wantErr)
			}
		}
	}
	f("a\nb\r\n\nc", 10, []string{"a", "b", "", "c"}, io.EOF)
	f("0123456789\r\n0123456789\n", 10, []string{"0123456789", "0123456789"}, io.EOF)
	f("ok\n01234567890\n", 10, []string{"ok"}, errTooLong)
	f("ok\n01234567890123", 10, []string{"ok"}, errTooLong) // no newline needed to know
	f("ok\n0123456789ab", 10, []string{"ok"}, errTooLong)   // at EOF
	f("ok\n"+long+"\n"+"after\n", 80000, []string{"ok", long, "after"}, io.EOF)
	f("", 10, nil, io.EOF)
}

// An idle reader holds no line buffer; a line across many reads is whole.
func TestReaderReleasesBuffer(t *testing.T) {
	pr, pw := io.Pipe()
	r := NewReader(pr, 100)
	go func() { _, _ = io.WriteString(pw, "abc"); _, _ = io.WriteString(pw, "def\n") }()
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	l, err := r.Next()
	if string(l) != "abcdef" || err != nil {
		t.Fatalf("%q %v", l, err)
	}
	go func() { _, _ = io.WriteString(pw, "x\n"); pw.Close() }()
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	if l, _ := r.Next(); string(l) != "x" {
		t.Fatalf("%q", l)
	}
	if err := r.Wait(); !errors.Is(err, io.EOF) || r.buf != nil {
		t.Fatalf("after the last line: %v, buffer held %v", err, r.buf != nil)
	}
}
