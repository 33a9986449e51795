package db_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/picketline/picketline/db"
)

func TestLineEventsAfterPagesEachLineInOneRead(t *testing.T) {
	b := setup(t)
	busy, quiet := b.line(), b.line()
	sh := b.shiftOn(busy, 24*time.Hour, 10)
	for capacity := 11; capacity <= 14; capacity++ {
		if _, err := b.store.UpdateShift(b.ctx, b.staff, db.ShiftUpdate{ID: sh.ID, Capacity: &capacity}); err != nil {
			t.Fatal(err)
		}
	}
	b.shiftOn(quiet, 24*time.Hour, 10)
	lines, err := b.store.PicketLinesByIDs(b.ctx, b.staff, []string{busy.ID, quiet.ID})
	if err != nil {
		t.Fatal(err)
	}
	busyLatest, quietLatest := lines[busy.ID].EventSeq, lines[quiet.ID].EventSeq
	// The busy line is asked for in capitals, as a client may write it.
	busyKey, unknown := strings.ToUpper(busy.ID), "00000000-0000-0000-0000-000000000001"

	pages, err := b.store.LineEventsAfter(b.ctx, map[string]int64{busyKey: 1, quiet.ID: quietLatest, unknown: 0}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != 2 {
		t.Fatalf("got pages for %d lines, want the 2 that exist", len(pages))
	}
	page, ok := pages[busyKey]
	if !ok {
		t.Fatalf("no page under the id as it was asked for: %v", pages)
	}
	var seqs []int64
	for _, e := range page.Events {
		if e.PicketLineID != busyKey {
			t.Fatalf("event of line %q in the page of %q", e.PicketLineID, busyKey)
		}
		seqs = append(seqs, e.Seq)
	}
	if want := []int64{2, 3}; !slices.Equal(seqs, want) || page.Latest != busyLatest {
		t.Fatalf("busy line: seqs %v latest %d, want seqs %v latest %d", seqs, page.Latest, want, busyLatest)
	}
	if page := pages[quiet.ID]; len(page.Events) != 0 || page.Latest != quietLatest {
		t.Fatalf("quiet line: %d events latest %d, want none and latest %d", len(page.Events), page.Latest, quietLatest)
	}
}
