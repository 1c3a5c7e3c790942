//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/deploy/internal/spawn"
	"github.com/kestrel-mon/kestrel/lib/testutil/redistest"
	"github.com/redis/go-redis/v9"
)

// cluster is a pipeline of real processes, started the way
// kestrel-loadgen -spawn starts its own: each on a port that was free a
// moment ago, ready only when the server answering there is that process
// (spawn.Spawner).
type cluster struct {
	t         *testing.T
	dir       string
	spawner   *spawn.Spawner
	natsURL   string
	redisAddr string
	rdb       *redis.Client
	nats      *proc
	redis     *proc
	transfers []*proc
	listens   map[*proc]string // HTTP listen address of each process
	judges    []*proc
	agent     *proc
	agentAddr string
}

type clusterSpec struct {
	transfers int
	judges    int
	rules     string
	// transferYAML is appended to every transfer's config (e.g. an ingest
	// block); %d in it is replaced by the transfer's index.
	transferYAML string
}

func startCluster(t *testing.T, spec clusterSpec) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir(), listens: map[*proc]string{}}
	c.spawner = spawn.NewSpawner(c.dir, slog.New(slog.NewTextHandler(t.Output(), nil)))
	c.spawner.Wait = 60 * time.Second
	var port int
	c.nats, port = c.spawn(spawn.NATSSpec(filepath.Join(binDir, "kestrel-nats"), filepath.Join(c.dir, "nats")))
	c.natsURL = "nats://" + spawn.LocalAddr(port)
	c.redis, port = c.spawn(spawn.RedisSpec(redistest.Binary(t), filepath.Join(c.dir, "redis"), "--appendonly", "no"))
	c.redisAddr = spawn.LocalAddr(port)
	c.rdb = redis.NewClient(&redis.Options{Addr: c.redisAddr})
	t.Cleanup(func() { c.rdb.Close() })

	rules := writeFile(t, filepath.Join(c.dir, "rules.yaml"), spec.rules)
	for i := range spec.judges {
		c.startJudge(i, rules)
	}
	for i := range spec.transfers {
		// Ready (/health 200) once connected with at least one judge in
		// its ring.
		p, _ := c.service(fmt.Sprintf("kestrel-transfer-%d", i), "kestrel-transfer", fmt.Sprintf(`nats:
  urls: [%q]
membership:
  timeout: 2s
  rejoin_hold: 1s
judge:
  request_timeout: 2s
  retry_backoff: 100ms
  max_backoff: 1s
log:
  level: debug
`, c.natsURL)+strings.ReplaceAll(spec.transferYAML, "%d", fmt.Sprint(i)))
		c.transfers = append(c.transfers, p)
	}
	c.agent, c.agentAddr = c.service("kestrel-agent", "kestrel-agent", fmt.Sprintf(`hostname: e2e-agent
nats:
  urls: [%q]
log:
  level: debug
`, c.natsURL))
	return c
}

// spawn starts sp with the cluster's spawner and makes it a proc of the test.
func (c *cluster) spawn(sp spawn.Spec) (*proc, int) {
	c.t.Helper()
	ch, port, err := c.spawner.Start(context.Background(), sp)
	if err != nil {
		c.t.Fatal(err)
	}
	return watch(c.t, ch, nil), port
}

// service spawns binDir/binary as name with the config conf (and its
// http.listen) in <dir>/<name>.yaml, and returns it once its /health
// answers 200, with its listen address.
func (c *cluster) service(name, binary, conf string) (*proc, string) {
	c.t.Helper()
	p, port := c.spawn(spawn.ServiceSpec(name, filepath.Join(binDir, binary), filepath.Join(c.dir, name+".yaml"), conf))
	c.listens[p] = spawn.LocalAddr(port)
	return p, c.listens[p]
}

func (c *cluster) startJudge(i int, rules string) {
	p, _ := c.service(fmt.Sprintf("kestrel-judge-%d", i), "kestrel-judge", fmt.Sprintf(`node_id: e2e-judge-%d
nats:
  urls: [%q]
redis:
  addr: %q
  op_timeout: 1s
rules_file: %q
heartbeat_interval: 500ms
membership:
  timeout: 2s
  rejoin_hold: 1s
ownership:
  settle: 1500ms
log:
  level: debug
`, i, c.natsURL, c.redisAddr, rules))
	c.judges = append(c.judges, p)
}

// restartJudge starts judge i again (same node id, config and port) after
// it exited.
func (c *cluster) restartJudge(i int) {
	t := c.t
	old := c.judges[i]
	<-old.Done()
	listen := c.listens[old]
	name := fmt.Sprintf("kestrel-judge-%d", i)
	conf := filepath.Join(c.dir, name+".yaml")
	p := startProc(t, c.dir, fmt.Sprintf("%s-run%d", name, len(c.listens)), filepath.Join(binDir, "kestrel-judge"), false, "-c", conf)
	waitRunning(t, name+" /health after restart", 60*time.Second, func() bool { return spawn.HTTPOK("http://" + listen + "/health") }, p)
	c.judges[i] = p
	c.listens[p] = listen
}

// push posts Open-Falcon MetricValue JSON to the agent's /v1/push.
func (c *cluster) push(body string) {
	c.t.Helper()
	resp, err := http.Post("http://"+c.agentAddr+"/v1/push", "application/json", strings.NewReader(body))
	if err != nil {
		c.t.Fatalf("push: %v", err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("push: %s: %s", resp.Status, b.String())
	}
}

func mv(endpoint, metric, tags string, value float64, ts int64) string {
	return fmt.Sprintf(`{"endpoint":%q,"metric":%q,"value":%s,"step":60,"counterType":"GAUGE","tags":%q,"timestamp":%d}`,
		endpoint, metric, strconv.FormatFloat(value, 'g', -1, 64), tags, ts)
}

func listenOf(t *testing.T, c *cluster, p *proc) string {
	t.Helper()
	l, ok := c.listens[p]
	if !ok {
		t.Fatalf("no listen address for %s", p.Name)
	}
	return l
}

// waitJudgesInRings waits until every transfer has every judge of the
// cluster in its ring, so that the owner of a series does not change
// while a test pushes.
func (c *cluster) waitJudgesInRings(t *testing.T) {
	t.Helper()
	want := fmt.Sprintf("%d judges", len(c.judges))
	for _, tr := range c.transfers {
		url := "http://" + listenOf(t, c, tr) + "/health"
		waitRunning(t, tr.Name+" sees "+want, 30*time.Second, func() bool {
			return strings.Contains(get(url), want)
		}, tr)
	}
}
