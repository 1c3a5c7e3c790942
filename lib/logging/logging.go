// Package logging builds the slog logger every Kestrel binary logs with,
// from the `log:` block of its config.
//
//	log:
//	  level: info   # debug | info | warn | error
//	  format: text  # text | json
package logging

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
)

// Config is the `log:` block of a binary's config. An empty field means
// its default (info, text).
type Config struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Default returns the documented defaults: level info, format text.
func Default() Config { return Config{Level: "info", Format: "text"} }

// WithLevel returns c with its level replaced by level (a -log.level
// flag), or c itself when level is empty.
func (c Config) WithLevel(level string) Config {
	if level != "" {
		c.Level = level
	}
	return c
}

// Validate reports every bad field at once, each named as it is written
// in the config file (log.level, log.format).
func (c Config) Validate() error {
	var errs []error
	if _, err := c.level(); err != nil {
		errs = append(errs, err)
	}
	switch c.Format {
	case "", "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format: must be text or json, got %q", c.Format))
	}
	return errors.Join(errs...)
}

func (c Config) level() (slog.Level, error) {
	switch c.Level {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log.level: must be debug, info, warn or error, got %q", c.Level)
}

// New returns a logger writing to w in c's format, at c's level and above.
// It fails (with Validate's error) on a level or format it does not know,
// rather than logging at a level nobody asked for.
func New(c Config, w io.Writer) (*slog.Logger, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	lv, _ := c.level()
	opts := &slog.HandlerOptions{Level: lv}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
