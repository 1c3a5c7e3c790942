package updater

import (
	"log/slog"

	"github.com/kestrel-mon/kestrel/ops-updater/internal/artifact"
	"github.com/kestrel-mon/kestrel/ops-updater/internal/config"
	"github.com/kestrel-mon/kestrel/ops-updater/internal/install"
	"github.com/kestrel-mon/kestrel/ops-updater/internal/unpack"
)

// FromConfig wires an Updater and its install manager from a loaded
// config (its public keys already read). The caller locks the install dir
// (install.Lock).
func FromConfig(cfg config.Config, log *slog.Logger, version string) *Updater {
	mgr := &install.Manager{
		Layout:           install.Layout{Root: cfg.InstallDir},
		Keep:             cfg.Keep,
		Control:          install.Control{Timeout: cfg.ControlTimeout},
		Fetcher:          artifact.NewFetcher(cfg.Download.Timeout, cfg.Download.MaxSize, cfg.FleetToken, cfg.MetaURLs),
		Keys:             cfg.PublicKeys,
		RequireSignature: cfg.RequireSignature,
		Limits:           unpack.Limits{MaxBytes: cfg.Download.MaxUnpackedSize, MaxFiles: cfg.Download.MaxFiles},
		HealthTimeout:    cfg.HealthTimeout,
		Log:              log,
	}
	return New(Options{
		Hostname:   cfg.Hostname,
		MetaURLs:   cfg.MetaURLs,
		FleetToken: cfg.FleetToken,
		Interval:   cfg.Interval,
		Timeout:    cfg.HeartbeatTimeout,
		Manager:    mgr,
		Log:        log,
		Version:    version,
	})
}
