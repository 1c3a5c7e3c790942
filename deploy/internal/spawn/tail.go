package spawn

import (
	"bytes"
	"io"
	"os"
)

// TailFile returns the last n lines of a file ("" if it cannot be read).
// Only the last 64 KiB are read.
func TailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(st.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return TailLines(b, n)
}

// TailLines returns the last n lines of b.
func TailLines(b []byte, n int) string {
	b = bytes.TrimRight(b, "\n")
	if len(b) == 0 || n <= 0 {
		return ""
	}
	i := len(b)
	for k := 0; k < n; k++ {
		j := bytes.LastIndexByte(b[:i], '\n')
		if j < 0 {
			return string(b)
		}
		i = j
	}
	return string(b[i+1:])
}
