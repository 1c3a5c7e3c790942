// Package ring maps series keys to judge nodes with a consistent hash ring
// (buraksezer/consistent, xxhash). A Ring is an immutable snapshot: it is
// built once from a member list and never changed, so lookups need no lock.
// Two Rings built from the same members and config give the same owner for
// every key, on every transfer.
package ring

import (
	"errors"
	"fmt"
	"slices"

	"github.com/buraksezer/consistent"
	"github.com/cespare/xxhash/v2"
)

// Config is the ring's shape; every transfer must use the same values.
type Config struct {
	PartitionCount    int
	ReplicationFactor int
	Load              float64
}

// Validate refuses values consistent would panic on.
func (c Config) Validate() error {
	var errs []error
	if c.PartitionCount <= 0 {
		errs = append(errs, fmt.Errorf("partition_count must be > 0, got %d", c.PartitionCount))
	}
	if c.ReplicationFactor <= 0 {
		errs = append(errs, fmt.Errorf("replication_factor must be > 0, got %d", c.ReplicationFactor))
	}
	if !(c.Load > 1.0) {
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
	members []string // sorted
	owner   []int32  // partition id → index in members
}

// New builds a ring over members (duplicates ignored). An empty member list
// gives an empty ring whose Locate reports no owner.
func New(members []string, cfg Config) (*Ring, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ring: %w", err)
	}
	names := slices.Clone(members)
	slices.Sort(names)
	names = slices.Compact(names)
	r := &Ring{members: names}
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

// Locate returns the owner of key, or "", false on an empty ring. It
// neither locks nor allocates.
func (r *Ring) Locate(key []byte) (string, bool) {
	if len(r.members) == 0 {
		return "", false
	}
	return r.members[r.owner[r.c.FindPartitionID(key)]], true
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
