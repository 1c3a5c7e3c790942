// Package config loads and validates transfer.yaml.
package config

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/kestrel-mon/kestrel/lib/confload"
	"github.com/kestrel-mon/kestrel/lib/logging"
	"github.com/kestrel-mon/kestrel/lib/natsconn"
	"github.com/kestrel-mon/kestrel/lib/ringparams"
	"github.com/kestrel-mon/kestrel/proto"
)

// HTTP is the shared http block.
type HTTP struct {
	Listen string `yaml:"listen"`
}

// Stream configures the ingest stream the transfer creates or updates.
type Stream struct {
	Replicas        int           `yaml:"replicas"`
	MaxBytes        int64         `yaml:"max_bytes"`
	MaxAge          time.Duration `yaml:"max_age"`
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
}

// Consumer configures the shared durable pull consumer and the fetch loop.
type Consumer struct {
	AckWait         time.Duration `yaml:"ack_wait"`
	MaxAckPending   int           `yaml:"max_ack_pending"`
	FetchBatch      int           `yaml:"fetch_batch"`
	FetchWait       time.Duration `yaml:"fetch_wait"`
	InProgressEvery time.Duration `yaml:"in_progress_every"`
	NakDelay        time.Duration `yaml:"nak_delay"`
}

// Ring configures the consistent hash ring (buraksezer/consistent). The
// parameters must equal those in the shared KV bucket (<PREFIX>_RING).
type Ring struct {
	PartitionCount    int     `yaml:"partition_count"`
	ReplicationFactor int     `yaml:"replication_factor"`
	Load              float64 `yaml:"load"`
	Hasher            string  `yaml:"hasher"`
	BucketReplicas    int     `yaml:"bucket_replicas"` // replicas of the KV bucket when this transfer creates it
}

// Membership configures how judges join and leave the ring.
type Membership struct {
	Timeout    time.Duration `yaml:"timeout"`
	RejoinHold time.Duration `yaml:"rejoin_hold"`
}

// Judge configures requests to judges.
type Judge struct {
	RequestTimeout time.Duration `yaml:"request_timeout"`
	BatchPoints    int           `yaml:"batch_points"`
	Linger         time.Duration `yaml:"linger"`
	SuspectAfter   int           `yaml:"suspect_after"`
	// UnresponsiveAfter: a heartbeating judge whose requests time out is
	// slowed down, and taken out of the ring only when no request to it
	// succeeded for this long (and suspect_after timeouts in a row).
	UnresponsiveAfter time.Duration `yaml:"unresponsive_after"`
	RetryBackoff      time.Duration `yaml:"retry_backoff"`
	MaxBackoff        time.Duration `yaml:"max_backoff"`
	MaxInflight       int           `yaml:"max_inflight"`
	MovedRetry        time.Duration `yaml:"moved_retry"`
}

// DeadLetter configures the dead-letter stream: points a judge failed
// After times with an error that will recur go there (see
// internal/deadletter).
type DeadLetter struct {
	After    int           `yaml:"after"` // 0: never dead-letter, retry for ever
	Replicas int           `yaml:"replicas"`
	MaxBytes int64         `yaml:"max_bytes"`
	MaxAge   time.Duration `yaml:"max_age"`
}

// Listener is one client listener: off unless enabled.
type Listener struct {
	Enabled bool   `yaml:"enabled"`
	Listen  string `yaml:"listen"`
}

// OpenTSDB is the OpenTSDB listener (telnet put and HTTP /api/put on one
// port).
type OpenTSDB struct {
	Enabled bool   `yaml:"enabled"`
	Listen  string `yaml:"listen"`
	// EndpointTags: the first of these tags a point has is its endpoint
	// (and is not kept as a tag); a point with none is rejected.
	EndpointTags []string `yaml:"endpoint_tags"`
}

