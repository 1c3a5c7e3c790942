// Command kestrel-loadgen simulates N agents × M series publishing binary
// batches to the ingest stream at a target rate, against a running
// pipeline (or one it spawns with -spawn), and reports throughput,
// publish-to-judge latency, points lost and CPU per million points.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kestrel-mon/kestrel/deploy/internal/loadgen"
	"github.com/kestrel-mon/kestrel/deploy/internal/spawn"
)

var version = "dev"

func main() { os.Exit(run()) }

func run() int {
	fs := flag.NewFlagSet("kestrel-loadgen", flag.ContinueOnError)
	var c loadgen.Config
	fs.StringVar(&c.NATSURL, "nats", "nats://127.0.0.1:4222", "NATS URL of the pipeline")
	fs.StringVar(&c.Prefix, "prefix", "kestrel", "subject prefix")
	fs.IntVar(&c.Agents, "agents", 10, "simulated agents")
	fs.IntVar(&c.Series, "series", 1000, "series per agent")
	fs.Float64Var(&c.Rate, "rate", 20000, "target points per second, all agents together")
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "how long to publish")
	fs.IntVar(&c.Batch, "batch", 100, "points per published batch")
	fs.DurationVar(&c.Drain, "drain", 120*time.Second, "longest wait for outstanding judge acknowledgements after publishing")
	fs.DurationVar(&c.DrainSettle, "drain-settle", 2*time.Second, "the drain ends this long after the transfer consumer has nothing pending or un-acked (and no new acknowledgement was seen)")
	fs.DurationVar(&c.DrainIdle, "drain-idle", 15*time.Second, "only when the consumer state cannot be read: stop draining after this long without a new acknowledgement")
	fs.DurationVar(&c.Warmup, "warmup", 30*time.Second, "longest wait for the probe point to be acknowledged by a judge")
	tm := fs.String("transfer-metrics", "http://127.0.0.1:6060/metrics", "comma-separated /metrics URLs of the transfers (empty: no CPU figure)")
	jm := fs.String("judge-metrics", "http://127.0.0.1:6081/metrics", "comma-separated /metrics URLs of the judges (empty: no CPU figure)")
	doSpawn := fs.Bool("spawn", false, "start kestrel-nats, redis-server, one transfer and one judge from -bin on free ports, run against them, stop them")
	bin := fs.String("bin", "bin", "with -spawn: directory holding kestrel-nats, kestrel-transfer, kestrel-judge")
	keep := fs.Bool("keep", false, "with -spawn: keep the temporary directory (configs, logs, data)")
	logLevel := fs.String("log.level", "info", "log level: debug|info|warn|error")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Printf("kestrel-loadgen %s\n", version)
		return 0
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "kestrel-loadgen: -log.level %q: %v\n", *logLevel, err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	c.TransferMetrics, c.JudgeMetrics = splitList(*tm), splitList(*jm)
	if err := c.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "kestrel-loadgen: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	if *doSpawn {
		dir, err := os.MkdirTemp("", "kestrel-loadgen-")
		if err != nil {
			log.Error("temp dir", "err", err)
			return 1
		}
		if !*keep {
			defer os.RemoveAll(dir)
		}
		binDir, _ := filepath.Abs(*bin)
		p, err := loadgen.Spawn(ctx, binDir, dir, log)
		if err != nil {
			log.Error("cannot start the pipeline", "err", err)
			return 1
		}
		defer p.Stop()
		c.NATSURL, c.TransferMetrics, c.JudgeMetrics = p.NATSURL, []string{p.TransferMetrics}, []string{p.JudgeMetrics}
		defer func() {
			if d := p.Died(); d != nil {
				log.Error("a spawned process died during the run", "name", d.Name, "status", d.ExitStatus(), "log", spawn.TailFile(d.LogPath, 20))
			}
		}()
	}
	res, err := loadgen.Run(ctx, c, log)
	if err != nil {
		log.Error("run failed", "err", err)
		return 1
	}
	res.Report(os.Stdout)
	return 0
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
