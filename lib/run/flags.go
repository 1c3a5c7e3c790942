package run

import (
	"flag"
	"fmt"
	"io"
)

// Flags are the command-line flags every binary has.
type Flags struct {
	ConfigPath string // -c
	// LogLevel (-log.level) overrides the config's log.level when not
	// empty: logging.New(cfg.Log.WithLevel(f.LogLevel), stderr).
	LogLevel string
}

// ParseFlags adds -c (defaulting to defaultConfig), -log.level and
// -version to fs — a binary adds flags of its own before — and parses
// args. When done is true main returns code at once: ExitUsage after a bad
// flag or an unexpected argument (the reason printed on fs's output),
// ExitOK after printing "<fs.Name()> <version>" on stdout for -version.
func ParseFlags(fs *flag.FlagSet, args []string, defaultConfig, version string, stdout io.Writer) (f Flags, code int, done bool) {
	fs.StringVar(&f.ConfigPath, "c", defaultConfig, "config file (YAML)")
	fs.StringVar(&f.LogLevel, "log.level", "", "override log.level (debug|info|warn|error)")
	showVersion := fs.Bool("version", false, "print the version and exit")
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
	return f, ExitOK, false
}
