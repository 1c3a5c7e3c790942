// Package ringparams keeps the ring parameters once, in a JetStream KV
// bucket, so every transfer and judge computes the same ring.
//
// The bucket is named after the subject prefix (proto.Subjects.RingBucket:
// KESTREL_RING for "kestrel"), keeps 5 revisions and holds one key,
// "params", whose value is JSON:
//
//	{"partition_count":271,"replication_factor":20,"load":1.25,"hasher":"xxhash64",
//	 "member_timeout":"3s","rejoin_hold":"2s"}
//
// The membership timeout and rejoin hold are part of it because a judge
// must take members in and out exactly when the transfers do, or it would
// compute another ring.
//
// A process Ensures its configured parameters at start: the first one to
// start writes them (KV Create, so of two starting together exactly one
// wins), every later one reads them back and compares with Mismatch. An
// operator changes them with Set (kestrel-transfer ring set) while every
// transfer and judge is stopped; a running process sees the change through
// Watch and stops routing or serving until its config matches again.
package ringparams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/kestrel-mon/kestrel/lib/ring"
	"github.com/nats-io/nats.go/jetstream"
)

// Key is the key of the parameters in the bucket.
const Key = "params"

// History is how many revisions of the parameters the bucket keeps.
const History = 5

// ErrNotFound is returned by Get when the bucket or the key does not exist
// (or the key was deleted or purged).
var ErrNotFound = errors.New("no ring parameters stored")

// Params are the ring parameters every transfer and judge must share.
type Params struct {
	PartitionCount    int
	ReplicationFactor int
	Load              float64
	Hasher            string // "xxhash64"; empty means xxhash64
	MemberTimeout     time.Duration
	RejoinHold        time.Duration
}

// Ring returns the ring.Config part.
func (p Params) Ring() ring.Config {
	return ring.Config{PartitionCount: p.PartitionCount, ReplicationFactor: p.ReplicationFactor, Load: p.Load, Hasher: p.Hasher}
}

// withDefaults fills an empty Hasher.
func (p Params) withDefaults() Params {
	if p.Hasher == "" {
		p.Hasher = ring.HasherXXHash64
	}
	return p
}

// IsZero reports whether p is the zero value (what Watch reports for a
// deleted, purged or unreadable value).
func (p Params) IsZero() bool { return p == Params{} }

// Validate checks the ring part as the ring does and the durations.
func (p Params) Validate() error {
	var errs []error
	if err := p.Ring().Validate(); err != nil {
		errs = append(errs, err)
	}
	if p.Load > 1e6 {
		errs = append(errs, fmt.Errorf("load must be <= 1e6, got %v", p.Load))
	}
	if p.MemberTimeout <= 0 {
		errs = append(errs, fmt.Errorf("member_timeout must be > 0, got %s", p.MemberTimeout))
	}
	if p.RejoinHold < 0 {
		errs = append(errs, fmt.Errorf("rejoin_hold must be >= 0, got %s", p.RejoinHold))
	}
	return errors.Join(errs...)
}

// Equal reports whether p and q give the same ring (an empty Hasher equals
// xxhash64).
func (p Params) Equal(q Params) bool { return p.withDefaults() == q.withDefaults() }

// wire is the JSON form: durations as Go duration strings.
type wire struct {
	PartitionCount    int     `json:"partition_count"`
	ReplicationFactor int     `json:"replication_factor"`
	Load              float64 `json:"load"`
	Hasher            string  `json:"hasher"`
	MemberTimeout     string  `json:"member_timeout"`
	RejoinHold        string  `json:"rejoin_hold"`
}

// MarshalJSON writes the bucket's JSON form.
func (p Params) MarshalJSON() ([]byte, error) {
	if math.IsNaN(p.Load) || math.IsInf(p.Load, 0) {
		return nil, fmt.Errorf("ring parameters: load %v is not a number JSON can hold", p.Load)
	}
	return json.Marshal(wire{PartitionCount: p.PartitionCount, ReplicationFactor: p.ReplicationFactor, Load: p.Load,
		Hasher: p.Hasher, MemberTimeout: p.MemberTimeout.String(), RejoinHold: p.RejoinHold.String()})
}

