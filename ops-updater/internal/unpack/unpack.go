// Package unpack extracts an agent tarball (.tar.gz) safely into an empty
// directory.
//
// Allowed: directories, regular files, hard links to regular files of the
// same archive, and symbolic links whose target stays inside the tree when
// resolved through every other link of the archive. Refused, with an error
// naming the entry: absolute paths, ".." components, entries under a
// symbolic link, links leaving the tree, device files, FIFOs and every
// other type, duplicate entries, more than MaxFiles entries, more than
// MaxBytes of file content, and a truncated or corrupt gzip or tar stream.
// Modes keep the permission bits only (no setuid, setgid or sticky bit);
// owners are not applied.
package unpack

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Limits bound an archive.
type Limits struct {
	MaxBytes int64 // total size of regular files
	MaxFiles int   // number of entries
}

type kind int

const (
	kDir kind = iota
	kFile
	kSymlink
)

type entry struct {
	kind   kind
	target string // symlink target as written
}

// Unpack extracts the gzip-compressed tar r into dst, which must exist and
// be empty. On error dst may hold part of the archive; the caller removes it.
func Unpack(r io.Reader, dst string, lim Limits) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("not a gzip stream: %w", err)
	}
	defer gz.Close()
	gz.Multistream(false)
	tr := tar.NewReader(gz)
	entries := map[string]entry{} // cleaned relative path -> entry
	var total int64
	var count int
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return streamErr("reading tar header", err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		count++
		if count > lim.MaxFiles {
			return fmt.Errorf("archive has more than %d entries (download.max_files)", lim.MaxFiles)
		}
		name, err := cleanName(hdr.Name)
		if err != nil {
			return fmt.Errorf("unsafe entry %q: %w", hdr.Name, err)
		}
		if name == "." {
			if hdr.Typeflag != tar.TypeDir {
				return fmt.Errorf("unsafe entry %q: the root is not a directory", hdr.Name)
			}
			continue
		}
		if under := underSymlink(name, entries); under != "" {
			return fmt.Errorf("unsafe entry %q: it is under the symbolic link %q", hdr.Name, under)
		}
		if old, ok := entries[name]; ok && !(old.kind == kDir && hdr.Typeflag == tar.TypeDir) {
			return fmt.Errorf("unsafe entry %q: duplicate entry", hdr.Name)
		}
		full := filepath.Join(dst, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("cannot create directory for %q: %w", hdr.Name, err)
		}
		perm := os.FileMode(hdr.Mode) & 0o777
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(full, perm|0o700); err != nil {
				return fmt.Errorf("cannot create directory %q: %w", hdr.Name, err)
			}
			if err := os.Chmod(full, perm|0o700); err != nil {
				return fmt.Errorf("cannot chmod directory %q: %w", hdr.Name, err)
			}
			entries[name] = entry{kind: kDir}
		case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old archives use TypeRegA
			if hdr.Size < 0 || total+hdr.Size > lim.MaxBytes {
				return fmt.Errorf("archive content is over the limit of %d bytes at %q (download.max_unpacked_size)", lim.MaxBytes, hdr.Name)
			}
			total += hdr.Size
			if err := writeFile(full, perm|0o600, tr, hdr.Size); err != nil {
				return fmt.Errorf("cannot extract %q: %w", hdr.Name, err)
			}
			entries[name] = entry{kind: kFile}
		case tar.TypeSymlink:
			if hdr.Linkname == "" {
				return fmt.Errorf("unsafe entry %q: empty symbolic link target", hdr.Name)
			}
			if strings.HasPrefix(hdr.Linkname, "/") {
				return fmt.Errorf("unsafe entry %q: symbolic link to the absolute path %q", hdr.Name, hdr.Linkname)
			}
			entries[name] = entry{kind: kSymlink, target: hdr.Linkname}
			if _, err := resolve(name, entries); err != nil {
				return fmt.Errorf("unsafe entry %q: symbolic link to %q %w", hdr.Name, hdr.Linkname, err)
			}
			if err := os.Symlink(hdr.Linkname, full); err != nil {
				return fmt.Errorf("cannot create symbolic link %q: %w", hdr.Name, err)
			}
		case tar.TypeLink:
			target, err := cleanName(hdr.Linkname)
			if err != nil || target == "." {
				return fmt.Errorf("unsafe entry %q: hard link to %q outside the archive", hdr.Name, hdr.Linkname)
			}
			if e, ok := entries[target]; !ok || e.kind != kFile {
				return fmt.Errorf("unsafe entry %q: hard link to %q, which is not a regular file earlier in the archive", hdr.Name, hdr.Linkname)
			}
			if err := os.Link(filepath.Join(dst, filepath.FromSlash(target)), full); err != nil {
				return fmt.Errorf("cannot create hard link %q: %w", hdr.Name, err)
			}
			entries[name] = entry{kind: kFile}
		case tar.TypeChar, tar.TypeBlock:
			return fmt.Errorf("unsafe entry %q: device files are not allowed", hdr.Name)
		case tar.TypeFifo:
			return fmt.Errorf("unsafe entry %q: FIFOs are not allowed", hdr.Name)
		default:
			return fmt.Errorf("unsafe entry %q: entry type %q is not allowed", hdr.Name, string(hdr.Typeflag))
		}
	}
	// Every link again, now that the whole tree is known: a later link may
	// change where an earlier one leads.
	for name, e := range entries {
		if e.kind == kSymlink {
			if _, err := resolve(name, entries); err != nil {
				return fmt.Errorf("unsafe entry %q: symbolic link to %q %w", name, e.target, err)
			}
		}
	}
	// Read the gzip trailer: a cut-off file fails its length and CRC check.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return streamErr("reading gzip trailer", err)
	}
	return nil
}

