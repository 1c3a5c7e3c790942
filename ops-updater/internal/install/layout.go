package install

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Files inside <install_dir>/<name>/.
const (
	versionFile = ".version"              // the active version (Open-Falcon's layout)
	markerFile  = ".pending"              // a switch in progress (JSON Marker)
	stateFile   = ".updater.json"         // failure and rollback memory (JSON State)
	metaFile    = ".kestrel-install.json" // inside <version>/: install time and digests
	tmpPrefix   = ".tmp-"                 // downloads and unpacks in progress
	trashPrefix = ".trash-"               // directories being deleted
)

// Marker is written before the running version is stopped and removed only
// after .version names the new version (or the old one runs again).
type Marker struct {
	Version   string    `json:"version"`  // being installed
	Previous  string    `json:"previous"` // active before the switch ("" on a fresh install)
	StartedAt time.Time `json:"started_at"`
}

// State survives restarts.
type State struct {
	// FailedVersion did not become healthy; it is not tried again until
	// ops-meta desires another version.
	FailedVersion string `json:"failed_version,omitempty"`
	// Error is why the last install or health check failed ("" after a
	// success); reported in every heartbeat.
	Error     string    `json:"error,omitempty"`
	ErrorTime time.Time `json:"error_time,omitzero"`
	// Previous is the rollback target: the version active before the last
	// successful switch.
	Previous string `json:"previous,omitempty"`
}

// InstallMeta is written into a version directory before it is renamed
// into place.
type InstallMeta struct {
	InstalledAt time.Time `json:"installed_at"`
	Sha256      string    `json:"sha256"`
	Md5         string    `json:"md5"`
	Size        int64     `json:"size"`
	URL         string    `json:"url"`
}

// ValidName reports whether s can be an agent name or version: one path
// component of [A-Za-z0-9._+~-], not starting with a dot, at most 128 bytes.
func ValidName(s string) bool {
	if s == "" || len(s) > 128 || s[0] == '.' || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == '-', c == '+', c == '~':
		default:
			return false
		}
	}
	return true
}

// writeFileAtomic writes via a temp file in the same directory, fsync and
// rename, then fsyncs the directory.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, tmpPrefix+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("cannot sync %s: %w", dir, err)
	}
	return nil
}

