package run

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Flags are the command-line flags every binary has.
type Flags struct {
	ConfigPath string // -c
	// LogLevel (-log.level) overrides the config's log.level when not
	// empty: logging.New(cfg.Log.WithLevel(f.LogLevel), stderr).
	LogLevel string
}

// ParseFlags adds -c (defaulting to defaultConfig), -log.level, -version
// and -healthcheck <url> to fs — a binary adds flags of its own before — and parses
// args. When done is true main returns code at once: ExitUsage after a bad
// flag or an unexpected argument (the reason printed on fs's output),
// ExitOK after printing "<fs.Name()> <version>" on stdout for -version.
func ParseFlags(fs *flag.FlagSet, args []string, defaultConfig, version string, stdout io.Writer) (f Flags, code int, done bool) {
	fs.StringVar(&f.ConfigPath, "c", defaultConfig, "config file (YAML)")
	fs.StringVar(&f.LogLevel, "log.level", "", "override log.level (debug|info|warn|error)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	health := fs.String("healthcheck", "", "GET this URL and exit 0 on 200, 1 otherwise (a container's health check: images have no curl)")
	if err := fs.Parse(args); err != nil {
		return f, ExitUsage, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected arguments %q\n", fs.Name(), fs.Args())
		return f, ExitUsage, true
	}
	if *showVersion {
		fmt.Fprintf(stdout, "%s %s\n", fs.Name(), version)
		return f, ExitOK, true
	}
	if *health != "" {
		return f, HealthCheck(*health, fs.Output()), true
	}
	return f, ExitOK, false
}

// HealthCheck GETs url (within 5 s) and returns ExitOK on a 200, else
// ExitFailure with the reason on w.
func HealthCheck(url string, w io.Writer) int {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintf(w, "unhealthy: %v\n", err)
		return ExitFailure
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		fmt.Fprintf(w, "unhealthy: %s: %s\n", resp.Status, strings.TrimSpace(string(body)))
		return ExitFailure
	}
	return ExitOK
}
