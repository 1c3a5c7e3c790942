// Command kestrel-agent collects host metrics and takes Open-Falcon pushes,
// and publishes them to the Kestrel ingest stream on NATS JetStream.
//
//	kestrel-agent -c agent.yaml    # without -c the built-in defaults are used
//	kestrel-agent -version
package main

import (
	"os"

	"github.com/kestrel-mon/kestrel/agent/internal/app"
)

var version = "dev"

func main() { os.Exit(run()) }

func run() int { return app.Main("kestrel-agent", version, os.Args[1:], os.Stdout, os.Stderr) }
