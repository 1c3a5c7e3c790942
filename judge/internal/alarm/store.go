package alarm

import (
	"context"
	"errors"
	"fmt"
	"strconv"

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

// casScript compares the stored (status, currentStep, eventTime) of
// KEYS[1] with ARGV[1..3] (status "" = no state) and, when equal, writes
// the new state, the active set, the event list and the stream. Otherwise
// it returns the stored state so the caller can decide again.
//
// KEYS: alarm hash, active zset, event list, stream.
// ARGV: expStatus expStep expTime newStatus newStep newTime priority
//
//	eventJSON listLen streamMaxLen id endpoint
const casScript = `
local cur = redis.call('HMGET', KEYS[1], 'status', 'currentStep', 'eventTime')
local st = cur[1] or ''
if st ~= ARGV[1] or (st ~= '' and ((cur[2] or '') ~= ARGV[2] or (cur[3] or '') ~= ARGV[3])) then
  return {0, st, cur[2] or '', cur[3] or ''}
end
redis.call('HSET', KEYS[1], 'status', ARGV[4], 'currentStep', ARGV[5], 'eventTime', ARGV[6], 'priority', ARGV[7])
if ARGV[4] == 'PROBLEM' then
  redis.call('ZADD', KEYS[2], ARGV[6], ARGV[11])
else
  redis.call('ZREM', KEYS[2], ARGV[11])
end
local n = tonumber(ARGV[9])
if n > 0 then
  redis.call('LPUSH', KEYS[3], ARGV[8])
  redis.call('LTRIM', KEYS[3], 0, n - 1)
end
local m = tonumber(ARGV[10])
if m > 0 then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', m, '*', 'id', ARGV[11], 'status', ARGV[4], 'priority', ARGV[7], 'endpoint', ARGV[12], 'event', ARGV[8])
end
return {1}
`

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
	m, err := s.rdb.HGetAll(ctx, s.keys.AlarmKey(id)).Result()
	if err != nil {
		return State{}, fmt.Errorf("cannot load alarm %s: %w", id, err)
	}
	st, err := parseState(m["status"], m["currentStep"], m["eventTime"])
	if err != nil {
		return State{}, fmt.Errorf("alarm %s: %w", id, err)
	}
	return st, nil
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
	fromStep, fromTime := "", ""
	if t.From.Status != None {
		fromStep, fromTime = strconv.Itoa(t.From.CurrentStep), strconv.FormatInt(t.From.EventTime, 10)
	}
	res, err := s.script.Run(ctx, s.rdb, keys,
		t.From.Status.String(), fromStep, fromTime,
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
	st, err := parseState(str(res[1]), str(res[2]), str(res[3]))
	if err != nil {
		return false, State{}, fmt.Errorf("alarm %s: %w", t.ID, err)
	}
	return false, st, nil
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
	if err != nil {
		return nil, fmt.Errorf("cannot load %d alarm states: %w", len(ids), err)
	}
	out := make([]State, len(ids))
	str := func(v any) string { s, _ := v.(string); return s }
	for i, c := range cmds {
		v := c.Val()
		st, err := parseState(str(v[0]), str(v[1]), str(v[2]))
		if err != nil {
			return nil, fmt.Errorf("alarm %s: %w", ids[i], err)
		}
		out[i] = st
	}
	return out, nil
}
