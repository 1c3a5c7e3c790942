// Package install applies ops-meta's desired state to the install dir:
// download and verify, unpack, switch with a pending marker, health check,
// roll back, recover after a crash, prune old versions.
package install

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kestrel-mon/kestrel/ops-updater/internal/artifact"
	"github.com/kestrel-mon/kestrel/ops-updater/internal/unpack"
	"github.com/kestrel-mon/kestrel/proto"
)

// Manager owns one install dir. Calls for one agent name must not run
// concurrently (the updater runs at most one worker per agent).
type Manager struct {
	Layout           Layout
	Keep             int
	Control          Control
	Fetcher          *artifact.Fetcher
	Keys             []ed25519.PublicKey
	RequireSignature bool
	Limits           unpack.Limits
	HealthTimeout    time.Duration // when ops-meta gives none
	HealthPoll       time.Duration // default 250ms
	Log              *slog.Logger
	// OnRefusal, if set, is called with the reason of every refused artifact.
	OnRefusal func(artifact.Reason)
}

// Result of Apply, for logs and metrics.
type Result string

// Results.
const (
	ResultNothing     Result = "nothing"
	ResultStarted     Result = "started"     // the active version was started again
	ResultStopped     Result = "stopped"     // cmd stop
	ResultInstalled   Result = "installed"   // switched to the desired version
	ResultRolledBack  Result = "rolled_back" // desired version unhealthy, previous restored
	ResultRefused     Result = "refused"     // artifact refused, nothing touched
	ResultSkipped     Result = "skipped"     // desired version failed before, not retried
	ResultInterrupted Result = "interrupted" // shutdown during install, previous restored
	ResultError       Result = "error"
)

func (m *Manager) poll() time.Duration {
	if m.HealthPoll > 0 {
		return m.HealthPoll
	}
	return 250 * time.Millisecond
}

// CheckDesired validates one desired agent from ops-meta.
func CheckDesired(d proto.DesiredAgent) error {
	if !ValidName(d.Name) {
		return fmt.Errorf("invalid agent name %q", d.Name)
	}
	switch d.Cmd {
	case "start":
		if !ValidName(d.Version) {
			return fmt.Errorf("agent %s: invalid version %q", d.Name, d.Version)
		}
		if u, err := url.Parse(d.Tarball); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("agent %s: tarball %q is not an http(s) URL", d.Name, d.Tarball)
		}
		if d.Health != nil && d.Health.HTTP != "" {
			if u, err := url.Parse(d.Health.HTTP); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("agent %s: health.http %q is not an http(s) URL", d.Name, d.Health.HTTP)
			}
		}
	case "stop":
	default:
		return fmt.Errorf("agent %s: unknown cmd %q (want start or stop)", d.Name, d.Cmd)
	}
	return nil
}