// UnmarshalJSON reads the bucket's JSON form strictly (unknown fields are
// errors).
func (p *Params) UnmarshalJSON(b []byte) error {
	var w wire
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("ring parameters: %w", err)
	}
	mt, err := time.ParseDuration(w.MemberTimeout)
	if err != nil {
		return fmt.Errorf("ring parameters: member_timeout: %w", err)
	}
	rh, err := time.ParseDuration(w.RejoinHold)
	if err != nil {
		return fmt.Errorf("ring parameters: rejoin_hold: %w", err)
	}
	*p = Params{PartitionCount: w.PartitionCount, ReplicationFactor: w.ReplicationFactor, Load: w.Load, Hasher: w.Hasher,
		MemberTimeout: mt, RejoinHold: rh}
	return nil
}

// String returns the JSON form.
func (p Params) String() string {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Sprintf("%#v", p)
	}
	return string(b)
}

// decode reads and validates a stored value.
func decode(b []byte) (Params, error) {
	var p Params
	if err := json.Unmarshal(b, &p); err != nil {
		return Params{}, err
	}
	if err := p.Validate(); err != nil {
		return Params{}, fmt.Errorf("ring parameters: %w", err)
	}
	return p, nil
}

// Diff is one parameter that differs: Config is what the caller wants,
// Bucket what is stored.
type Diff struct {
	Field          string
	Config, Bucket string
}

// MismatchError lists every parameter that differs.
type MismatchError struct{ Diffs []Diff }

func (e *MismatchError) Error() string {
	parts := make([]string, len(e.Diffs))
	for i, d := range e.Diffs {
		parts[i] = fmt.Sprintf("%s %s (config) != %s (bucket)", d.Field, d.Config, d.Bucket)
	}
	return strings.Join(parts, ", ")
}

// Mismatch returns nil when stored equals want, else a *MismatchError
// naming each differing field with both values, e.g.
// "partition_count 271 (config) != 512 (bucket)".
func Mismatch(stored, want Params) error {
	s, w := stored.withDefaults(), want.withDefaults()
	var diffs []Diff
	add := func(field string, config, bucket any) {
		diffs = append(diffs, Diff{Field: field, Config: fmt.Sprint(config), Bucket: fmt.Sprint(bucket)})
	}
	if w.PartitionCount != s.PartitionCount {
		add("partition_count", w.PartitionCount, s.PartitionCount)
	}
	if w.ReplicationFactor != s.ReplicationFactor {
		add("replication_factor", w.ReplicationFactor, s.ReplicationFactor)
	}
	if w.Load != s.Load {
		add("load", w.Load, s.Load)
	}
	if w.Hasher != s.Hasher {
		add("hasher", w.Hasher, s.Hasher)
	}
	if w.MemberTimeout != s.MemberTimeout {
		add("member_timeout", w.MemberTimeout, s.MemberTimeout)
	}
	if w.RejoinHold != s.RejoinHold {
		add("rejoin_hold", w.RejoinHold, s.RejoinHold)
	}
	if len(diffs) == 0 {
		return nil
	}
	return &MismatchError{Diffs: diffs}
}

// bucket opens the bucket, creating it (History revisions, replicas) when
// it is missing. An existing bucket is used as it is.
func bucket(ctx context.Context, js jetstream.JetStream, name string, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, name)
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("cannot open kv bucket %s: %w", name, err)
	}
	if replicas <= 0 {
		replicas = 1
	}
	kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, History: History, Replicas: replicas,
		Description: "kestrel ring parameters, shared by every transfer and judge"})
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.KeyValue(ctx, name) // created meanwhile by another process
	}
	if err != nil {
		return nil, fmt.Errorf("cannot create kv bucket %s: %w", name, err)
	}
	return kv, nil
}

