package proto

import (
	"strings"
	"testing"
	"unicode"
)

// hasControl is unicode.IsControl over the runes of s: every length
// (the word loop and its overlapping tail), every control byte at every
// position, C1 controls split across words, and invalid UTF-8.
func TestHasControlIsUnicodeIsControl(t *testing.T) {
	f := func(s string) {
		t.Helper()
		if got, want := hasControl(s), strings.ContainsFunc(s, unicode.IsControl); got != want {
			t.Fatalf("hasControl(%q) = %v, want %v", s, got, want)
		}
	}
	for n := 0; n <= 24; n++ {
		base := strings.Repeat("a", n)
		f(base)
		for i := 0; i < n; i++ {
			for _, c := range []string{"\x00", "\t", "\x1f", "\x7f", "\u0080", "\u0085", "\u009f", "\u00a0", "é", "\xc2", "\x80", "\xff", " ", "~"} {
				f(base[:i] + c + base[i:])
			}
		}
	}
	// Pseudo-random strings over an alphabet rich in edge bytes.
	alphabet := []byte{'a', 'z', 0, 0x1f, 0x20, 0x7e, 0x7f, 0x80, 0x9f, 0xa0, 0xbf, 0xc2, 0xc3, 0xe2, 0xff}
	seed := uint64(1)
	next := func() uint64 {
		seed = seed*6364136223846793005 + 1442695040888963407
		return seed >> 33
	}
	b := make([]byte, 0, 40)
	for range 200000 {
		b = b[:0]
		for range int(next() % 40) {
			if next()%4 == 0 {
				b = append(b, alphabet[next()%uint64(len(alphabet))])
			} else {
				b = append(b, byte('a'+next()%26))
			}
		}
		f(string(b))
	}
}
