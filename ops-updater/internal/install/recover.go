package install

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/kestrel-mon/kestrel/proto"
)

// Recover repairs one agent after a crash. It runs at startup, before any
// heartbeat, and follows one rule — .version is the truth:
//
//   - .tmp-* and .trash-* entries (downloads, unpacks and deletions in
//     progress) are removed; a version directory only ever appears under
//     its own name by an atomic rename of a complete, verified tree.
//   - With a marker {version N, previous P}:
//     if .version says N, the switch had committed: N is ensured running.
//     Otherwise the switch had not committed: N is stopped, P (the version
//     in .version) is ensured running, and N's directory is kept, complete,
//     for the next attempt.
//     Then the marker is removed.
//
// So the host ends on the old or the new version, whole, never a mix.
func (m *Manager) Recover(ctx context.Context, name string) error {
	log := m.Log.With("agent", name)
	removed, err := m.Layout.RemoveTemp(name)
	if len(removed) > 0 {
		log.Info("removed leftovers of an interrupted install", "entries", removed)
	}
	if err != nil {
		return err
	}
	mk, err := m.Layout.Marker(name)
	if err != nil {
		// A marker we cannot read cannot name a version to stop: keep
		// .version's version running and drop the marker.
		log.Error("unreadable marker, removing it", "err", err)
		mk = nil
		if cerr := m.Layout.ClearMarker(name); cerr != nil {
			return cerr
		}
	}
	active, err := m.Layout.Active(name)
	if err != nil {
		return err
	}
	if mk != nil {
		if active == mk.Version {
			log.Warn("recovering: the switch had committed, keeping the new version", "version", mk.Version, "previous", mk.Previous)
			st := m.Layout.State(name)
			st.Previous, st.FailedVersion, st.Error = mk.Previous, "", ""
			if err := m.Layout.SetState(name, st); err != nil {
				return err
			}
		} else {
			log.Warn("recovering: the switch had not committed, going back", "interrupted", mk.Version, "active", orNone(active))
			if dir := m.Layout.VersionDir(name, mk.Version); exists(dir) {
				if _, err := m.Control.Run(ctx, dir, "stop"); err != nil {
					log.Warn("stop of interrupted version failed", "version", mk.Version, "err", err)
				}
			}
			m.recordError(name, "", fmt.Sprintf("install of %s was interrupted (updater crash); %s kept", mk.Version, orNone(active)))
		}
	}
	if active != "" && mk != nil {
		dir := m.Layout.VersionDir(name, active)
		if !exists(dir) {
			log.Error("active version directory is missing", "version", active)
		} else if m.Control.Status(ctx, dir) != proto.AgentStarted {
			log.Info("recovering: starting active version", "version", active)
			if _, err := m.Control.Run(ctx, dir, "start"); err != nil {
				log.Error("start of active version failed", "version", active, "err", err)
			}
		}
	}
	if mk != nil {
		if err := m.Layout.ClearMarker(name); err != nil {
			return err
		}
	}
	return nil
}

// RecoverAll runs Recover for every agent directory.
func (m *Manager) RecoverAll(ctx context.Context) error {
	names, err := m.Layout.Agents()
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := m.Recover(ctx, n); err != nil {
			return fmt.Errorf("cannot recover %s: %w", n, err)
		}
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Prune keeps max(Keep, protected) versions: the active version, the
// rollback target and a pending marker's versions always, then the newest
// installs up to Keep.
func (m *Manager) Prune(name string) ([]string, error) {
	protect := map[string]bool{}
	if a, err := m.Layout.Active(name); err == nil && a != "" {
		protect[a] = true
	} else if err != nil {
		return nil, err
	}
	if st := m.Layout.State(name); st.Previous != "" {
		protect[st.Previous] = true
	}
	if mk, err := m.Layout.Marker(name); err != nil {
		return nil, err
	} else if mk != nil {
		protect[mk.Version] = true
		if mk.Previous != "" {
			protect[mk.Previous] = true
		}
	}
	vs, err := m.Layout.Versions(name)
	if err != nil {
		return nil, err
	}
	kept := 0
	for _, v := range vs {
		if protect[v.Version] {
			kept++
		}
	}
	var removed []string
	for _, v := range vs { // newest first
		if protect[v.Version] {
			continue
		}
		if kept < m.Keep {
			kept++
			continue
		}
		if err := m.Layout.RemoveVersion(name, v.Version); err != nil {
			return removed, err
		}
		removed = append(removed, v.Version)
	}
	return removed, nil
}

func (m *Manager) prune(name string, log *slog.Logger) {
	removed, err := m.Prune(name)
	if len(removed) > 0 {
		log.Info("removed old versions", "versions", removed)
	}
	if err != nil {
		log.Error("prune failed", "err", err)
	}
}