// Ingest configures the client listeners (Open-Falcon JSON-RPC, HTTP
// /api/push and telnet; OpenTSDB) and the batches they publish to the
// ingest stream.
type Ingest struct {
	JSONRPC  Listener `yaml:"jsonrpc"`
	HTTPPush struct {
		Enabled bool `yaml:"enabled"`
	} `yaml:"http_push"` // POST /api/push on http.listen
	Telnet   Listener `yaml:"telnet"`
	OpenTSDB OpenTSDB `yaml:"opentsdb"`

	Source           string        `yaml:"source"` // subject token: <prefix>.ingest.<source>; empty = transfer_<hostname>
	BatchPoints      int           `yaml:"batch_points"`
	Linger           time.Duration `yaml:"linger"`
	PublishTimeout   time.Duration `yaml:"publish_timeout"`
	Workers          int           `yaml:"workers"`
	MaxPendingPoints int           `yaml:"max_pending_points"`
	MaxWait          time.Duration `yaml:"max_wait"`
	MaxConnections   int           `yaml:"max_connections"` // per listener
	ReadTimeout      time.Duration `yaml:"read_timeout"`    // a request or line must arrive within
	IdleTimeout      time.Duration `yaml:"idle_timeout"`    // a connection without requests is closed
	MaxRequestBytes  int           `yaml:"max_request_bytes"`
	MaxLineBytes     int           `yaml:"max_line_bytes"`
}

// Config is transfer.yaml.
type Config struct {
	NATS            natsconn.Config `yaml:"nats"`
	HTTP            HTTP            `yaml:"http"`
	Stream          Stream          `yaml:"stream"`
	Consumer        Consumer        `yaml:"consumer"`
	MinStep         int             `yaml:"min_step"`
	Ring            Ring            `yaml:"ring"`
	Membership      Membership      `yaml:"membership"`
	Judge           Judge           `yaml:"judge"`
	DeadLetter      DeadLetter      `yaml:"dead_letter"`
	Ingest          Ingest          `yaml:"ingest"`
	ShutdownTimeout time.Duration   `yaml:"shutdown_timeout"`
	Log             logging.Config  `yaml:"log"`

	file string
}

// Default returns the configuration with every default filled in.
func Default() Config {
	return Config{
		NATS:   natsconn.Default(),
		HTTP:   HTTP{Listen: ":6060"},
		Stream: Stream{Replicas: 1, MaxBytes: 1 << 30, DuplicateWindow: 2 * time.Minute},
		Consumer: Consumer{
			AckWait:         6 * time.Second,
			MaxAckPending:   10000,
			FetchBatch:      100,
			FetchWait:       time.Second,
			InProgressEvery: 2 * time.Second,
			NakDelay:        30 * time.Second,
		},
		MinStep:    30,
		Ring:       Ring{PartitionCount: 271, ReplicationFactor: 20, Load: 1.25, Hasher: "xxhash64", BucketReplicas: 1},
		Membership: Membership{Timeout: 3 * time.Second, RejoinHold: 2 * time.Second},
		Judge: Judge{
			RequestTimeout:    5 * time.Second,
			BatchPoints:       1000,
			Linger:            5 * time.Millisecond,
			SuspectAfter:      3,
			UnresponsiveAfter: 30 * time.Second,
			RetryBackoff:      200 * time.Millisecond,
			MovedRetry:        100 * time.Millisecond,
			MaxBackoff:        10 * time.Second,
			MaxInflight:       4,
		},
		DeadLetter: DeadLetter{After: 5, Replicas: 1, MaxBytes: 1 << 30, MaxAge: 7 * 24 * time.Hour},
		Ingest: Ingest{
			JSONRPC:     Listener{Listen: ":8433"},
			Telnet:      Listener{Listen: ":4444"},
			OpenTSDB:    OpenTSDB{Listen: ":4242", EndpointTags: []string{"endpoint", "host"}},
			BatchPoints: 1000, Linger: 5 * time.Millisecond, PublishTimeout: 5 * time.Second, Workers: 4,
			MaxPendingPoints: 200000, MaxWait: time.Second, MaxConnections: 10000,
			ReadTimeout: time.Minute, IdleTimeout: 5 * time.Minute, MaxRequestBytes: 16 << 20, MaxLineBytes: 64 << 10,
		},
		ShutdownTimeout: 10 * time.Second,
		Log:             logging.Default(),
	}
}

