package realtime

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"
)

// keepAliveServer accepts websockets with u and reads each until it fails,
// reporting on closed when it does.
func keepAliveServer(t *testing.T, u *Upgrader) (url string, closed chan struct{}) {
	t.Helper()
	closed = make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := u.Accept(w, r, transport.WebsocketAcceptOptions{Subprotocols: []string{Subprotocol}})
		if err != nil {
			return
		}
		for {
			if _, _, err := c.NextReader(); err != nil {
				closed <- struct{}{}
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http"), closed
}

func TestKeepAlivePingsAndClosesSilentPeers(t *testing.T) {
	t.Parallel()
	const interval = 300 * time.Millisecond
	u := &Upgrader{InitTimeout: time.Minute, PingInterval: interval, MaxSubscriptions: 1, MaxMessageBytes: 1 << 10, Conns: NewConns()}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go u.Conns.KeepAlive(ctx, interval)
	url, closed := keepAliveServer(t, u)
	dial := func(answer bool) (*websocket.Conn, *atomic.Int32) {
		t.Helper()
		ws, _, err := (&websocket.Dialer{Subprotocols: []string{Subprotocol}}).Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		pings := &atomic.Int32{}
		ws.SetPingHandler(func(data string) error {
			pings.Add(1)
			if !answer {
				return nil
			}
			return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		})
		go func() {
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
		return ws, pings
	}
	_, answering := dial(true)
	_, silent := dial(false)
	// The silent peer is cut off after two intervals without an answer.
	select {
	case <-closed:
	case <-time.After(5 * interval):
		t.Fatal("a peer that answers no pings is still connected")
	}
	if silent.Load() == 0 {
		t.Fatal("the silent peer was never pinged")
	}
	// The answering peer stays, pinged once per interval.
	time.Sleep(3 * interval)
	select {
	case <-closed:
		t.Fatal("a peer answering every ping was closed")
	default:
	}
	if n := answering.Load(); n < 3 || n > 8 {
		t.Fatalf("%d pings in about %v at one per %v", n, 5*interval, interval)
	}
}
