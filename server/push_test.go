package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/picketline/picketline/db"
)

// fcmInbox is a fake FCM v1 endpoint recording what the server sends.
type fcmInbox struct {
	*httptest.Server
	mu  sync.Mutex
	got []struct {
		Token string            `json:"token"`
		Data  map[string]string `json:"data"`
	}
}

func newFCMInbox(t *testing.T) *fcmInbox {
	f := &fcmInbox{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Message struct {
				Token string            `json:"token"`
				Data  map[string]string `json:"data"`
			} `json:"message"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.got = append(f.got, req.Message)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"name":"projects/test/messages/1"}`)
	}))
	t.Cleanup(f.Close)
	return f
}

// waitFor returns the messages to token once n have arrived.
func (f *fcmInbox) waitFor(t *testing.T, token string, n int) []map[string]string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var out []map[string]string
		f.mu.Lock()
		for _, m := range f.got {
			if m.Token == token {
				out = append(out, m.Data)
			}
		}
		f.mu.Unlock()
		if len(out) >= n {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s got %d messages, want %d", token, len(out), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (f *fcmInbox) count(token string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, m := range f.got {
		if m.Token == token {
			n++
		}
	}
	return n
}

func TestPushNotificationsEndToEnd(t *testing.T) {
	t.Parallel()
	fcm := newFCMInbox(t)
	s := startServer(t, func(env map[string]string) {
		env["FIREBASE_PROJECT_ID"] = "picketline-test"
		env["FCM_ENDPOINT"] = fcm.URL + "/v1"
	})
	l := s.liveLine(t, 1)
	holder, waiting, bystander := s.addMember(t, db.RoleMember), s.addMember(t, db.RoleMember), s.addMember(t, db.RoleMember)
	register := func(m *member, token string) {
		t.Helper()
		var out struct {
			RegisterDevice struct{ Token, Platform string } `json:"registerDevice"`
		}
		s.do(t, m.Token, `mutation($t: String!) { registerDevice(token: $t, platform: ANDROID) { token platform } }`, map[string]any{"t": token}, &out)
		if out.RegisterDevice.Token != token || out.RegisterDevice.Platform != "ANDROID" {
			t.Fatalf("registered %+v", out.RegisterDevice)
		}
	}
	register(holder, "holder-phone")
	register(waiting, "waiting-phone")
	register(bystander, "bystander-phone")

	var devices struct {
		MyDevices []struct{ Token string } `json:"myDevices"`
	}
	s.do(t, waiting.Token, `{ myDevices { token } }`, nil, &devices)
	if len(devices.MyDevices) != 1 || devices.MyDevices[0].Token != "waiting-phone" {
		t.Fatalf("myDevices %+v", devices.MyDevices)
	}

	held := s.signUpOverHTTP(t, holder.Token, l.shiftID)
	s.signUpOverHTTP(t, waiting.Token, l.shiftID)
	s.do(t, holder.Token, `mutation($id: ID!) { cancelSignup(signupId: $id) { id } }`, map[string]any{"id": held}, nil)
	if got := fcm.waitFor(t, "waiting-phone", 1); got[0]["kind"] != "WAITLIST_PROMOTED" || got[0]["shift_id"] != l.shiftID {
		t.Fatalf("promotion message %v", got[0])
	}

	// Moving the shift tells the member holding it.
	later := time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339)
	end := time.Now().Add(75 * time.Hour).UTC().Format(time.RFC3339)
	s.do(t, l.captain.Token, `mutation($id: ID!, $s: Time, $e: Time) { updateShift(input: {id: $id, startsAt: $s, endsAt: $e}) { id } }`,
		map[string]any{"id": l.shiftID, "s": later, "e": end}, nil)
	if got := fcm.waitFor(t, "waiting-phone", 2); got[1]["kind"] != "SHIFT_CHANGED" {
		t.Fatalf("move message %v", got[1])
	}

	// A coverage call reaches the free members with devices only.
	var cov struct {
		CallForCoverage int `json:"callForCoverage"`
	}
	start := time.Now().Add(96 * time.Hour)
	store, _ := s.direct(t)
	sh, err := store.CreateShift(t.Context(), l.coordinator.Actor(), db.NewShift{PicketLineID: l.lineID, StartsAt: start, EndsAt: start.Add(2 * time.Hour), Capacity: 5})
	if err != nil {
		t.Fatal(err)
	}
	s.do(t, l.captain.Token, `mutation($s: ID!) { callForCoverage(shiftId: $s, message: "Two more at the north gate please") }`, map[string]any{"s": sh.ID}, &cov)
	if cov.CallForCoverage != 3 {
		t.Fatalf("coverage call reached %d members, want 3", cov.CallForCoverage)
	}
	if got := fcm.waitFor(t, "bystander-phone", 1); got[0]["kind"] != "COVERAGE_CALL" {
		t.Fatalf("coverage message %v", got[0])
	}
	s.fails(t, l.captain.Token, `mutation($s: ID!) { callForCoverage(shiftId: $s) }`, map[string]any{"s": sh.ID}, "RATE_LIMITED")
	s.fails(t, bystander.Token, `mutation($s: ID!) { callForCoverage(shiftId: $s) }`, map[string]any{"s": sh.ID}, "FORBIDDEN")

	// An urgent announcement reaches those taking part on the line, not
	// its author nor members elsewhere.
	register(l.captain, "captain-phone")
	var ann struct{ PostAnnouncement struct{ ID string } }
	s.do(t, l.captain.Token, `mutation($l: ID!) { postAnnouncement(input: {picketLineId: $l, body: "Everyone to the north gate", urgent: true}) { id } }`,
		map[string]any{"l": l.lineID}, &ann)
	if got := fcm.waitFor(t, "waiting-phone", 4); got[3]["kind"] != "URGENT_ANNOUNCEMENT" || got[3]["announcement_id"] != ann.PostAnnouncement.ID {
		t.Fatalf("urgent announcement message %v", got[3])
	}

	// Cancelling the shift tells its member.
	s.do(t, l.captain.Token, `mutation($id: ID!) { cancelShift(id: $id) { id } }`, map[string]any{"id": l.shiftID}, nil)
	// (Its third message was the coverage call: it is free then too.)
	if got := fcm.waitFor(t, "waiting-phone", 5); got[4]["kind"] != "SHIFT_CANCELLED" {
		t.Fatalf("cancel message %v", got[4])
	}
	if n := fcm.count("holder-phone"); n != 1 {
		t.Fatalf("the holder, who left the shift, got %d messages, want only the coverage call", n)
	}
	if n := fcm.count("bystander-phone") + fcm.count("captain-phone"); n != 1 {
		t.Fatalf("the bystander and the captain got %d messages, want only the bystander's coverage call", n)
	}
}

