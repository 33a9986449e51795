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

func shiftConnection(page *db.ShiftPage) *model.ShiftConnection {
	conn := &model.ShiftConnection{
		Edges:    make([]*model.ShiftEdge, len(page.Shifts)),
		PageInfo: &model.PageInfo{HasNextPage: page.HasNextPage},
	}
	for i, sh := range page.Shifts {
		conn.Edges[i] = &model.ShiftEdge{Cursor: db.ShiftCursor(sh), Node: sh}
	}
	if n := len(conn.Edges); n > 0 {
		conn.PageInfo.EndCursor = &conn.Edges[n-1].Cursor
	}
	return conn
}

// quietHour shows one end of the quiet hours, or nothing when there are none.
func quietHour(p *db.NotificationPreferences, minutes int) *string {
	if p.QuietStart == p.QuietEnd {
		return nil
	}
	v := db.FormatClock(minutes)
	return &v
}
