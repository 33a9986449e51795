package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/picketline/picketline/db"
)

// fcmMessage is a message as FCM receives it.
type fcmMessage struct {
	Token string            `json:"token"`
	Data  map[string]string `json:"data"`
}

// fcmInbox is a fake FCM v1 endpoint recording what the server sends.
type fcmInbox struct {
	*httptest.Server
	mu  sync.Mutex
	got []fcmMessage
	// changed is closed, and replaced, whenever a message arrives.
	changed chan struct{}
}

func newFCMInbox(t *testing.T) *fcmInbox {
	f := &fcmInbox{changed: make(chan struct{})}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		close(f.changed)
		f.changed = make(chan struct{})
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"name":"projects/test/messages/1"}`)
	}))
	t.Cleanup(f.Close)
	return f
}

// waitFor returns the data of the first message of kind sent to token,
// waiting for it to arrive.
func (f *fcmInbox) waitFor(t *testing.T, token, kind string) map[string]string {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		for _, m := range f.got {
			if m.Token == token && m.Data["kind"] == kind {
				f.mu.Unlock()
				return m.Data
			}
		}
		changed := f.changed
		f.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("%s got no %s message within 10s, only %v", token, kind, f.kinds(token))
		}
	}
}

// kinds lists the kinds of the messages sent to token so far, sorted.
func (f *fcmInbox) kinds(token string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, m := range f.got {
		if m.Token == token {
			out = append(out, m.Data["kind"])
		}
	}
	sort.Strings(out)
	return out
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
	register := func(t *testing.T, m *member, token string) {
		t.Helper()
		var out struct {
			RegisterDevice struct{ Token, Platform string } `json:"registerDevice"`
		}
		s.do(t, m.Token, `mutation($t: String!) { registerDevice(token: $t, platform: ANDROID) { token platform } }`, map[string]any{"t": token}, &out)
		if out.RegisterDevice.Token != token || out.RegisterDevice.Platform != "ANDROID" {
			t.Fatalf("registered %+v", out.RegisterDevice)
		}
	}
	// Each rule below builds on the sign-ups and devices of the ones before.
	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	step("members register their devices and see them", func(t *testing.T) {
		register(t, holder, "holder-phone")
		register(t, waiting, "waiting-phone")
		register(t, bystander, "bystander-phone")
		var devices struct {
			MyDevices []struct{ Token string } `json:"myDevices"`
		}
		s.do(t, waiting.Token, `{ myDevices { token } }`, nil, &devices)
		if len(devices.MyDevices) != 1 || devices.MyDevices[0].Token != "waiting-phone" {
			t.Fatalf("myDevices %+v", devices.MyDevices)
		}
	})

	step("a promotion from the waitlist tells the member promoted", func(t *testing.T) {
		held := s.signUpOverHTTP(t, holder.Token, l.shift.ID)
		s.signUpOverHTTP(t, waiting.Token, l.shift.ID)
		s.do(t, holder.Token, `mutation($id: ID!) { cancelSignup(signupId: $id) { id } }`, map[string]any{"id": held}, nil)
		if got := fcm.waitFor(t, "waiting-phone", "WAITLIST_PROMOTED"); got["shift_id"] != l.shift.ID {
			t.Fatalf("promotion message %v, want shift %s", got, l.shift.ID)
		}
	})

	t.Run("moving the shift tells the member holding it", func(t *testing.T) {
		later := time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339)
		end := time.Now().Add(75 * time.Hour).UTC().Format(time.RFC3339)
		s.do(t, l.captain.Token, `mutation($id: ID!, $s: Time, $e: Time) { updateShift(input: {id: $id, startsAt: $s, endsAt: $e}) { id } }`,
			map[string]any{"id": l.shift.ID, "s": later, "e": end}, nil)
		if got := fcm.waitFor(t, "waiting-phone", "SHIFT_CHANGED"); got["shift_id"] != l.shift.ID {
			t.Fatalf("move message %v, want shift %s", got, l.shift.ID)
		}
	})

	t.Run("a coverage call reaches the free members with devices, once", func(t *testing.T) {
		sh := s.kit(t).ShiftOn(l.line, 96*time.Hour, 5)
		var cov struct {
			CallForCoverage int `json:"callForCoverage"`
		}
		s.do(t, l.captain.Token, `mutation($s: ID!) { callForCoverage(shiftId: $s, message: "Two more at the north gate please") }`, map[string]any{"s": sh.ID}, &cov)
		if cov.CallForCoverage != 3 {
			t.Errorf("coverage call reached %d members, want 3", cov.CallForCoverage)
		}
		for _, phone := range []string{"holder-phone", "waiting-phone", "bystander-phone"} {
			fcm.waitFor(t, phone, "COVERAGE_CALL")
		}
		s.fails(t, l.captain.Token, `mutation($s: ID!) { callForCoverage(shiftId: $s) }`, map[string]any{"s": sh.ID}, "RATE_LIMITED")
		s.fails(t, bystander.Token, `mutation($s: ID!) { callForCoverage(shiftId: $s) }`, map[string]any{"s": sh.ID}, "FORBIDDEN")
	})

	t.Run("an urgent announcement reaches those taking part on the line, not its author", func(t *testing.T) {
		register(t, l.captain, "captain-phone")
		var ann struct{ PostAnnouncement struct{ ID string } }
		s.do(t, l.captain.Token, `mutation($l: ID!) { postAnnouncement(input: {picketLineId: $l, body: "Everyone to the north gate", urgent: true}) { id } }`,
			map[string]any{"l": l.line.ID}, &ann)
		if got := fcm.waitFor(t, "waiting-phone", "URGENT_ANNOUNCEMENT"); got["announcement_id"] != ann.PostAnnouncement.ID {
			t.Fatalf("urgent announcement message %v, want announcement %s", got, ann.PostAnnouncement.ID)
		}
	})

	t.Run("cancelling the shift tells its member", func(t *testing.T) {
		s.do(t, l.captain.Token, `mutation($id: ID!) { cancelShift(id: $id) { id } }`, map[string]any{"id": l.shift.ID}, nil)
		if got := fcm.waitFor(t, "waiting-phone", "SHIFT_CANCELLED"); got["shift_id"] != l.shift.ID {
			t.Fatalf("cancel message %v, want shift %s", got, l.shift.ID)
		}
	})

	t.Run("nobody is told anything else", func(t *testing.T) {
		for phone, want := range map[string][]string{
			"waiting-phone": {"COVERAGE_CALL", "SHIFT_CANCELLED", "SHIFT_CHANGED", "URGENT_ANNOUNCEMENT", "WAITLIST_PROMOTED"},
			// The holder left the shift before anything but the coverage call.
			"holder-phone":    {"COVERAGE_CALL"},
			"bystander-phone": {"COVERAGE_CALL"},
			// The captain wrote the announcement and runs the line.
			"captain-phone": nil,
		} {
			if diff := cmp.Diff(want, fcm.kinds(phone)); diff != "" {
				t.Errorf("messages to %s (-want +got):\n%s", phone, diff)
			}
		}
	})
}

func TestPreferencesAndDeviceLifecycle(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	m := s.addMember(t, db.RoleMember)
	t.Run("preferences are kept, and urgent announcements stay on", func(t *testing.T) {
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
	})
	t.Run("an unknown time zone and a bad quiet hour are bad input", func(t *testing.T) {
		s.fails(t, m.Token, `mutation { updateNotificationPreferences(input: {timeZone: "Mars/Olympus"}) { timeZone } }`, nil, "BAD_USER_INPUT")
		s.fails(t, m.Token, `mutation { updateNotificationPreferences(input: {quietStart: "25:00"}) { timeZone } }`, nil, "BAD_USER_INPUT")
	})

	other := s.addMember(t, db.RoleMember)
	t.Run("a token registered by another member moves to them", func(t *testing.T) {
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
	})
	t.Run("logging out forgets the device the session registered", func(t *testing.T) {
		s.do(t, other.Token, `mutation { registerDevice(token: "other's own", platform: ANDROID) { token } }`, nil, nil)
		s.do(t, other.Token, `mutation { logout }`, nil, nil)
		k := s.kit(t)
		left, err := k.Store.MyDevices(k.Ctx, other.Actor())
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 0 {
			t.Fatalf("devices after logout: %+v", left)
		}
	})
}
