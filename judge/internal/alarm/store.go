package alarm

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/redis/go-redis/v9"
)

// Keys configures the Redis keys the store writes.
type Keys struct {
	Prefix          string // "kestrel:" → kestrel:alarm:<id>, kestrel:alarms:active
	EventListFormat string // "event:p%d"
	EventListLen    int    // LTRIM length; 0 = no LPUSH
	StreamKey       string // "kestrel:events"
	StreamMaxLen    int    // XADD MAXLEN ~; 0 = no XADD
}

// AlarmKey returns the hash key of an alarm id.
func (k Keys) AlarmKey(id string) string { return k.Prefix + "alarm:" + id }

// ActiveKey returns the sorted set of alarms in PROBLEM.
func (k Keys) ActiveKey() string { return k.Prefix + "alarms:active" }

// casScript (cas.lua) compares the stored (status, currentStep,
// eventTime) of KEYS[1] with ARGV[1..3] and, when equal, writes the new
// state, the active set, the event list and the stream; otherwise it
// returns the stored values so the caller can decide again. A key of
// another type compares as wrongType.
//
//go:embed cas.lua
var casScript string

// wrongType stands for a state key that is not a hash (cas.lua's marker).
const wrongType = "\x00wrongtype"

// unreadableSep joins the raw stored values of an unreadable state.
const unreadableSep = "\x1f"

// Store reads and writes alarm states in Redis.
type Store struct {
	rdb    redis.UniversalClient
	keys   Keys
	script *redis.Script
}

// NewStore returns a store over rdb.
func NewStore(rdb redis.UniversalClient, keys Keys) *Store {
	return &Store{rdb: rdb, keys: keys, script: redis.NewScript(casScript)}
}

// Keys returns the store's key configuration.
func (s *Store) Keys() Keys { return s.keys }

// Load returns the stored state of id (None when absent).
func (s *Store) Load(ctx context.Context, id string) (State, error) {
	st, err := s.LoadMany(ctx, []string{id})
	if err != nil {
		return State{}, err
	}
	return st[0], nil
}

// readState turns stored values into a State; values that do not parse
// give an Unreadable state (never an error: it would recur for ever).
func readState(status, step, evt string) State {
	st, err := parseState(status, step, evt)
	if err != nil {
		return State{Unreadable: status + unreadableSep + step + unreadableSep + evt}
	}
	return st
}

// isWrongType reports a Redis WRONGTYPE error (the key is not a hash).
func isWrongType(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE")
}

func parseState(status, step, evt string) (State, error) {
	st, ok := ParseStatus(status)
	if !ok {
		return State{}, fmt.Errorf("stored status %q is neither PROBLEM nor OK", status)
	}
	if st == None {
		return State{}, nil
	}
	cs, err1 := strconv.Atoi(step)
	et, err2 := strconv.ParseInt(evt, 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return State{}, fmt.Errorf("stored state is corrupt: %w", err)
	}
	return State{Status: st, CurrentStep: cs, EventTime: et}, nil
}

// Transition is one state change to write.
type Transition struct {
	ID       string
	From     State // the state the decision was made from
	To       State
	Priority int
	Endpoint string
	Event    []byte // proto.MarshalEvent
}

// Write applies t if the stored state still equals t.From. It returns
// (true, t.To, nil) when written, (false, stored, nil) when another
// writer got there first.
func (s *Store) Write(ctx context.Context, t *Transition) (bool, State, error) {
	keys := []string{
		s.keys.AlarmKey(t.ID),
		s.keys.ActiveKey(),
		proto.EventListKey(s.keys.EventListFormat, t.Priority),
		s.keys.StreamKey,
	}
	fromStatus, fromStep, fromTime := t.From.Status.String(), "", ""
	switch {
	case t.From.Unreadable == wrongType:
		fromStatus = wrongType
	case t.From.Unreadable != "":
		raw := strings.SplitN(t.From.Unreadable, unreadableSep, 3)
		fromStatus, fromStep, fromTime = raw[0], raw[1], raw[2]
	case t.From.Status != None:
		fromStep, fromTime = strconv.Itoa(t.From.CurrentStep), strconv.FormatInt(t.From.EventTime, 10)
	}
	res, err := s.script.Run(ctx, s.rdb, keys,
		fromStatus, fromStep, fromTime,
		t.To.Status.String(), t.To.CurrentStep, t.To.EventTime, t.Priority,
		t.Event, s.keys.EventListLen, s.keys.StreamMaxLen, t.ID, t.Endpoint).Slice()
	if err != nil {
		return false, State{}, fmt.Errorf("cannot write alarm %s: %w", t.ID, err)
	}
	if len(res) == 0 {
		return false, State{}, fmt.Errorf("alarm %s: empty script reply", t.ID)
	}
	if ok, _ := res[0].(int64); ok == 1 {
		return true, t.To, nil
	}
	if len(res) != 4 {
		return false, State{}, fmt.Errorf("alarm %s: unexpected script reply %v", t.ID, res)
	}
	str := func(v any) string { s, _ := v.(string); return s }
	if str(res[1]) == wrongType {
		return false, State{Unreadable: wrongType}, nil
	}
	return false, readState(str(res[1]), str(res[2]), str(res[3])), nil
}

// Active returns the ids in PROBLEM with their eventTime, oldest first
// (at most limit; 0 = all).
func (s *Store) Active(ctx context.Context, limit int64) ([]redis.Z, error) {
	stop := int64(-1)
	if limit > 0 {
		stop = limit - 1
	}
	z, err := s.rdb.ZRangeWithScores(ctx, s.keys.ActiveKey(), 0, stop).Result()
	if err != nil {
		return nil, fmt.Errorf("cannot read active alarms: %w", err)
	}
	return z, nil
}

// Ping checks Redis.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

// LoadMany returns the stored states of ids (None when absent), read in
// one pipelined round trip.
func (s *Store) LoadMany(ctx context.Context, ids []string) ([]State, error) {
	cmds := make([]*redis.SliceCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, s.keys.AlarmKey(id), "status", "currentStep", "eventTime")
		}
		return nil
	})
	out := make([]State, len(ids))
	str := func(v any) string { s, _ := v.(string); return s }
	for i, c := range cmds {
		if cerr := c.Err(); cerr != nil {
			if isWrongType(cerr) {
				out[i] = State{Unreadable: wrongType}
				continue
			}
			return nil, fmt.Errorf("cannot load alarm %s: %w", ids[i], cerr)
		}
		v := c.Val()
		out[i] = readState(str(v[0]), str(v[1]), str(v[2]))
	}
	if err != nil && !isWrongType(err) {
		return nil, fmt.Errorf("cannot load %d alarm states: %w", len(ids), err)
	}
	return out, nil
}
