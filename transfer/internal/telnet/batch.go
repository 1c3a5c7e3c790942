package telnet

import (
	"unsafe"

	"github.com/kestrel-mon/kestrel/proto"
)

// Batch is the points parsed from the lines of one read, handed to
// Publish at once. Their strings point into an arena holding copies of the
// lines, their tags into one slice of tags; both are reused once Publish
// returned, without allocating per point.
//
// Reusing the arena is safe because Publish has encoded every point into
// its batches (copying the strings) before it returns nil or a Publisher
// error, and nothing keeps a point after that. Publish returning its
// context's error is the exception (its points may still sit in a batch
// being filled): the arena is then dropped, not reused.
type Batch struct {
	Points []proto.Point
	Now    int64 // unix seconds, when the lines were read
	arena  []byte
	tags   []proto.Tag
	fields []string
}

// mark is the state of a Batch before one line, to take the line back.
type mark struct{ arena, tags, points int }

func (b *Batch) mark() mark { return mark{len(b.arena), len(b.tags), len(b.Points)} }

// rewind drops what was added after m.
func (b *Batch) rewind(m mark) {
	b.arena, b.tags, b.Points = b.arena[:m.arena], b.tags[:m.tags], b.Points[:m.points]
}

// Line copies raw into the arena and returns it as a string that lives as
// long as the batch's points.
func (b *Batch) Line(raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	off := len(b.arena)
	b.arena = append(b.arena, raw...)
	return unsafe.String(&b.arena[off], len(raw))
}

// Bytes returns the size of the lines held.
func (b *Batch) Bytes() int { return len(b.arena) }

// Reset empties the batch once its points are published; keepArena false
// drops the arena instead of reusing it (Publish returned its context's
// error).
func (b *Batch) Reset(keepArena bool) {
	b.Points = b.Points[:0]
	b.tags = b.tags[:0]
	if keepArena {
		b.arena = b.arena[:0]
	} else {
		b.arena = nil
	}
}

// Add appends p (its Tags: from AddTag since TagsStart) and returns it.
func (b *Batch) Add(p proto.Point) *proto.Point {
	b.Points = append(b.Points, p)
	return &b.Points[len(b.Points)-1]
}

// TagsStart returns where the tags of the next point start.
func (b *Batch) TagsStart() int { return len(b.tags) }

// AddTag appends one tag of the point being parsed.
func (b *Batch) AddTag(k, v string) { b.tags = append(b.tags, proto.Tag{Key: k, Value: v}) }

// TakeTag removes the tag at i (from TagsStart on) and returns it.
func (b *Batch) TakeTag(i int) proto.Tag {
	t := b.tags[i]
	b.tags = append(b.tags[:i], b.tags[i+1:]...)
	return t
}

// Tags returns the tags added since start, in the batch's storage.
func (b *Batch) Tags(start int) []proto.Tag { return b.tags[start:len(b.tags):len(b.tags)] }

// Fields splits line at runs of spaces and tabs (and of any control
// character, which a line reaching a Protocol does not hold but for tab),
// into a slice reused by the next call.
func (b *Batch) Fields(line string) []string {
	f := b.fields[:0]
	for i := 0; i < len(line); {
		for i < len(line) && line[i] <= ' ' {
			i++
		}
		start := i
		for i < len(line) && line[i] > ' ' {
			i++
		}
		if i > start {
			f = append(f, line[start:i])
		}
	}
	b.fields = f
	return f
}

// SortTags sorts tags by key in place (insertion sort: a point has a few
// tags, and sort.Slice would allocate). A key given twice with the same
// value is kept once; with different values, dup is the later tag and ok
// is false.
func SortTags(tags []proto.Tag) (sorted []proto.Tag, dup proto.Tag, ok bool) {
	for i := 1; i < len(tags); i++ {
		t := tags[i]
		j := i
		for j > 0 && tags[j-1].Key > t.Key {
			tags[j] = tags[j-1]
			j--
		}
		tags[j] = t
	}
	out := tags[:0]
	for i := range tags {
		if len(out) > 0 && out[len(out)-1].Key == tags[i].Key {
			if out[len(out)-1].Value != tags[i].Value {
				return tags, tags[i], false
			}
			continue
		}
		out = append(out, tags[i])
	}
	return out, proto.Tag{}, true
}

// binary reports whether line holds a byte no text line has: a C0
// control other than tab (NUL, escape, ...). Such a client is not
// speaking a line protocol and its connection is closed.
func binary(line []byte) bool {
	for _, c := range line {
		if c < 0x20 && c != '\t' {
			return true
		}
	}
	return false
}