// Ensure returns the parameters stored in bucket, storing want first when
// there are none (the bucket is created with replicas when missing). Of
// several processes ensuring at once, exactly one stores its value; the
// others get that value back. Ensure does not compare: call Mismatch.
func Ensure(ctx context.Context, js jetstream.JetStream, bucketName string, replicas int, want Params) (Params, error) {
	want = want.withDefaults()
	if err := want.Validate(); err != nil {
		return Params{}, fmt.Errorf("ring parameters: %w", err)
	}
	data, err := json.Marshal(want)
	if err != nil {
		return Params{}, err
	}
	kv, err := bucket(ctx, js, bucketName, replicas)
	if err != nil {
		return Params{}, err
	}
	_, err = kv.Create(ctx, Key, data)
	if err == nil {
		return want, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return Params{}, fmt.Errorf("cannot store ring parameters in %s: %w", bucketName, err)
	}
	e, err := kv.Get(ctx, Key)
	if err != nil {
		return Params{}, fmt.Errorf("cannot read ring parameters from %s: %w", bucketName, err)
	}
	stored, err := decode(e.Value())
	if err != nil {
		return Params{}, fmt.Errorf("%s revision %d: %w", bucketName, e.Revision(), err)
	}
	return stored, nil
}

// Get returns the stored parameters, or an error wrapping ErrNotFound.
func Get(ctx context.Context, js jetstream.JetStream, bucketName string) (Params, error) {
	kv, err := js.KeyValue(ctx, bucketName)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return Params{}, fmt.Errorf("%w: bucket %s does not exist", ErrNotFound, bucketName)
	}
	if err != nil {
		return Params{}, fmt.Errorf("cannot open kv bucket %s: %w", bucketName, err)
	}
	e, err := kv.Get(ctx, Key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return Params{}, fmt.Errorf("%w: no key %q in %s", ErrNotFound, Key, bucketName)
	}
	if err != nil {
		return Params{}, fmt.Errorf("cannot read ring parameters from %s: %w", bucketName, err)
	}
	p, err := decode(e.Value())
	if err != nil {
		return Params{}, fmt.Errorf("%s revision %d: %w", bucketName, e.Revision(), err)
	}
	return p, nil
}

// Set validates p and stores it (creating the bucket with replicas when
// missing), whatever was stored before. It is the operator's explicit
// command; every transfer and judge should be stopped meanwhile.
func Set(ctx context.Context, js jetstream.JetStream, bucketName string, replicas int, p Params) error {
	p = p.withDefaults()
	if err := p.Validate(); err != nil {
		return fmt.Errorf("ring parameters: %w", err)
	}
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	kv, err := bucket(ctx, js, bucketName, replicas)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, Key, data); err != nil {
		return fmt.Errorf("cannot store ring parameters in %s: %w", bucketName, err)
	}
	return nil
}

// Watch calls fn with the stored parameters when it starts (if any) and
// then on every change, until ctx ends (it returns nil then). A deleted,
// purged or unreadable value is reported as the zero Params (which
// mismatches every valid config). Calling fn for the current value too
// closes the gap between a caller's Ensure and the start of its watch; a
// caller comparing with Mismatch is unaffected by the repeat. fn runs on
// Watch's goroutine. Watch returns an error when the bucket cannot be
// opened or the watch ends before ctx (the bucket was deleted).
func Watch(ctx context.Context, js jetstream.JetStream, bucketName string, fn func(Params)) error {
	kv, err := js.KeyValue(ctx, bucketName)
	if err != nil {
		return fmt.Errorf("cannot open kv bucket %s: %w", bucketName, err)
	}
	w, err := kv.Watch(ctx, Key)
	if err != nil {
		return fmt.Errorf("cannot watch %s in %s: %w", Key, bucketName, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("watch of %s in %s ended", Key, bucketName)
			}
			if e == nil {
				continue // end of the initial values
			}
			if e.Operation() != jetstream.KeyValuePut {
				fn(Params{})
				continue
			}
			p, err := decode(e.Value())
			if err != nil {
				fn(Params{})
				continue
			}
			fn(p)
		}
	}
}
