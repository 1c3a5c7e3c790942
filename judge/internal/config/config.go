// Package config loads and validates judge.yaml: Default, Load (strict
// YAML through lib/confload, every error naming the file, the line and the
// field), Validate (every bad field at once).
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kestrel-mon/kestrel/lib/confload"
	"github.com/kestrel-mon/kestrel/lib/logging"
	"github.com/kestrel-mon/kestrel/lib/natsconn"
	"github.com/kestrel-mon/kestrel/proto"
)

// Config is the whole judge.yaml.
type Config struct {
	NodeID            string          `yaml:"node_id"`
	NATS              natsconn.Config `yaml:"nats"`
	HTTP              HTTP            `yaml:"http"`
	Redis             Redis           `yaml:"redis"`
	RulesFile         string          `yaml:"rules_file"`
	Window            Window          `yaml:"window"`
	Alarm             Alarm           `yaml:"alarm"`
	Workers           int             `yaml:"workers"`
	QueueLen          int             `yaml:"queue_len"`
	HeartbeatInterval time.Duration   `yaml:"heartbeat_interval"`
	ShutdownTimeout   time.Duration   `yaml:"shutdown_timeout"`
	Log               logging.Config  `yaml:"log"`
	Ring              Ring            `yaml:"ring"`
	Membership        Membership      `yaml:"membership"`
	Ownership         Ownership       `yaml:"ownership"`
}

// Ring is the consistent hash ring; it must equal the transfers' (and the
// KV bucket's).
type Ring struct {
	PartitionCount    int     `yaml:"partition_count"`
	ReplicationFactor int     `yaml:"replication_factor"`
	Load              float64 `yaml:"load"`
	Hasher            string  `yaml:"hasher"`
	BucketReplicas    int     `yaml:"bucket_replicas"`
}

// Membership is how judges join and leave the ring; it must equal the
// transfers' (and the KV bucket's).
type Membership struct {
	Timeout    time.Duration `yaml:"timeout"`
	RejoinHold time.Duration `yaml:"rejoin_hold"`
}

// Ownership configures when a judge serves a partition it gained.
type Ownership struct {
	Settle time.Duration `yaml:"settle"`
}

// HTTP is the debug/metrics listener.
type HTTP struct {
	Listen string `yaml:"listen"`
}

// Redis is the alarm Redis. Its tls block has the keys of nats.tls.
type Redis struct {
	Addr        string        `yaml:"addr"`
	Username    string        `yaml:"username"`
	Password    string        `yaml:"password"`
	DB          int           `yaml:"db"`
	TLS         natsconn.TLS  `yaml:"tls"`
	DialTimeout time.Duration `yaml:"dial_timeout"`
	OpTimeout   time.Duration `yaml:"op_timeout"`
}

// Window sizes the per-series windows.
type Window struct {
	Size      int           `yaml:"size"`
	IdleEvict time.Duration `yaml:"idle_evict"`
}

// Alarm configures the state machine and the Redis keys.
type Alarm struct {
	MinInterval     time.Duration `yaml:"min_interval"`
	KeyPrefix       string        `yaml:"key_prefix"`
	EventListFormat string        `yaml:"event_list_format"`
	EventListLen    int           `yaml:"event_list_len"`
	StreamKey       string        `yaml:"stream_key"`
	StreamMaxLen    int           `yaml:"stream_maxlen"`
}

// Default returns a config with every default filled in (node_id and
// rules_file excepted).
func Default() Config {
	return Config{
		NATS:   natsconn.Default(),
		HTTP:   HTTP{Listen: ":6081"},
		Redis:  Redis{Addr: "127.0.0.1:6379", DialTimeout: 5 * time.Second, OpTimeout: 3 * time.Second},
		Window: Window{Size: 11, IdleEvict: 24 * time.Hour},
		Alarm: Alarm{
			MinInterval:     300 * time.Second,
			KeyPrefix:       "kestrel:",
			EventListFormat: "event:p%d",
			EventListLen:    100000,
			StreamKey:       "kestrel:events",
			StreamMaxLen:    100000,
		},
		Workers:           8,
		QueueLen:          64,
		HeartbeatInterval: time.Second,
		ShutdownTimeout:   20 * time.Second,
		Log:               logging.Default(),
		Ring:              Ring{PartitionCount: 271, ReplicationFactor: 20, Load: 1.25, Hasher: "xxhash64", BucketReplicas: 1},
		Membership:        Membership{Timeout: 3 * time.Second, RejoinHold: 2 * time.Second},
		Ownership:         Ownership{Settle: 4 * time.Second},
	}
}

// Load reads path over the defaults (strictly: an unknown key is an
// error), validates it, then resolves rules_file against the directory of
// path (an absolute one is kept) and checks that the rules file can be
// read. Every error names the file and the field; Validate's are all
// reported at once.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("cannot read config: %w", err)
	}
	c, err := Parse(path, b)
	if err != nil {
		return Config{}, err
	}
	written := c.RulesFile
	c.RulesFile = ResolveRulesFile(path, written)
	if err := readable(c.RulesFile); err != nil {
		where := ""
		if c.RulesFile != written {
			where = fmt.Sprintf(" (%s, relative to the directory of this file)", c.RulesFile)
		}
		return Config{}, fmt.Errorf("%s: rules_file: cannot read %q%s: %w", path, written, where, err)
	}
	return c, nil
}