func removeSynced(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// Layout is the on-disk view of one install dir.
type Layout struct{ Root string }

// AgentDir is <root>/<name>.
func (l Layout) AgentDir(name string) string { return filepath.Join(l.Root, name) }

// VersionDir is <root>/<name>/<version>.
func (l Layout) VersionDir(name, version string) string {
	return filepath.Join(l.Root, name, version)
}

// Agents lists the agent directories with a .version or a marker.
func (l Layout) Agents() ([]string, error) {
	ents, err := os.ReadDir(l.Root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("cannot list %s: %w", l.Root, err)
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() || !ValidName(e.Name()) {
			continue
		}
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out, nil
}

// Active returns the version in .version ("" when there is none).
func (l Layout) Active(name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(l.AgentDir(name), versionFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("cannot read .version of %s: %w", name, err)
	}
	v := strings.TrimSpace(string(b))
	if v != "" && !ValidName(v) {
		return "", fmt.Errorf("%s/.version holds an invalid version %q", name, v)
	}
	return v, nil
}

// HasVersionFile reports whether <name>/.version exists.
func (l Layout) HasVersionFile(name string) bool {
	_, err := os.Stat(filepath.Join(l.AgentDir(name), versionFile))
	return err == nil
}

// SetActive writes .version atomically.
func (l Layout) SetActive(name, version string) error {
	return writeFileAtomic(filepath.Join(l.AgentDir(name), versionFile), []byte(version+"\n"))
}

// Marker returns the pending marker, or nil.
func (l Layout) Marker(name string) (*Marker, error) {
	b, err := os.ReadFile(filepath.Join(l.AgentDir(name), markerFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read marker of %s: %w", name, err)
	}
	var m Marker
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("corrupt marker %s/%s: %w", name, markerFile, err)
	}
	if !ValidName(m.Version) || (m.Previous != "" && !ValidName(m.Previous)) {
		return nil, fmt.Errorf("corrupt marker %s/%s: bad version %q or previous %q", name, markerFile, m.Version, m.Previous)
	}
	return &m, nil
}

// SetMarker writes the marker atomically.
func (l Layout) SetMarker(name string, m Marker) error {
	b, _ := json.Marshal(m)
	return writeFileAtomic(filepath.Join(l.AgentDir(name), markerFile), append(b, '\n'))
}

// ClearMarker removes the marker.
func (l Layout) ClearMarker(name string) error {
	if err := removeSynced(filepath.Join(l.AgentDir(name), markerFile)); err != nil {
		return fmt.Errorf("cannot remove marker of %s: %w", name, err)
	}
	return nil
}

// State reads the state file (zero State when absent or unreadable).
func (l Layout) State(name string) State {
	var s State
	b, err := os.ReadFile(filepath.Join(l.AgentDir(name), stateFile))
	if err == nil {
		_ = json.Unmarshal(b, &s)
	}
	return s
}

// SetState writes the state file atomically.
func (l Layout) SetState(name string, s State) error {
	b, _ := json.MarshalIndent(s, "", "  ")
	return writeFileAtomic(filepath.Join(l.AgentDir(name), stateFile), append(b, '\n'))
}

// Installed is one version directory.
type Installed struct {
	Version     string
	InstalledAt time.Time
	Meta        *InstallMeta // nil for a directory not installed by Kestrel
}

// Versions lists the installed version directories, newest install first.
func (l Layout) Versions(name string) ([]Installed, error) {
	ents, err := os.ReadDir(l.AgentDir(name))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("cannot list %s: %w", l.AgentDir(name), err)
	}
	var out []Installed
	for _, e := range ents {
		if !e.IsDir() || !ValidName(e.Name()) {
			continue
		}
		in := Installed{Version: e.Name()}
		if m, err := l.Meta(name, e.Name()); err == nil {
			in.Meta = m
			in.InstalledAt = m.InstalledAt
		} else if fi, err := e.Info(); err == nil {
			in.InstalledAt = fi.ModTime()
		}
		out = append(out, in)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].InstalledAt.Equal(out[j].InstalledAt) {
			return out[i].InstalledAt.After(out[j].InstalledAt)
		}
		return out[i].Version > out[j].Version
	})
	return out, nil
}

// Meta reads <version>/.kestrel-install.json.
func (l Layout) Meta(name, version string) (*InstallMeta, error) {
	b, err := os.ReadFile(filepath.Join(l.VersionDir(name, version), metaFile))
	if err != nil {
		return nil, err
	}
	var m InstallMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// RemoveTemp deletes leftover .tmp-* and .trash-* entries of an agent.
func (l Layout) RemoveTemp(name string) ([]string, error) {
	ents, err := os.ReadDir(l.AgentDir(name))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var removed []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tmpPrefix) || strings.HasPrefix(e.Name(), trashPrefix) {
			if err := os.RemoveAll(filepath.Join(l.AgentDir(name), e.Name())); err != nil {
				return removed, fmt.Errorf("cannot remove %s: %w", e.Name(), err)
			}
			removed = append(removed, e.Name())
		}
	}
	return removed, nil
}

// RemoveVersion deletes a version directory: renamed to .trash-* first, so
// a crash never leaves a half-deleted version under its own name.
func (l Layout) RemoveVersion(name, version string) error {
	dir := l.VersionDir(name, version)
	trash, err := os.MkdirTemp(l.AgentDir(name), trashPrefix+version+"-*")
	if err != nil {
		return fmt.Errorf("cannot remove %s: %w", dir, err)
	}
	dst := filepath.Join(trash, version)
	if err := os.Rename(dir, dst); err != nil {
		os.Remove(trash)
		return fmt.Errorf("cannot remove %s: %w", dir, err)
	}
	if err := syncDir(l.AgentDir(name)); err != nil {
		return err
	}
	return os.RemoveAll(trash)
}
