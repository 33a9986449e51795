package realtime

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

// keepAliveServer accepts websockets with u, hands each connection to
// accepted (after calling prepare on it, when set), and reads each until it
// fails, then reports on closed the peer number it was dialled with.
func keepAliveServer(t *testing.T, u *Upgrader, prepare func(*Conn)) (url string, accepted chan *Conn, closed chan int) {
	t.Helper()
	accepted, closed = make(chan *Conn, keepAliveSlots), make(chan int, keepAliveSlots)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, _ := strconv.Atoi(r.URL.Query().Get("peer"))
		c, err := u.Accept(w, r, transport.WebsocketAcceptOptions{Subprotocols: []string{Subprotocol}})
		if err != nil {
			return
		}
		conn := c.(*Conn)
		if prepare != nil {
			prepare(conn)
		}
		accepted <- conn
		for {
			if _, _, err := c.NextReader(); err != nil {
				closed <- peer
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http"), accepted, closed
}

// dial connects peer number peer and waits for the server to have
// accepted it.
func dial(t *testing.T, url string, peer int, accepted <-chan *Conn) *websocket.Conn {
	t.Helper()
	ws, _, err := (&websocket.Dialer{Subprotocols: []string{Subprotocol}}).Dial(url+"?peer="+strconv.Itoa(peer), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatalf("peer %d was not accepted", peer)
	}
	return ws
}

// readAll reads ws until it fails, and reports the error on the channel
// it returns.
func readAll(ws *websocket.Conn) <-chan error {
	failed := make(chan error, 1)
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				failed <- err
				return
			}
		}
	}()
	return failed
}

func TestKeepAlivePingsAndClosesSilentPeers(t *testing.T) {
	t.Parallel()
	// The pings run on the clock, which the test moves one keep-alive slot
	// at a time. The read deadline that closes a silent peer is a socket
	// deadline, on the wall clock: two intervals after it last answered.
	const interval = 500 * time.Millisecond
	clock := dbtest.NewClock(dbtest.Epoch)
	u := &Upgrader{InitTimeout: 24 * time.Hour, PingInterval: interval, MaxSubscriptions: 1, MaxMessageBytes: 1 << 10, Conns: NewConns(clock)}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go u.Conns.KeepAlive(ctx, interval)
	url, accepted, closed := keepAliveServer(t, u, nil)
	// A peer in every slot, so that every tick pings one. The last one,
	// connected after all the others, never answers.
	silent := keepAliveSlots - 1
	pinged := make(chan int, keepAliveSlots)
	for peer := range keepAliveSlots {
		ws := dial(t, url, peer, accepted)
		ws.SetPingHandler(func(data string) error {
			defer func() { pinged <- peer }()
			if peer == silent {
				return nil
			}
			return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		})
		readAll(ws)
	}
	// The keep-alive ticker and each connection's init timeout.
	if err := clock.BlockUntilContext(ctx, 1+keepAliveSlots); err != nil {
		t.Fatal(err)
	}
	var order, want []int
	ticks, cut := 0, false
	tick := func() {
		t.Helper()
		slot := ticks % keepAliveSlots
		ticks++
		clock.Advance(interval / keepAliveSlots)
		if cut && slot == silent {
			// Closed, it left the registry: its slot pings nobody now.
			return
		}
		want = append(want, slot)
		select {
		case peer := <-pinged:
			order = append(order, peer)
		case <-time.After(10 * time.Second):
			t.Fatalf("tick %d pinged nobody", ticks)
		}
	}
	for !cut {
		tick()
		select {
		case peer := <-closed:
			if peer != silent {
				t.Fatalf("peer %d, which answers every ping, was closed", peer)
			}
			cut = true
		default:
		}
	}
	if len(order) < keepAliveSlots {
		t.Fatalf("the silent peer was closed after %d ticks, before it was ever pinged", len(order))
	}
	// The answering peers connected before the silent one, so their first
	// read deadlines have passed as well: their answers pushed them out.
	// Each is pinged once more, and stays.
	for range keepAliveSlots {
		tick()
	}
	select {
	case peer := <-closed:
		t.Fatalf("peer %d, which answers every ping, was closed", peer)
	default:
	}
	// Each tick pinged the next slot: every peer once per interval, the
	// pings spread evenly over it.
	if diff := cmp.Diff(want, order); diff != "" {
		t.Fatalf("peers pinged, tick by tick (-want +got):\n%s", diff)
	}
}

// closeCode returns the close code the server ended ws with.
func closeCode(t *testing.T, failed <-chan error) int {
	t.Helper()
	select {
	case err := <-failed:
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("read failed with %v, not a close frame", err)
		}
		return ce.Code
	case <-time.After(10 * time.Second):
		t.Fatal("the connection is still open")
		return 0
	}
}

func TestLateInitAndExpiredTokenCloseOnTheClock(t *testing.T) {
	t.Parallel()
	const initTimeout, tokenLife = 5 * time.Second, 15 * time.Minute
	clock := dbtest.NewClock(dbtest.Epoch)
	u := &Upgrader{InitTimeout: initTimeout, PingInterval: time.Hour, MaxSubscriptions: 1, MaxMessageBytes: 1 << 10, Conns: NewConns(clock)}

	t.Run("no connection_init", func(t *testing.T) {
		url, accepted, _ := keepAliveServer(t, u, nil)
		failed := readAll(dial(t, url, 0, accepted))
		clock.Advance(initTimeout)
		if code := closeCode(t, failed); code != CloseInitTimeout {
			t.Fatalf("closed with %d, want %d", code, CloseInitTimeout)
		}
	})
	t.Run("token expires", func(t *testing.T) {
		url, accepted, _ := keepAliveServer(t, u, func(c *Conn) {
			c.Authenticated(db.Actor{SessionID: "session"}, clock.Now().Add(tokenLife))
		})
		failed := readAll(dial(t, url, 0, accepted))
		clock.Advance(tokenLife)
		if code := closeCode(t, failed); code != CloseForbidden {
			t.Fatalf("closed with %d, want %d", code, CloseForbidden)
		}
	})
}