func streamErr(what string, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("truncated archive (%s): %w", what, err)
	}
	return fmt.Errorf("corrupt archive (%s): %w", what, err)
}

func writeFile(full string, perm os.FileMode, r io.Reader, size int64) error {
	f, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, io.LimitReader(r, size))
	if err == nil && n != size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		f.Close()
		return streamErr("reading file content", err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cleanName checks an archive path and returns it cleaned, slash-separated
// and relative ("." for the root).
func cleanName(n string) (string, error) {
	if n == "" {
		return "", errors.New("empty name")
	}
	if strings.HasPrefix(n, "/") {
		return "", errors.New("absolute path")
	}
	if strings.ContainsRune(n, 0) {
		return "", errors.New("NUL in name")
	}
	for _, c := range strings.Split(n, "/") {
		if c == ".." {
			return "", errors.New(`".." component`)
		}
	}
	return path.Clean(n), nil
}

// underSymlink returns the first proper prefix of name that is a symbolic
// link, or "".
func underSymlink(name string, entries map[string]entry) string {
	for i := 0; i < len(name); i++ {
		if name[i] == '/' {
			if e, ok := entries[name[:i]]; ok && e.kind == kSymlink {
				return name[:i]
			}
		}
	}
	return ""
}

// resolve follows the symbolic link at name through the links known so far
// and returns the tree-relative path it leads to, or an error if it leaves
// the tree or loops.
func resolve(name string, entries map[string]entry) (string, error) {
	hops := 0
	var walk func(base []string, target string) ([]string, error)
	walk = func(base []string, target string) ([]string, error) {
		if strings.HasPrefix(target, "/") {
			return nil, errors.New("leaves the tree (absolute)")
		}
		cur := append([]string(nil), base...)
		for _, c := range strings.Split(target, "/") {
			switch c {
			case "", ".":
				continue
			case "..":
				if len(cur) == 0 {
					return nil, errors.New("leaves the tree")
				}
				cur = cur[:len(cur)-1]
				continue
			}
			cur = append(cur, c)
			e, ok := entries[strings.Join(cur, "/")]
			if !ok || e.kind != kSymlink {
				continue
			}
			hops++
			if hops > 40 {
				return nil, errors.New("has too many levels of links")
			}
			next, err := walk(cur[:len(cur)-1], e.target)
			if err != nil {
				return nil, err
			}
			cur = next
		}
		return cur, nil
	}
	parts := strings.Split(name, "/")
	e := entries[name]
	out, err := walk(parts[:len(parts)-1], e.target)
	if err != nil {
		return "", err
	}
	return strings.Join(out, "/"), nil
}
