package push

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeFCM speaks the FCM v1 messages:send API: it records what the real SDK
// sends and answers as the test scripts it.
type fakeFCM struct {
	*httptest.Server
	mu   sync.Mutex
	got  []fcmMessage
	plan func(m fcmMessage) (status int, body string, header http.Header)
	// arrived is closed, and replaced, whenever a message arrives.
	arrived chan struct{}
}

// fcmMessage is the part of a v1 send request the tests look at.
type fcmMessage struct {
	Token        string            `json:"token"`
	Data         map[string]string `json:"data"`
	Notification struct {
		Title, Body string
	} `json:"notification"`
	Android struct {
		CollapseKey string `json:"collapse_key"`
		TTL         string `json:"ttl"`
	} `json:"android"`
	APNS struct {
		Headers map[string]string `json:"headers"`
	} `json:"apns"`
}

func newFakeFCM(t *testing.T) *fakeFCM {
	f := &fakeFCM{arrived: make(chan struct{})}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/messages:send") {
			http.NotFound(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Message fcmMessage `json:"message"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.got = append(f.got, req.Message)
		close(f.arrived)
		f.arrived = make(chan struct{})
		plan := f.plan
		f.mu.Unlock()
		status, answer, header := http.StatusOK, `{"name":"projects/test/messages/1"}`, http.Header(nil)
		if plan != nil {
			status, answer, header = plan(req.Message)
		}
		for k, v := range header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeFCM) received() []fcmMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fcmMessage(nil), f.got...)
}

// waitFor waits until FCM has received n messages, and returns them.
func (f *fakeFCM) waitFor(t *testing.T, n int) []fcmMessage {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		f.mu.Lock()
		got, arrived := len(f.got), f.arrived
		f.mu.Unlock()
		if got >= n {
			return f.received()
		}
		select {
		case <-arrived:
		case <-deadline:
			t.Fatalf("FCM received %d of %d messages", got, n)
		}
	}
}

func (f *fakeFCM) setPlan(plan func(fcmMessage) (int, string, http.Header)) {
	f.mu.Lock()
	f.plan = plan
	f.mu.Unlock()
}

// fcmError is an FCM v1 error body with an FCM error code.
func fcmError(status int, grpcStatus, fcmCode string) string {
	return `{"error":{"code":` + strconv.Itoa(status) + `,"message":"scripted","status":"` + grpcStatus + `","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"` + fcmCode + `"}]}}`
}
