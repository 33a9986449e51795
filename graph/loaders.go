package graph

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graph-gophers/dataloader/v7"

	"github.com/picketline/picketline/db"
)

// loaderWait is how long a loader gathers keys before one batched query.
// gqlgen resolves list elements concurrently, so a short wait is enough.
const loaderWait = 500 * time.Microsecond

// Loaders batch the per-item lookups of one request into one query per
// field. They are made per request because what they return depends on the
// actor.
type Loaders struct {
	actor db.Actor
	// signedIn is the member a sign-in mutation of this request started a
	// session for: the payload's member is theirs to see in full, though
	// the request itself carried no token.
	signedIn atomic.Pointer[string]

	Members        *dataloader.Loader[string, *db.Member]
	JobActions     *dataloader.Loader[string, *db.JobAction]
	PicketLines    *dataloader.Loader[string, *db.PicketLine]
	Shifts         *dataloader.Loader[string, *db.Shift]
	MySignups      *dataloader.Loader[string, *db.Signup]
	Signups        *dataloader.Loader[string, *db.Signup]
	Announcements  *dataloader.Loader[string, *db.Announcement]
	AddressVisible *dataloader.Loader[string, bool]
	ContactVisible *dataloader.Loader[string, db.ContactVisibility]
}

func newLoader[V any](cache bool, fetch func(ctx context.Context, ids []string) (map[string]V, error)) *dataloader.Loader[string, V] {
	batch := func(ctx context.Context, keys []string) []*dataloader.Result[V] {
		found, err := fetch(ctx, keys)
		out := make([]*dataloader.Result[V], len(keys))
		for i, k := range keys {
			if err != nil {
				out[i] = &dataloader.Result[V]{Error: err}
			} else {
				out[i] = &dataloader.Result[V]{Data: found[k]}
			}
		}
		return out
	}
	opts := []dataloader.Option[string, V]{dataloader.WithWait[string, V](loaderWait), dataloader.WithBatchCapacity[string, V](500)}
	if !cache {
		opts = append(opts, dataloader.WithCache[string, V](&dataloader.NoCache[string, V]{}))
	}
	return dataloader.NewBatchedLoader(batch, opts...)
}

// NewLoaders makes the loaders for one actor's request. A websocket
// connection lives for hours and resolves every event afresh, so its
// loaders batch but do not cache.
func NewLoaders(store *db.Store, a db.Actor, cache bool) *Loaders {
	return &Loaders{
		actor: a,
		Members: newLoader(cache, func(ctx context.Context, ids []string) (map[string]*db.Member, error) {
			return store.MembersByIDs(ctx, a, ids)
		}),
		JobActions: newLoader(cache, func(ctx context.Context, ids []string) (map[string]*db.JobAction, error) {
			return store.JobActionsByIDs(ctx, a, ids)
		}),
		PicketLines: newLoader(cache, func(ctx context.Context, ids []string) (map[string]*db.PicketLine, error) {
			return store.PicketLinesByIDs(ctx, a, ids)
		}),
		Shifts: newLoader(cache, func(ctx context.Context, ids []string) (map[string]*db.Shift, error) {
			return store.ShiftsByIDs(ctx, a, ids)
		}),
		MySignups: newLoader(cache, func(ctx context.Context, ids []string) (map[string]*db.Signup, error) {
			return store.MySignups(ctx, a, ids)
		}),
		Signups: newLoader(cache, func(ctx context.Context, ids []string) (map[string]*db.Signup, error) {
			return store.SignupsByIDs(ctx, a, ids)
		}),
		Announcements: newLoader(cache, func(ctx context.Context, ids []string) (map[string]*db.Announcement, error) {
			return store.AnnouncementsByIDs(ctx, a, ids)
		}),
		AddressVisible: newLoader(cache, func(ctx context.Context, ids []string) (map[string]bool, error) {
			return store.AddressVisibility(ctx, a, ids)
		}),
		ContactVisible: newLoader(cache, func(ctx context.Context, ids []string) (map[string]db.ContactVisibility, error) {
			return store.ContactVisibilities(ctx, a, ids)
		}),
	}
}

type loadersKey struct{}

// LoaderMiddleware gives each request its loaders. It runs after
// authentication, since loaders answer for the request's actor.
func LoaderMiddleware(store *db.Store, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), loadersKey{}, NewLoaders(store, db.ActorFrom(r.Context()), true))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// lazyLoaders makes an operation's loaders when it first needs them.
type lazyLoaders struct {
	once  sync.Once
	build func() *Loaders
	l     *Loaders
}

// WithLoaders returns ctx carrying loaders that build creates on first use,
// for transports that do not pass through LoaderMiddleware per operation.
// A websocket subscription that waits hours for its first event holds no
// loaders meanwhile.
func WithLoaders(ctx context.Context, build func() *Loaders) context.Context {
	return context.WithValue(ctx, loadersKey{}, &lazyLoaders{build: build})
}

func loaders(ctx context.Context) *Loaders {
	switch l := ctx.Value(loadersKey{}).(type) {
	case *lazyLoaders:
		l.once.Do(func() { l.l = l.build() })
		return l.l
	default:
		return l.(*Loaders)
	}
}

// load fetches one item through a loader; a missing item is the zero value.
func load[V any](ctx context.Context, l *dataloader.Loader[string, V], id string) (V, error) {
	return l.Load(ctx, id)()
}

// self reports whether memberID is the member this request acts for.
func (l *Loaders) self(memberID string) bool {
	if memberID == l.actor.MemberID {
		return true
	}
	id := l.signedIn.Load()
	return id != nil && *id == memberID
}

// contactVisibility says which of a member's contact details the request
// may see.
func contactVisibility(ctx context.Context, memberID string) (db.ContactVisibility, error) {
	l := loaders(ctx)
	if l.self(memberID) {
		return db.ContactVisibility{Email: true, Phone: true}, nil
	}
	return load(ctx, l.ContactVisible, memberID)
}

// loadOptional loads the item an optional id names, or nil.
func loadOptional[V any](ctx context.Context, l *dataloader.Loader[string, *V], id *string) (*V, error) {
	if id == nil {
		return nil, nil
	}
	return load(ctx, l, *id)
}
