package main

import (
	"context"
	"sync/atomic"
	"time"
)

// eventWriter commits line events straight in SQL, batched, with the
// wake-up the server's own use-cases would send (pg_notify in the same
// transaction, delivered at commit). The bench must be the lines' only
// writer: it predicts each event's sequence number.
type eventWriter struct {
	b      *bench
	lines  []string
	shifts []string
	base   []int64
	// next[l] is how many events line l has had from the writer.
	next []int64
	// sentAt[l][k] and doneAt[l][k] are when the statement making event
	// base+k of line l was sent and answered, in Unix nanoseconds.
	sentAt, doneAt [][]atomic.Int64
}

const eventBatchSQL = `
WITH c AS (SELECT * FROM unnest($1::uuid[], $2::uuid[]) AS c(line, shift) ORDER BY line),
upd AS (UPDATE picket_lines p SET event_seq = p.event_seq + 1 FROM c WHERE p.id = c.line RETURNING p.id, p.event_seq, c.shift),
ins AS (INSERT INTO line_events (picket_line_id, seq, kind, shift_id, occurred_at)
        SELECT id, event_seq, 'SHIFT_CHANGED', shift, now() FROM upd RETURNING picket_line_id)
SELECT count(pg_notify('picketline_events', 'bench|l:' || picket_line_id::text)) FROM ins`

func newEventWriter(b *bench, ctx context.Context, lines, shifts []string, perLine int) (*eventWriter, error) {
	base, err := b.lineSeqs(ctx, lines)
	if err != nil {
		return nil, err
	}
	w := &eventWriter{b: b, lines: lines, shifts: shifts, base: base, next: make([]int64, len(lines)),
		sentAt: make([][]atomic.Int64, len(lines)), doneAt: make([][]atomic.Int64, len(lines))}
	for l := range lines {
		w.sentAt[l] = make([]atomic.Int64, perLine+2)
		w.doneAt[l] = make([]atomic.Int64, perLine+2)
	}
	return w, nil
}

// write makes one event on each of the lines idx in one statement.
func (w *eventWriter) write(ctx context.Context, idx []int) error {
	ls, ss := make([]string, len(idx)), make([]string, len(idx))
	now := time.Now().UnixNano()
	for i, l := range idx {
		ls[i], ss[i] = w.lines[l], w.shifts[l]
		w.next[l]++
		if k := w.next[l]; k < int64(len(w.sentAt[l])) {
			w.sentAt[l][k].Store(now)
		}
	}
	var n int64
	if err := w.b.pool.QueryRow(ctx, eventBatchSQL, ls, ss).Scan(&n); err != nil {
		return err
	}
	done := time.Now().UnixNano()
	for _, l := range idx {
		if k := w.next[l]; k < int64(len(w.doneAt[l])) {
			w.doneAt[l][k].Store(done)
		}
	}
	return nil
}
