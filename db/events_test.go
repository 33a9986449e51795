package db_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/picketline/picketline/db"
)

func TestLineEventsAfterPagesEachLineInOneRead(t *testing.T) {
	b := setup(t)
	busy, quiet := b.Line(), b.Line()
	sh := b.ShiftOn(busy, 24*time.Hour, 10)
	for capacity := 11; capacity <= 14; capacity++ {
		if _, err := b.Store.UpdateShift(b.Ctx, b.Staff, db.ShiftUpdate{ID: sh.ID, Capacity: &capacity}); err != nil {
			t.Fatal(err)
		}
	}
	b.ShiftOn(quiet, 24*time.Hour, 10)
	lines, err := b.Store.PicketLinesByIDs(b.Ctx, b.Staff, []string{busy.ID, quiet.ID})
	if err != nil {
		t.Fatal(err)
	}
	busyLatest, quietLatest := lines[busy.ID].EventSeq, lines[quiet.ID].EventSeq
	// The busy line is asked for in capitals, as a client may write it.
	busyKey, unknown := strings.ToUpper(busy.ID), "00000000-0000-0000-0000-000000000001"

	reads := []db.LineRead{{LineID: busyKey, After: 1}, {LineID: busyKey, After: busyLatest - 1}, {LineID: quiet.ID, After: quietLatest}, {LineID: unknown}}
	pages, err := b.Store.LineEventsAfter(b.Ctx, db.System, reads, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != 3 {
		t.Fatalf("got %d pages, want the 3 reads of lines that exist", len(pages))
	}
	seqsOf := func(r db.LineRead) []int64 {
		t.Helper()
		page, ok := pages[r]
		if !ok {
			t.Fatalf("no page for %+v (keyed as asked): %v", r, pages)
		}
		if page.Latest != busyLatest {
			t.Fatalf("%+v: latest %d, want %d", r, page.Latest, busyLatest)
		}
		var seqs []int64
		for _, e := range page.Events {
			if e.PicketLineID != busyKey {
				t.Fatalf("event of line %q in the page of %q", e.PicketLineID, busyKey)
			}
			seqs = append(seqs, e.Seq)
		}
		return seqs
	}
	// One line read from two points: a page each, at most 2 events long.
	if diff := cmp.Diff([]int64{2, 3}, seqsOf(reads[0])); diff != "" {
		t.Fatalf("busy line after 1: seqs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{busyLatest}, seqsOf(reads[1])); diff != "" {
		t.Fatalf("busy line after %d: seqs (-want +got):\n%s", busyLatest-1, diff)
	}
	if page := pages[reads[2]]; len(page.Events) != 0 || page.Latest != quietLatest {
		t.Fatalf("quiet line: %d events latest %d, want none and latest %d", len(page.Events), page.Latest, quietLatest)
	}
}
