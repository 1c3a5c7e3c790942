package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/ringparams"
)

func TestDefaults(t *testing.T) {
	c, err := Parse("empty.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.file = "empty.yaml"
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("empty file: got %+v, want defaults %+v", c, want)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"http.listen", c.HTTP.Listen, ":6060"},
		{"stream.replicas", c.Stream.Replicas, 1},
		{"stream.max_bytes", c.Stream.MaxBytes, int64(1073741824)},
		{"stream.max_age", c.Stream.MaxAge, time.Duration(0)},
		{"consumer.ack_wait", c.Consumer.AckWait, 6 * time.Second},
		{"consumer.max_ack_pending", c.Consumer.MaxAckPending, 10000},
		{"consumer.fetch_batch", c.Consumer.FetchBatch, 100},
		{"consumer.fetch_wait", c.Consumer.FetchWait, time.Second},
		{"consumer.in_progress_every", c.Consumer.InProgressEvery, 2 * time.Second},
		{"min_step", c.MinStep, 30},
		{"ring.partition_count", c.Ring.PartitionCount, 271},
		{"ring.replication_factor", c.Ring.ReplicationFactor, 20},
		{"ring.load", c.Ring.Load, 1.25},
		{"ring.hasher", c.Ring.Hasher, "xxhash64"},
		{"ring.bucket_replicas", c.Ring.BucketReplicas, 1},
		{"membership.timeout", c.Membership.Timeout, 3 * time.Second},
		{"membership.rejoin_hold", c.Membership.RejoinHold, 2 * time.Second},
		{"judge.request_timeout", c.Judge.RequestTimeout, 5 * time.Second},
		{"judge.batch_points", c.Judge.BatchPoints, 1000},
		{"judge.linger", c.Judge.Linger, 5 * time.Millisecond},
		{"judge.suspect_after", c.Judge.SuspectAfter, 3},
		{"judge.unresponsive_after", c.Judge.UnresponsiveAfter, 30 * time.Second},
		{"judge.retry_backoff", c.Judge.RetryBackoff, 200 * time.Millisecond},
		{"nats.subject_prefix", c.NATS.SubjectPrefix, "kestrel"},
		{"nats.connect_timeout", c.NATS.ConnectTimeout, 5 * time.Second},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if got := c.Subjects().Stream(); got != "KESTREL_INGEST" {
		t.Errorf("stream = %s", got)
	}
}

// The example config documents every default: loading it must give
// exactly the defaults.
func TestExampleIsDefaults(t *testing.T) {
	path := filepath.Join("..", "..", "kestrel-transfer.example.yaml")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.file = path
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("example differs from defaults:\n got %+v\nwant %+v", c, want)
	}
}

func TestOverrides(t *testing.T) {
	c, err := Parse("t.yaml", []byte(`
nats: {urls: ["nats://a:4222", "nats://b:4222"], subject_prefix: acme.mon}
stream: {replicas: 3, max_age: 24h}
ring: {partition_count: 7, replication_factor: 3, load: 1.5}
judge: {linger: 0s}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.NATS.URLs) != 2 || c.Stream.Replicas != 3 || c.Stream.MaxAge != 24*time.Hour || c.Ring.PartitionCount != 7 || c.Judge.Linger != 0 {
		t.Fatalf("overrides not applied: %+v", c)
	}
	if c.Subjects().Stream() != "ACME_MON_INGEST" || c.Subjects().RingBucket() != "ACME_MON_RING" {
		t.Fatal(c.Subjects().Stream(), c.Subjects().RingBucket())
	}
	want := ringparams.Params{PartitionCount: 7, ReplicationFactor: 3, Load: 1.5, Hasher: "xxhash64", MemberTimeout: 3 * time.Second, RejoinHold: 2 * time.Second}
	if got := c.RingParams(); got != want {
		t.Fatalf("ring params %+v, want %+v", got, want)
	}
	if c.Consumer.FetchBatch != 100 {
		t.Fatal("untouched default lost")
	}
}

func TestBadValues(t *testing.T) {
	cases := []struct {
		yaml string
		want string // substring of the error
	}{
		{"ring: {partition_count: 0}", "t.yaml: ring.partition_count: must be > 0"},
		{"ring: {partition_count: -3}", "ring.partition_count"},
		{"ring: {replication_factor: 0}", "t.yaml: ring.replication_factor: must be > 0"},
		{"ring: {load: 1.0}", "t.yaml: ring.load: must be > 1.0"},
		{"ring: {load: 0.5}", "ring.load"},
		{"ring: {load: .nan}", "ring.load"},
		{"min_step: 0", "min_step"},
		{"consumer: {in_progress_every: 30s}", "consumer.in_progress_every"},
		{"consumer: {fetch_batch: 0}", "consumer.fetch_batch"},
		{"consumer: {max_ack_pending: 0}", "consumer.max_ack_pending"},
		{"judge: {batch_points: 0}", "judge.batch_points"},
		{"judge: {suspect_after: 0}", "judge.suspect_after"},
		{"judge: {unresponsive_after: 0s}", "judge.unresponsive_after"},
		{"judge: {request_timeout: 0s}", "judge.request_timeout"},
		{"stream: {max_bytes: 0}", "stream.max_bytes"},
		{"stream: {replicas: 7}", "stream.replicas"},
		{"nats: {subject_prefix: 'a b'}", "nats.subject_prefix"},
		{"nats: {urls: []}", "nats.urls"},
		{"nats: {token: x, user: u}", "only one of"},
		{"nats: {tls: {cert_file: c}}", "nats.tls"},
		{"log: {level: loud}", "log.level"},
		{"membership: {timeout: 0s}", "membership.timeout"},
		{"unknown_key: 1", "field unknown_key not found"},
		{"judge: {linger: 5}", "t.yaml"},
		{"ring: [1]", "t.yaml"},
		{"ring: {hasher: md5}", "t.yaml: ring.hasher: must be xxhash64"},
		{"ring: {hasher: ''}", "ring.hasher"},
		{"ring: {bucket_replicas: 0}", "t.yaml: ring.bucket_replicas: must be 1..5"},
		{"ring: {bucket_replicas: 6}", "ring.bucket_replicas"},
	}
	for _, tc := range cases {
		_, err := Parse("t.yaml", []byte(tc.yaml))
		if err == nil {
			t.Errorf("%q: no error", tc.yaml)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %q does not contain %q", tc.yaml, err, tc.want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("err = %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}