// Load reads the file at path over the defaults, strictly (unknown keys
// are errors), and validates it; every error names the file and the field,
// Validate's all at once.
func Load(path string) (Config, error) {
	c := Default()
	c.file = path
	if err := confload.Load(path, &c); err != nil {
		return Config{}, err
	}
	if err := confload.InFile(path, c.Validate()); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Parse decodes b (named name in errors) over the defaults and validates it.
func Parse(name string, b []byte) (Config, error) {
	c := Default()
	c.file = name
	if err := confload.Decode(name, b, &c); err != nil {
		return Config{}, err
	}
	if err := confload.InFile(name, c.Validate()); err != nil {
		return Config{}, err
	}
	return c, nil
}

// File returns the name of the file the config came from.
func (c *Config) File() string { return c.file }

// RingParams returns the ring parameters this transfer must share with
// every other transfer and judge (ring.* and membership.timeout/rejoin_hold).
func (c *Config) RingParams() ringparams.Params {
	return ringparams.Params{PartitionCount: c.Ring.PartitionCount, ReplicationFactor: c.Ring.ReplicationFactor, Load: c.Ring.Load,
		Hasher: c.Ring.Hasher, MemberTimeout: c.Membership.Timeout, RejoinHold: c.Membership.RejoinHold}
}

// Subjects returns the NATS subjects under the configured prefix.
func (c *Config) Subjects() proto.Subjects {
	s, _ := proto.NewSubjects(c.NATS.SubjectPrefix) // checked by Validate
	return s
}

// Validate checks every field and returns one error per bad field
// (joined), each starting with the field's name (Load and Parse put the
// file in front).
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	for _, e := range c.NATS.Validate() {
		bad(e.Field, "%s", e.Msg)
	}
	if c.HTTP.Listen == "" {
		bad("http.listen", "required")
	}
	if c.Stream.Replicas < 1 || c.Stream.Replicas > 5 {
		bad("stream.replicas", "must be 1..5, got %d", c.Stream.Replicas)
	}
	if c.Stream.MaxBytes <= 0 {
		bad("stream.max_bytes", "must be > 0 (the stream pushes back when full), got %d", c.Stream.MaxBytes)
	}
	if c.Stream.MaxAge < 0 {
		bad("stream.max_age", "must be >= 0 (0 = unlimited)")
	}
	if c.Stream.DuplicateWindow <= 0 {
		bad("stream.duplicate_window", "must be > 0")
	}
	if c.Stream.MaxAge > 0 && c.Stream.DuplicateWindow > c.Stream.MaxAge {
		bad("stream.duplicate_window", "must not exceed stream.max_age")
	}
	if c.Consumer.AckWait <= 0 {
		bad("consumer.ack_wait", "must be > 0")
	}
	if c.Consumer.MaxAckPending <= 0 {
		bad("consumer.max_ack_pending", "must be > 0, got %d", c.Consumer.MaxAckPending)
	}
	if c.Consumer.FetchBatch <= 0 {
		bad("consumer.fetch_batch", "must be > 0, got %d", c.Consumer.FetchBatch)
	}
	if c.Consumer.FetchWait <= 0 {
		bad("consumer.fetch_wait", "must be > 0")
	}
	if c.Consumer.InProgressEvery <= 0 || c.Consumer.InProgressEvery >= c.Consumer.AckWait {
		bad("consumer.in_progress_every", "must be > 0 and < consumer.ack_wait (%s), got %s", c.Consumer.AckWait, c.Consumer.InProgressEvery)
	}
	if c.Consumer.NakDelay <= 0 {
		bad("consumer.nak_delay", "must be > 0")
	}
	if c.MinStep <= 0 {
		bad("min_step", "must be > 0, got %d", c.MinStep)
	}
	// buraksezer/consistent panics on values it cannot place; refuse them here.
	if c.Ring.PartitionCount <= 0 {
		bad("ring.partition_count", "must be > 0, got %d", c.Ring.PartitionCount)
	}
	if c.Ring.ReplicationFactor <= 0 {
		bad("ring.replication_factor", "must be > 0, got %d", c.Ring.ReplicationFactor)
	}
	if !(c.Ring.Load > 1.0) || c.Ring.Load > 1e6 {
		bad("ring.load", "must be > 1.0, got %v", c.Ring.Load)
	}
	if c.Ring.Hasher != "xxhash64" {
		bad("ring.hasher", "must be xxhash64 (the only hasher), got %q", c.Ring.Hasher)
	}
	if c.Ring.BucketReplicas < 1 || c.Ring.BucketReplicas > 5 {
		bad("ring.bucket_replicas", "must be 1..5, got %d", c.Ring.BucketReplicas)
	}
	if c.Membership.Timeout <= 0 {
		bad("membership.timeout", "must be > 0")
	}
	if c.Membership.RejoinHold < 0 {
		bad("membership.rejoin_hold", "must be >= 0")
	}
	if c.Judge.RequestTimeout <= 0 {
		bad("judge.request_timeout", "must be > 0")
	}
	if c.Judge.BatchPoints <= 0 {
		bad("judge.batch_points", "must be > 0, got %d", c.Judge.BatchPoints)
	}
	if c.Judge.Linger < 0 {
		bad("judge.linger", "must be >= 0")
	}
	if c.Judge.SuspectAfter <= 0 {
		bad("judge.suspect_after", "must be > 0, got %d", c.Judge.SuspectAfter)
	}
	if c.Judge.UnresponsiveAfter <= 0 {
		bad("judge.unresponsive_after", "must be > 0")
	}
	if c.Judge.MovedRetry <= 0 {
		bad("judge.moved_retry", "must be > 0")
	}
	if c.Judge.RetryBackoff <= 0 {
		bad("judge.retry_backoff", "must be > 0")
	}
	if c.Judge.MaxBackoff < c.Judge.RetryBackoff {
		bad("judge.max_backoff", "must be >= judge.retry_backoff")
	}
	if c.Judge.MaxInflight <= 0 {
		bad("judge.max_inflight", "must be > 0, got %d", c.Judge.MaxInflight)
	}
	if c.DeadLetter.After < 0 || c.DeadLetter.After > 1000 {
		bad("dead_letter.after", "must be 0..1000 (0 = never dead-letter), got %d", c.DeadLetter.After)
	}
	if c.DeadLetter.Replicas < 1 || c.DeadLetter.Replicas > 5 {
		bad("dead_letter.replicas", "must be 1..5, got %d", c.DeadLetter.Replicas)
	}
	if c.DeadLetter.MaxBytes <= 0 {
		bad("dead_letter.max_bytes", "must be > 0 (a full stream refuses new dead letters; they stay held), got %d", c.DeadLetter.MaxBytes)
	}
	if c.DeadLetter.MaxAge < 0 {
		bad("dead_letter.max_age", "must be >= 0 (0 = unlimited)")
	}
	c.validateIngest(bad)
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout", "must be > 0")
	}
	if err := c.Log.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c *Config) validateIngest(bad func(field, format string, args ...any)) {
	in := &c.Ingest
	for _, l := range []struct {
		name string
		on   bool
		addr string
	}{{"ingest.jsonrpc", in.JSONRPC.Enabled, in.JSONRPC.Listen}, {"ingest.telnet", in.Telnet.Enabled, in.Telnet.Listen},
		{"ingest.opentsdb", in.OpenTSDB.Enabled, in.OpenTSDB.Listen}} {
		if !l.on {
			continue
		}
		if _, _, err := net.SplitHostPort(l.addr); err != nil {
			bad(l.name+".listen", "%v", err)
		}
	}
	if in.OpenTSDB.Enabled && len(in.OpenTSDB.EndpointTags) == 0 {
		bad("ingest.opentsdb.endpoint_tags", "at least one tag is required (the point's endpoint)")
	}
	if in.Source != "" && proto.SubjectToken(in.Source) != in.Source {
		bad("ingest.source", "%q must be one subject token: A-Z a-z 0-9 _ -", in.Source)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"ingest.batch_points", in.BatchPoints}, {"ingest.workers", in.Workers}, {"ingest.max_pending_points", in.MaxPendingPoints},
		{"ingest.max_connections", in.MaxConnections}, {"ingest.max_request_bytes", in.MaxRequestBytes}, {"ingest.max_line_bytes", in.MaxLineBytes}} {
		if f.v <= 0 {
			bad(f.name, "must be > 0, got %d", f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"ingest.linger", in.Linger}, {"ingest.publish_timeout", in.PublishTimeout}, {"ingest.max_wait", in.MaxWait},
		{"ingest.read_timeout", in.ReadTimeout}, {"ingest.idle_timeout", in.IdleTimeout}} {
		if f.v <= 0 {
			bad(f.name, "must be > 0")
		}
	}
}
