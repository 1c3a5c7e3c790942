package loadgen

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/kestrel-mon/kestrel/deploy/internal/spawn"
)

// Pipeline is a kestrel-nats, redis-server, one transfer and one judge
// started by -spawn, on free ports (each checked to be answered by its
// child: see spawn.Spawner), with data in Dir.
type Pipeline struct {
	Dir             string
	NATSURL         string
	TransferMetrics string
	JudgeMetrics    string
	children        []*spawn.Child
	log             *slog.Logger
}

// SpawnRules is the rules file of a spawned judge: rules on the load
// generator's metric that are evaluated on every point and never fire.
const SpawnRules = `strategies:
  - id: 1
    allEndpoints: true
    metric: ` + Metric + `
    tags: {}
    func: "all(#3)"
    operator: "<"
    rightValue: -1
    maxStep: 3
    priority: 3
    note: loadgen never fires
expressions:
  - id: 1
    metric: ` + Metric + `
    tags: {}
    func: "max(#5)"
    operator: "<"
    rightValue: -1
    maxStep: 1
    priority: 3
    note: loadgen never fires
    actionId: 1
`

// Spawn starts the pipeline from the binaries in binDir with a
// spawn.Spawner: each child gets a port that was free a moment ago and is
// ready only when the server answering on it is that child; a child that
// exits because another process took its port is started again on another
// one.
func Spawn(ctx context.Context, binDir, dir string, log *slog.Logger) (_ *Pipeline, err error) {
	s := spawn.NewSpawner(dir, log)
	p := &Pipeline{Dir: dir, log: log}
	defer func() {
		p.children = s.Children()
		if err != nil {
			p.Stop()
		}
	}()
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found; install it: sudo apt-get install redis-server")
	}
	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, []byte(SpawnRules), 0o644); err != nil {
		return nil, err
	}
	_, natsPort, err := s.Start(ctx, spawn.NATSSpec(filepath.Join(binDir, "kestrel-nats"), filepath.Join(dir, "nats"), "-log.level", "warn"))
	if err != nil {
		return nil, err
	}
	p.NATSURL = "nats://" + spawn.LocalAddr(natsPort)
	_, redisPort, err := s.Start(ctx, spawn.RedisSpec(redisBin, filepath.Join(dir, "redis"), "--appendonly", "yes"))
	if err != nil {
		return nil, err
	}
	judge := fmt.Sprintf("node_id: loadgen-judge\nnats:\n  urls: [%q]\nredis:\n  addr: %q\nrules_file: %q\nlog:\n  level: warn\n",
		p.NATSURL, spawn.LocalAddr(redisPort), rules)
	_, judgePort, err := s.Start(ctx, spawn.ServiceSpec("kestrel-judge", filepath.Join(binDir, "kestrel-judge"), filepath.Join(dir, "judge.yaml"), judge))
	if err != nil {
		return nil, err
	}
	p.JudgeMetrics = "http://" + spawn.LocalAddr(judgePort) + "/metrics"
	transfer := fmt.Sprintf("nats:\n  urls: [%q]\nlog:\n  level: warn\n", p.NATSURL)
	_, transferPort, err := s.Start(ctx, spawn.ServiceSpec("kestrel-transfer", filepath.Join(binDir, "kestrel-transfer"), filepath.Join(dir, "transfer.yaml"), transfer))
	if err != nil {
		return nil, err
	}
	p.TransferMetrics = "http://" + spawn.LocalAddr(transferPort) + "/metrics"
	return p, nil
}

// Stop stops the children, newest first.
func (p *Pipeline) Stop() {
	for i := len(p.children) - 1; i >= 0; i-- {
		c := p.children[i]
		status, killed := c.Stop(20 * time.Second)
		p.log.Info("stopped", "name", c.Name, "status", status, "killed", killed)
	}
	p.children = nil
}

// Died returns the first child that exited, or nil.
func (p *Pipeline) Died() *spawn.Child {
	for _, c := range p.children {
		if c.Exited() {
			return c
		}
	}
	return nil
}