func TestPreferencesAndDeviceLifecycle(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	m := s.addMember(t, db.RoleMember)
	var prefs struct {
		P struct {
			Enabled              []string
			QuietStart, QuietEnd *string
			TimeZone             string
		} `json:"updateNotificationPreferences"`
	}
	s.do(t, m.Token, `mutation { updateNotificationPreferences(input: {enabled: [SHIFT_REMINDER], quietStart: "22:00", quietEnd: "07:00", timeZone: "America/Edmonton"}) { enabled quietStart quietEnd timeZone } }`, nil, &prefs)
	if len(prefs.P.Enabled) != 2 || *prefs.P.QuietStart != "22:00" || *prefs.P.QuietEnd != "07:00" || prefs.P.TimeZone != "America/Edmonton" {
		t.Fatalf("preferences %+v (urgent announcements stay on)", prefs.P)
	}
	s.fails(t, m.Token, `mutation { updateNotificationPreferences(input: {timeZone: "Mars/Olympus"}) { timeZone } }`, nil, "BAD_USER_INPUT")
	s.fails(t, m.Token, `mutation { updateNotificationPreferences(input: {quietStart: "25:00"}) { timeZone } }`, nil, "BAD_USER_INPUT")

	// A token registered by another member moves to them.
	other := s.addMember(t, db.RoleMember)
	s.do(t, m.Token, `mutation { registerDevice(token: "shared", platform: IOS) { token } }`, nil, nil)
	s.do(t, other.Token, `mutation { registerDevice(token: "shared", platform: IOS) { token } }`, nil, nil)
	var mine struct {
		MyDevices []struct{ Token string } `json:"myDevices"`
	}
	s.do(t, m.Token, `{ myDevices { token } }`, nil, &mine)
	if len(mine.MyDevices) != 0 {
		t.Fatalf("the first member still has %+v", mine.MyDevices)
	}
	var removed struct {
		UnregisterDevice bool `json:"unregisterDevice"`
	}
	s.do(t, m.Token, `mutation { unregisterDevice(token: "shared") }`, nil, &removed)
	if removed.UnregisterDevice {
		t.Fatal("a member unregistered another member's device")
	}

	// Logging out forgets the device the session registered.
	s.do(t, other.Token, `mutation { logout }`, nil, nil)
	store, _ := s.direct(t)
	left, err := store.MyDevices(t.Context(), other.Actor())
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("devices after logout: %+v", left)
	}
}
