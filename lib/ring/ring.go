// Package ring maps series keys to judge nodes with a consistent hash ring
// (buraksezer/consistent, xxhash64). A Ring is an immutable snapshot: it is
// built once from a member list and never changed, so lookups need no lock.
// Two Rings built from the same members and config give the same owner for
// every key, in every process: transfers route by it, judges compute the
// same ring to know which series they own.
//
// A key is placed in two steps: its partition is xxhash64(key) modulo the
// partition count (consistent's FindPartitionID), and every partition has
// one owner. A judge that already has the xxhash64 of a series key gets its
// partition with PartitionOfHash, without hashing the key again.
package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/buraksezer/consistent"
	"github.com/cespare/xxhash/v2"
)

// HasherXXHash64 is the only hasher: xxhash64 (cespare/xxhash/v2) of the
// series key.
const HasherXXHash64 = "xxhash64"

// Config is the ring's shape; every transfer and judge must use the same
// values (they are kept once, in the ring parameters bucket).
type Config struct {
	PartitionCount    int
	ReplicationFactor int
	Load              float64
	Hasher            string // "xxhash64"; empty means xxhash64 (see WithDefaults)
}

// WithDefaults returns c with an empty Hasher set to HasherXXHash64.
func (c Config) WithDefaults() Config {
	if c.Hasher == "" {
		c.Hasher = HasherXXHash64
	}
	return c
}

// Validate refuses values consistent would panic on, and any hasher but
// xxhash64 (empty is accepted: it means xxhash64).
func (c Config) Validate() error {
	var errs []error
	if c.Hasher != "" && c.Hasher != HasherXXHash64 {
		errs = append(errs, fmt.Errorf("hasher must be %q, got %q", HasherXXHash64, c.Hasher))
	}
	if c.PartitionCount <= 0 {
		errs = append(errs, fmt.Errorf("partition_count must be > 0, got %d", c.PartitionCount))
	}
	if c.ReplicationFactor <= 0 {
		errs = append(errs, fmt.Errorf("replication_factor must be > 0, got %d", c.ReplicationFactor))
	}
	if !(c.Load > 1.0) || math.IsInf(c.Load, 0) {
		errs = append(errs, fmt.Errorf("load must be > 1.0, got %v", c.Load))
	}
	return errors.Join(errs...)
}

type hasher struct{}

func (hasher) Sum64(b []byte) uint64 { return xxhash.Sum64(b) }

type member string

func (m member) String() string { return string(m) }

// Ring is an immutable snapshot of the ring over a set of members.
type Ring struct {
	c       *consistent.Consistent
	cfg     Config
	id      uint64
	members []string // sorted
	owner   []int32  // partition id → index in members
}

// New builds a ring over members (duplicates ignored). An empty member list
// gives an empty ring whose Locate reports no owner.
func New(members []string, cfg Config) (*Ring, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ring: %w", err)
	}
	cfg = cfg.WithDefaults()
	names := slices.Clone(members)
	slices.Sort(names)
	names = slices.Compact(names)
	r := &Ring{cfg: cfg, members: names, id: identity(names, cfg)}
	if len(names) == 0 {
		return r, nil
	}
	ms := make([]consistent.Member, len(names))
	for i, n := range names {
		ms[i] = member(n)
	}
	r.c = consistent.New(ms, consistent.Config{
		Hasher:            hasher{},
		PartitionCount:    cfg.PartitionCount,
		ReplicationFactor: cfg.ReplicationFactor,
		Load:              cfg.Load,
	})
	// Resolve every partition's owner once, so Locate is a hash and two
	// slice reads with no lock.
	r.owner = make([]int32, cfg.PartitionCount)
	for p := range r.owner {
		m := r.c.GetPartitionOwner(p)
		if m == nil {
			return nil, fmt.Errorf("ring: partition %d has no owner", p)
		}
		i, ok := slices.BinarySearch(names, m.String())
		if !ok {
			return nil, fmt.Errorf("ring: partition %d owned by unknown member %q", p, m.String())
		}
		r.owner[p] = int32(i)
	}
	return r, nil
}

// Len returns the number of members.
func (r *Ring) Len() int { return len(r.members) }

// Members returns the sorted member names; the caller must not change it.
func (r *Ring) Members() []string { return r.members }

// Has reports whether node is a member.
func (r *Ring) Has(node string) bool {
	_, ok := slices.BinarySearch(r.members, node)
	return ok
}

// Config returns the ring's config (Hasher filled in).
func (r *Ring) Config() Config { return r.cfg }

// ID returns a stable identity of the ring: a hash of its config and its
// sorted members. Two rings with the same members and config have the same
// ID in every process; use it in logs and metrics to tell at a glance
// whether two views agree. It is not a placement input.
func (r *Ring) ID() uint64 { return r.id }

// PartitionCount returns the number of partitions.
func (r *Ring) PartitionCount() int { return r.cfg.PartitionCount }

// PartitionOfHash returns the partition of a key whose xxhash64 is h:
// h modulo partitionCount (which must be > 0). It is the same as
// Ring.Partition of the key and consistent's FindPartitionID, so a judge
// that already has the xxhash64 of a series key needs no ring to find its
// partition.
func PartitionOfHash(h uint64, partitionCount int) int {
	return int(h % uint64(partitionCount))
}

// Partition returns the partition of key (xxhash64(key) % PartitionCount),
// on an empty ring too.
func (r *Ring) Partition(key []byte) int {
	return PartitionOfHash(xxhash.Sum64(key), r.cfg.PartitionCount)
}

// OwnerOf returns the member owning partition, or "", false on an empty
// ring or for a partition out of [0, PartitionCount).
func (r *Ring) OwnerOf(partition int) (string, bool) {
	if partition < 0 || partition >= len(r.owner) {
		return "", false
	}
	return r.members[r.owner[partition]], true
}

// Locate returns the owner of key, or "", false on an empty ring. It
// neither locks nor allocates.
func (r *Ring) Locate(key []byte) (string, bool) {
	if len(r.members) == 0 {
		return "", false
	}
	return r.members[r.owner[r.Partition(key)]], true
}

// LocateKey is consistent's own lookup (takes its read lock); Locate gives
// the same answer. Kept for tests that check the two agree.
func (r *Ring) LocateKey(key []byte) (string, bool) {
	if r.c == nil {
		return "", false
	}
	m := r.c.LocateKey(key)
	if m == nil {
		return "", false
	}
	return m.String(), true
}

// identity hashes the config and the sorted members.
func identity(members []string, cfg Config) uint64 {
	d := xxhash.New()
	var b [8]byte
	put := func(v uint64) {
		binary.LittleEndian.PutUint64(b[:], v)
		_, _ = d.Write(b[:])
	}
	str := func(s string) {
		put(uint64(len(s)))
		_, _ = d.WriteString(s)
	}
	str("kestrel-ring/1")
	put(uint64(cfg.PartitionCount))
	put(uint64(cfg.ReplicationFactor))
	put(math.Float64bits(cfg.Load))
	str(cfg.Hasher)
	put(uint64(len(members)))
	for _, m := range members {
		str(m)
	}
	return d.Sum64()
}