// Apply brings one agent to the desired state.
func (m *Manager) Apply(ctx context.Context, d proto.DesiredAgent) (Result, error) {
	if err := CheckDesired(d); err != nil {
		return ResultError, err
	}
	log := m.Log.With("agent", d.Name)
	if err := os.MkdirAll(m.Layout.AgentDir(d.Name), 0o755); err != nil {
		return ResultError, fmt.Errorf("cannot create %s: %w", m.Layout.AgentDir(d.Name), err)
	}
	active, err := m.Layout.Active(d.Name)
	if err != nil {
		return ResultError, err
	}
	st := m.Layout.State(d.Name)

	if d.Cmd == "stop" {
		if active == "" {
			return ResultNothing, nil
		}
		dir := m.Layout.VersionDir(d.Name, active)
		if m.Control.Status(ctx, dir) != proto.AgentStarted {
			return ResultNothing, nil
		}
		log.Info("stopping agent", "version", active, "reason", "cmd stop")
		if _, err := m.Control.Run(ctx, dir, "stop"); err != nil {
			return ResultError, fmt.Errorf("cannot stop %s %s: %w", d.Name, active, err)
		}
		return ResultStopped, nil
	}

	// A new desired version forgets the failure of the old one.
	if st.FailedVersion != "" && st.FailedVersion != d.Version {
		log.Info("desired version changed, forgetting failed version", "failed", st.FailedVersion, "desired", d.Version)
		st.FailedVersion, st.Error, st.ErrorTime = "", "", time.Time{}
		if err := m.Layout.SetState(d.Name, st); err != nil {
			return ResultError, err
		}
	}
	if d.Version == active {
		if st.Error != "" && st.FailedVersion == "" {
			st.Error, st.ErrorTime = "", time.Time{}
			if err := m.Layout.SetState(d.Name, st); err != nil {
				return ResultError, err
			}
		}
		dir := m.Layout.VersionDir(d.Name, active)
		if m.Control.Status(ctx, dir) == proto.AgentStarted {
			return ResultNothing, nil
		}
		log.Info("starting agent", "version", active, "reason", "desired started, status is not started")
		if _, err := m.Control.Run(ctx, dir, "start"); err != nil {
			return ResultError, fmt.Errorf("cannot start %s %s: %w", d.Name, active, err)
		}
		return ResultStarted, nil
	}
	if st.FailedVersion == d.Version {
		log.Debug("desired version failed before, not retrying until the desired version changes", "version", d.Version)
		// The version it was rolled back to keeps running meanwhile.
		if active != "" {
			dir := m.Layout.VersionDir(d.Name, active)
			if m.Control.Status(ctx, dir) != proto.AgentStarted {
				log.Info("starting agent", "version", active, "reason", "rolled back from a failed version, status is not started", "failed", d.Version)
				if _, err := m.Control.Run(ctx, dir, "start"); err != nil {
					return ResultError, fmt.Errorf("cannot start %s %s: %w", d.Name, active, err)
				}
				return ResultStarted, nil
			}
		}
		return ResultSkipped, nil
	}

	tmp, meta, err := m.prepare(ctx, d, log)
	if err != nil {
		if tmp != "" {
			os.RemoveAll(tmp)
		}
		if ctx.Err() != nil {
			return ResultInterrupted, err
		}
		res := ResultError
		if r := artifact.ReasonOf(err); r != "" {
			res = ResultRefused
			if m.OnRefusal != nil {
				m.OnRefusal(r)
			}
			log.Warn("artifact refused", "version", d.Version, "reason", string(r), "err", err)
		} else {
			log.Error("install failed", "version", d.Version, "err", err)
		}
		m.recordError(d.Name, "", fmt.Sprintf("install %s: %v", d.Version, err))
		return res, err
	}
	if tmp != "" {
		if err := m.placeVersion(d.Name, d.Version, tmp); err != nil {
			os.RemoveAll(tmp)
			m.recordError(d.Name, "", fmt.Sprintf("install %s: %v", d.Version, err))
			return ResultError, err
		}
		log.Info("version unpacked", "version", d.Version, "sha256", meta.Sha256, "bytes", meta.Size)
	}
	return m.switchTo(ctx, d, active, log)
}

func (m *Manager) recordError(name, failed, msg string) {
	st := m.Layout.State(name)
	st.Error = msg
	st.ErrorTime = time.Now().UTC()
	if failed != "" {
		st.FailedVersion = failed
	}
	if err := m.Layout.SetState(name, st); err != nil {
		m.Log.Error("cannot save state", "agent", name, "err", err)
	}
}

func joinURL(base, file string) string {
	return strings.TrimRight(base, "/") + "/" + file
}

