package graph

import (
	"context"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/graph/model"
)

func (r *Resolver) authPayload(ctx context.Context, sess *db.Session) (*model.AuthPayload, error) {
	loaders(ctx).signedIn.Store(&sess.Member.ID)
	token, exp, err := r.Tokens.Issue(sess.Member.ID, sess.ID)
	if err != nil {
		return nil, err
	}
	return &model.AuthPayload{AccessToken: token, RefreshToken: sess.RefreshToken, ExpiresAt: exp, Member: sess.Member}, nil
}

// pageQuery is the page a connection field's `first` and `after` ask for.
func pageQuery(first *int, after *string) db.PageQuery {
	var q db.PageQuery
	if first != nil {
		q.First = *first
	}
	if after != nil {
		q.After = *after
	}
	return q
}

// edgesOf makes a page's edges, each with its item's cursor, and the
// page's info.
func edgesOf[T, E any](page *db.Page[T], cursor func(T) string, edge func(string, T) E) ([]E, *model.PageInfo) {
	edges := make([]E, len(page.Items))
	info := &model.PageInfo{HasNextPage: page.HasNextPage}
	for i, item := range page.Items {
		c := cursor(item)
		edges[i] = edge(c, item)
		if i == len(page.Items)-1 {
			info.EndCursor = &c
		}
	}
	return edges, info
}

func shiftConnection(page *db.Page[*db.Shift]) *model.ShiftConnection {
	edges, info := edgesOf(page, db.ShiftCursor, func(c string, sh *db.Shift) *model.ShiftEdge { return &model.ShiftEdge{Cursor: c, Node: sh} })
	return &model.ShiftConnection{Edges: edges, PageInfo: info}
}

func jobActionConnection(page *db.Page[*db.JobAction]) *model.JobActionConnection {
	edges, info := edgesOf(page, db.JobActionCursor, func(c string, j *db.JobAction) *model.JobActionEdge { return &model.JobActionEdge{Cursor: c, Node: j} })
	return &model.JobActionConnection{Edges: edges, PageInfo: info}
}

func picketLineConnection(page *db.Page[*db.PicketLine]) *model.PicketLineConnection {
	edges, info := edgesOf(page, db.PicketLineCursor, func(c string, l *db.PicketLine) *model.PicketLineEdge {
		return &model.PicketLineEdge{Cursor: c, Node: l}
	})
	return &model.PicketLineConnection{Edges: edges, PageInfo: info}
}

// signupConnection pages sign-ups with the cursor of the list they come
// from (myShifts and Shift.signups order them differently).
func signupConnection(page *db.Page[*db.Signup], cursor func(*db.Signup) string) *model.SignupConnection {
	edges, info := edgesOf(page, cursor, func(c string, su *db.Signup) *model.SignupEdge { return &model.SignupEdge{Cursor: c, Node: su} })
	return &model.SignupConnection{Edges: edges, PageInfo: info}
}

// quietHour shows one end of the quiet hours, or nothing when there are none.
func quietHour(p *db.NotificationPreferences, minutes int) *string {
	if p.QuietStart == p.QuietEnd {
		return nil
	}
	v := db.FormatClock(minutes)
	return &v
}