// ResolveRulesFile returns rulesFile, as written in the config file at
// configPath, relative to that file's directory; an absolute path is
// returned as it is.
func ResolveRulesFile(configPath, rulesFile string) string {
	if rulesFile == "" || filepath.IsAbs(rulesFile) {
		return rulesFile
	}
	return filepath.Join(filepath.Dir(configPath), rulesFile)
}

// readable checks that path is a file that can be opened for reading.
func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.IsDir() {
		return errors.New("is a directory")
	}
	return nil
}

// Parse decodes b, the contents of file, over the defaults, fills in the
// default node_id and validates the result (rules_file as written).
func Parse(file string, b []byte) (Config, error) {
	c := Default()
	if err := confload.Decode(file, b, &c); err != nil {
		return Config{}, err
	}
	if c.NodeID == "" {
		c.NodeID = DefaultNodeID(c.HTTP.Listen)
	}
	if err := confload.InFile(file, c.Validate()); err != nil {
		return Config{}, err
	}
	return c, nil
}

// DefaultNodeID is the hostname with every character outside
// [A-Za-z0-9_-] replaced by "_", then "-" and the HTTP port.
func DefaultNodeID(listen string) string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "judge"
	}
	port := "6081"
	if _, p, err := net.SplitHostPort(listen); err == nil && p != "" {
		port = p
	}
	return proto.SubjectToken(h) + "-" + proto.SubjectToken(port)
}

// Validate checks every field and returns one error per bad field
// (joined), each starting with the field's name.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, a...)))
	}
	if err := proto.ValidateNodeID(c.NodeID); err != nil {
		bad("node_id", "%v", err)
	}
	for _, e := range c.NATS.Validate() {
		bad(e.Field, "%s", e.Msg)
	}
	if c.HTTP.Listen == "" {
		bad("http.listen", "required")
	} else if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		bad("http.listen", "%v", err)
	}
	if c.Redis.Addr == "" {
		bad("redis.addr", "required")
	} else if _, _, err := net.SplitHostPort(c.Redis.Addr); err != nil {
		bad("redis.addr", "%v", err)
	}
	if c.Redis.DB < 0 {
		bad("redis.db", "must be >= 0")
	}
	if c.Redis.DialTimeout <= 0 {
		bad("redis.dial_timeout", "must be > 0")
	}
	if c.Redis.OpTimeout <= 0 {
		bad("redis.op_timeout", "must be > 0")
	}
	for _, e := range c.Redis.TLS.Validate("redis.tls") {
		bad(e.Field, "%s", e.Msg)
	}
	if c.RulesFile == "" {
		bad("rules_file", "required")
	}
	if c.Window.Size < 1 || c.Window.Size > 1024 {
		bad("window.size", "must be in 1..1024, got %d", c.Window.Size)
	}
	if c.Window.IdleEvict <= 0 {
		bad("window.idle_evict", "must be > 0")
	}
	if c.Alarm.MinInterval < 0 {
		bad("alarm.min_interval", "must be >= 0")
	}
	if c.Alarm.KeyPrefix == "" {
		bad("alarm.key_prefix", "required")
	}
	if strings.Count(c.Alarm.EventListFormat, "%d") != 1 || strings.Count(c.Alarm.EventListFormat, "%") != 1 {
		bad("alarm.event_list_format", "must contain exactly one %%d, got %q", c.Alarm.EventListFormat)
	}
	if c.Alarm.EventListLen < 0 {
		bad("alarm.event_list_len", "must be >= 0 (0 = no list)")
	}
	if c.Alarm.StreamKey == "" {
		bad("alarm.stream_key", "required")
	}
	if c.Alarm.StreamMaxLen < 0 {
		bad("alarm.stream_maxlen", "must be >= 0 (0 = no stream)")
	}
	if c.Workers < 1 || c.Workers > 1024 {
		bad("workers", "must be in 1..1024, got %d", c.Workers)
	}
	if c.QueueLen < 1 {
		bad("queue_len", "must be >= 1")
	}
	if c.HeartbeatInterval <= 0 {
		bad("heartbeat_interval", "must be > 0")
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout", "must be > 0")
	}
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
		bad("ring.hasher", "only xxhash64 is supported, got %q", c.Ring.Hasher)
	}
	if c.Ring.BucketReplicas < 1 || c.Ring.BucketReplicas > 5 {
		bad("ring.bucket_replicas", "must be in 1..5, got %d", c.Ring.BucketReplicas)
	}
	if c.Membership.Timeout <= 0 {
		bad("membership.timeout", "must be > 0")
	} else if c.Membership.Timeout <= c.HeartbeatInterval {
		bad("membership.timeout", "must be longer than heartbeat_interval (%s), got %s", c.HeartbeatInterval, c.Membership.Timeout)
	}
	if c.Membership.RejoinHold < 0 {
		bad("membership.rejoin_hold", "must be >= 0")
	}
	if floor := c.HeartbeatInterval + c.Redis.OpTimeout; c.Ownership.Settle < floor {
		bad("ownership.settle", "must be at least heartbeat_interval + redis.op_timeout (%s): the previous owner, one heartbeat behind, may still have a write in flight; got %s", floor, c.Ownership.Settle)
	}
	if err := c.Log.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