// prepare returns an unpacked, verified temporary directory (or "" when
// the version directory already holds this exact artifact).
func (m *Manager) prepare(ctx context.Context, d proto.DesiredAgent, log *slog.Logger) (string, *InstallMeta, error) {
	file := d.Name + "-" + d.Version + ".tar.gz"
	tarURL := joinURL(d.Tarball, file)
	// Reuse an installed directory holding the same artifact (a rollback
	// to a kept version downloads nothing); its signature is checked again.
	if im, err := m.Layout.Meta(d.Name, d.Version); err == nil && im.Sha256 != "" {
		want := strings.ToLower(strings.TrimSpace(d.Sha256))
		if want == "" || want == im.Sha256 {
			if err := m.checkSignature(ctx, d, tarURL, im.Sha256, log); err != nil {
				return "", nil, err
			}
			log.Info("reusing installed version", "version", d.Version)
			return "", im, nil
		}
	}
	agentDir := m.Layout.AgentDir(d.Name)
	f, err := os.CreateTemp(agentDir, tmpPrefix+"download-*")
	if err != nil {
		return "", nil, fmt.Errorf("cannot create download file: %w", err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	log.Info("downloading", "version", d.Version, "url", tarURL)
	dig, err := m.Fetcher.Download(ctx, tarURL, f)
	if err != nil {
		return "", nil, err
	}
	if d.Sha256 != "" {
		want, err := artifact.ParseDigestHex(d.Sha256, 32)
		if err != nil {
			return "", nil, artifact.Refuse(artifact.ReasonChecksum, "ops-meta sent a bad sha256 for %s: %v", file, err)
		}
		if want != dig.Sha256 {
			return "", nil, artifact.Refuse(artifact.ReasonChecksum, "sha256 mismatch for %s: downloaded %s, ops-meta says %s", file, dig.Sha256, want)
		}
	} else {
		base := d.Md5
		if base == "" {
			base = d.Tarball
		}
		md5URL := joinURL(base, file+".md5")
		b, err := m.Fetcher.FetchSmall(ctx, md5URL)
		if errors.Is(err, artifact.ErrNotFound) {
			return "", nil, artifact.Refuse(artifact.ReasonChecksum, "no sha256 from ops-meta and no md5 file at %s", md5URL)
		}
		if err != nil {
			return "", nil, err
		}
		want, err := artifact.ParseSidecar(b, 16, file)
		if err != nil {
			return "", nil, artifact.Refuse(artifact.ReasonChecksum, "bad md5 file %s: %v", md5URL, err)
		}
		if want != dig.Md5 {
			return "", nil, artifact.Refuse(artifact.ReasonChecksum, "md5 mismatch for %s: downloaded %s, %s says %s", file, dig.Md5, md5URL, want)
		}
	}
	if err := m.checkSignature(ctx, d, tarURL, dig.Sha256, log); err != nil {
		return "", nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", nil, err
	}
	tmp, err := os.MkdirTemp(agentDir, tmpPrefix+"unpack-"+d.Version+"-*")
	if err != nil {
		return "", nil, fmt.Errorf("cannot create unpack dir: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return tmp, nil, err
	}
	if err := unpack.Unpack(f, tmp, m.Limits); err != nil {
		return tmp, nil, artifact.Refuse(artifact.ReasonUnpack, "refusing tarball %s: %v", file, err)
	}
	fi, err := os.Lstat(filepath.Join(tmp, "control"))
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o100 == 0 {
		return tmp, nil, artifact.Refuse(artifact.ReasonUnpack, "refusing tarball %s: no executable regular file control at its root", file)
	}
	meta := &InstallMeta{InstalledAt: time.Now().UTC(), Sha256: dig.Sha256, Md5: dig.Md5, Size: dig.Size, URL: tarURL}
	b, _ := json.MarshalIndent(meta, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, metaFile), append(b, '\n'), 0o644); err != nil {
		return tmp, nil, fmt.Errorf("cannot write install metadata: %w", err)
	}
	return tmp, meta, nil
}

func (m *Manager) checkSignature(ctx context.Context, d proto.DesiredAgent, tarURL, sha string, log *slog.Logger) error {
	if len(m.Keys) == 0 {
		return nil
	}
	sig := d.Signature
	if sig == "" {
		// An Open-Falcon ops-meta sends no signature: try the .sig sidecar.
		b, err := m.Fetcher.FetchSmall(ctx, tarURL+".sig")
		switch {
		case err == nil:
			sig = strings.TrimSpace(string(b))
		case errors.Is(err, artifact.ErrNotFound):
		default:
			return err
		}
	}
	if sig == "" && !m.RequireSignature {
		log.Warn("artifact is not signed; accepted because require_signature is false", "version", d.Version)
		return nil
	}
	return artifact.VerifySignature(m.Keys, d.Name, d.Version, sha, sig)
}

// placeVersion renames a verified temporary directory to <name>/<version>.
// An existing directory of that version (never the active one) is replaced.
func (m *Manager) placeVersion(name, version, tmp string) error {
	dst := m.Layout.VersionDir(name, version)
	if _, err := os.Lstat(dst); err == nil {
		if err := m.Layout.RemoveVersion(name, version); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("cannot move %s into place: %w", version, err)
	}
	return syncDir(m.Layout.AgentDir(name))
}

// switchTo stops the active version, starts the new one, waits for it to
// be healthy and commits, or rolls back.
func (m *Manager) switchTo(ctx context.Context, d proto.DesiredAgent, prev string, log *slog.Logger) (Result, error) {
	name, ver := d.Name, d.Version
	if err := m.Layout.SetMarker(name, Marker{Version: ver, Previous: prev, StartedAt: time.Now().UTC()}); err != nil {
		return ResultError, err
	}
	// From here on, control scripts run to completion even on shutdown
	// (each is bounded by control_timeout); only the health wait is cut short.
	bg := context.WithoutCancel(ctx)
	newDir := m.Layout.VersionDir(name, ver)
	if prev != "" {
		if _, err := os.Stat(m.Layout.VersionDir(name, prev)); err == nil {
			log.Info("stopping previous version", "version", prev)
			if _, err := m.Control.Run(bg, m.Layout.VersionDir(name, prev), "stop"); err != nil {
				log.Warn("stop of previous version failed", "version", prev, "err", err)
			}
		}
	}
	log.Info("starting new version", "version", ver, "previous", prev)
	_, err := m.Control.Run(bg, newDir, "start")
	if err == nil {
		err = m.waitHealthy(ctx, d, newDir)
	}
	if err == nil {
		if err := m.Layout.SetActive(name, ver); err != nil {
			return ResultError, err
		}
		st := m.Layout.State(name)
		st.Previous, st.FailedVersion, st.Error, st.ErrorTime = prev, "", "", time.Time{}
		if err := m.Layout.SetState(name, st); err != nil {
			return ResultError, err
		}
		if err := m.Layout.ClearMarker(name); err != nil {
			return ResultError, err
		}
		log.Info("version installed", "version", ver, "previous", prev)
		m.prune(name, log)
		return ResultInstalled, nil
	}
	interrupted := ctx.Err() != nil
	log.Error("new version is not healthy, rolling back", "version", ver, "previous", prev, "err", err)
	if _, serr := m.Control.Run(bg, newDir, "stop"); serr != nil {
		log.Warn("stop of failed version failed", "version", ver, "err", serr)
	}
	if prev != "" {
		if _, serr := m.Control.Run(bg, m.Layout.VersionDir(name, prev), "start"); serr != nil {
			log.Error("restart of previous version failed", "version", prev, "err", serr)
		} else {
			log.Info("previous version started again", "version", prev)
		}
	}
	res := ResultRolledBack
	if interrupted {
		res = ResultInterrupted
		m.recordError(name, "", fmt.Sprintf("install of %s interrupted by shutdown, %s restored", ver, orNone(prev)))
	} else {
		m.recordError(name, ver, fmt.Sprintf("version %s failed: %v; rolled back to %s", ver, err, orNone(prev)))
	}
	if cerr := m.Layout.ClearMarker(name); cerr != nil {
		log.Error("cannot clear marker", "err", cerr)
	}
	m.prune(name, log)
	return res, err
}

func orNone(v string) string {
	if v == "" {
		return "none"
	}
	return v
}

// waitHealthy polls ./control status (must print started) and the health
// URL (must answer 200) until both pass twice in a row, or the timeout.
func (m *Manager) waitHealthy(ctx context.Context, d proto.DesiredAgent, dir string) error {
	timeout := m.HealthTimeout
	var hurl string
	if d.Health != nil {
		if d.Health.Timeout > 0 {
			timeout = time.Duration(d.Health.Timeout) * time.Second
		}
		hurl = d.Health.HTTP
	}
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	okCount := 0
	lastErr := errors.New("no check ran")
	for {
		err := m.healthOnce(ctx, client, dir, hurl)
		if err == nil {
			okCount++
			if okCount >= 2 {
				return nil
			}
		} else {
			okCount = 0
			lastErr = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not healthy within %s: %v", timeout, lastErr)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("health check interrupted: %w", ctx.Err())
		case <-time.After(m.poll()):
		}
	}
}

func (m *Manager) healthOnce(ctx context.Context, client *http.Client, dir, hurl string) error {
	if s := m.Control.Status(ctx, dir); s != proto.AgentStarted {
		return fmt.Errorf("control status says %q", s)
	}
	if hurl == "" {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, hurl, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("health %s: %v", hurl, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health %s answered %s", hurl, resp.Status)
	}
	return nil
}
