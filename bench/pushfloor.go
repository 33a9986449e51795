package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/messaging"
	"golang.org/x/time/rate"
	"google.golang.org/api/option"

	"github.com/picketline/picketline/db"
)

// pushFloor measures what the sends of a push alone do to sign-ups: the
// bench hands PushDevices messages to the fake FCM through the Firebase
// SDK, at each rate and concurrency the worker would use, with no database
// work at all. No push through the outbox can cost less.
func (b *bench) pushFloor(ctx context.Context) (*scenarioReport, error) {
	fcm, err := startFakeFCM()
	if err != nil {
		return nil, err
	}
	defer fcm.srv.Close()
	client, err := newFCMClient(ctx, fcm.URL)
	if err != nil {
		return nil, err
	}
	devices := b.opts.WS.PushDevices
	sr := &scenarioReport{Name: "push-floor"}
	for _, rate := range b.opts.WS.PushRates {
		name := fmt.Sprintf("push-floor/rate-%d", rate)
		logf("push-floor: %d/s: %s of paced sign-ups before the sends", rate, b.opts.Duration)
		var (
			failed int
			took   time.Duration
		)
		w := b.aroundSignups(ctx, fcm.reset, func(start time.Time) {
			failed = sendDirect(ctx, client, devices, rate, pushConcurrency)
			took = time.Since(start)
		})
		sBefore, sDuring, impact := b.signupImpact(name, w, took)
		res := Result{Name: name, Ops: int(fcm.count.Load()), ElapsedS: took.Seconds(), Rate: float64(fcm.count.Load()) / took.Seconds(), Errors: failed}
		res.Notes = append(res.Notes,
			fmt.Sprintf("%d messages sent straight to the fake FCM in %s (%d failed)", fcm.count.Load(), took.Round(time.Millisecond), failed),
			fmt.Sprintf("CPU while sending: %s", w.cpu),
			impact.note)
		sr.Results = append(sr.Results, res, sBefore, sDuring)
		sr.Targets = append(sr.Targets, impact.target(fmt.Sprintf("sends alone at %d/s", rate)))
		logf("push-floor: %d/s: %d messages in %s", rate, fcm.count.Load(), took.Round(time.Millisecond))
	}
	return sr, nil
}

// newFCMClient is the Firebase Admin SDK's messaging client built as the
// server builds it for a fake FCM: no telemetry wrappers, the fake's
// address, no authentication.
func newFCMClient(ctx context.Context, endpoint string) (*messaging.Client, error) {
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: "bench-push"},
		option.WithTelemetryDisabled(), option.WithEndpoint(endpoint), option.WithoutAuthentication())
	if err != nil {
		return nil, fmt.Errorf("firebase: %w", err)
	}
	client, err := app.Messaging(ctx)
	if err != nil {
		return nil, fmt.Errorf("firebase messaging: %w", err)
	}
	return client, nil
}

// sendDirect sends n urgent messages to distinct tokens through client, at
// most perSecond a second (the worker's limiter) by concurrency senders,
// and reports how many failed.
func sendDirect(ctx context.Context, client *messaging.Client, n, perSecond, concurrency int) int {
	limiter := rate.NewLimiter(rate.Limit(perSecond), max(1, perSecond/20))
	jobs := make(chan int)
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for i := range jobs {
				if _, err := client.Send(ctx, urgentMessage(i, time.Now())); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	for i := range n {
		if limiter.Wait(ctx) != nil {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return int(failed.Load())
}

// floorAnnouncement is the announcement every push-floor message is about.
const floorAnnouncement = "00000000-0000-4000-8000-0000000000aa"

// urgentMessage is message i of an urgent announcement in the shape the
// server's worker gives it (the same fields, wording and headers, valid for
// a day as an announcement's push is), so the SDK does the same work for
// each send.
func urgentMessage(i int, now time.Time) *messaging.Message {
	eventID := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
	ttl := 24 * time.Hour
	return &messaging.Message{
		Token:        fmt.Sprintf("bench-floor-%d", i),
		Data:         map[string]string{"event_id": eventID, "kind": string(db.NotifyUrgentAnnouncement), "announcement_id": floorAnnouncement},
		Notification: &messaging.Notification{Title: "Urgent message", Body: "Your picket captain posted an urgent message. Open the app to read it."},
		Android:      &messaging.AndroidConfig{CollapseKey: eventID, Priority: "high", TTL: &ttl},
		APNS: &messaging.APNSConfig{Headers: map[string]string{
			"apns-collapse-id": eventID,
			"apns-expiration":  strconv.FormatInt(now.Add(ttl).Unix(), 10),
			"apns-priority":    "10",
		}},
		Webpush: &messaging.WebpushConfig{Headers: map[string]string{
			"TTL":     strconv.Itoa(int(ttl.Seconds())),
			"Topic":   eventID[:32],
			"Urgency": "high",
		}},
	}
}
