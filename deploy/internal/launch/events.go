package launch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/redis/go-redis/v9"
)

// FormatEvent returns the one-line form of an alarm event:
// time (the event's point time, local), status, priority, endpoint,
// metric (with the series tags when the rule has none), value, and the
// event id and step.
func FormatEvent(e *proto.Event, loc *time.Location) string {
	if loc == nil {
		loc = time.Local
	}
	ts := time.Unix(e.EventTime, 0).In(loc).Format("2006-01-02 15:04:05")
	maxStep := 0
	note := ""
	switch {
	case e.Strategy != nil:
		maxStep, note = e.Strategy.MaxStep, e.Strategy.Note
	case e.Expression != nil:
		maxStep, note = e.Expression.MaxStep, e.Expression.Note
	}
	line := fmt.Sprintf("%s  %-7s  p%d  %s  %s  %s  (%s, step %d/%d)",
		ts, e.Status, e.Priority(), e.Endpoint, e.Metric(),
		strconv.FormatFloat(e.LeftValue, 'g', -1, 64), e.ID, e.CurrentStep, maxStep)
	if note != "" {
		line += "  " + strconv.Quote(note)
	}
	return line
}

// FormatStreamMessage formats one kestrel:events entry: its "event" field
// decoded as proto.Event.
func FormatStreamMessage(values map[string]any, loc *time.Location) (string, error) {
	raw, ok := values["event"].(string)
	if !ok {
		return "", errors.New("stream entry has no event field")
	}
	var e proto.Event
	if err := json.Unmarshal([]byte(raw), &e); err != nil {
		return "", fmt.Errorf("stream entry event field: %w", err)
	}
	return FormatEvent(&e, loc), nil
}

// WatchEvents prints every event added to the stream after it starts,
// one line each, until ctx ends. It XREADs from "$" and then from the
// last id it saw, so nothing added between two reads is missed.
func WatchEvents(ctx context.Context, rdb *redis.Client, stream string, out io.Writer, log *slog.Logger) {
	last := "$"
	failing := false
	for ctx.Err() == nil {
		res, err := rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{stream, last}, Block: time.Second, Count: 100}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				log.Warn("cannot read alarm events; retrying", "stream", stream, "err", err)
				failing = true
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		failing = false
		for _, s := range res {
			for _, m := range s.Messages {
				last = m.ID
				line, err := FormatStreamMessage(m.Values, nil)
				if err != nil {
					log.Warn("undecodable alarm event", "id", m.ID, "err", err)
					continue
				}
				fmt.Fprintln(out, "event  "+line)
			}
		}
	}
}
