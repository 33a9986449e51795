package main

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{0.50, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := percentile(d, c.p); got != c.want {
			t.Errorf("percentile(1..100ms, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := percentile(nil, 0.99); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
}

func TestMerge(t *testing.T) {
	a, b := newRecorder(), newRecorder()
	a.ok(3 * time.Millisecond)
	a.conflict(1 * time.Millisecond)
	b.ok(2 * time.Millisecond)
	b.fail("INTERNAL")
	b.fail("INTERNAL")
	res := merge("x", []*recorder{a, b}, time.Second)
	if res.Ops != 3 || res.Conflicts != 1 || res.Errors != 2 || res.ErrorsBy["INTERNAL"] != 2 {
		t.Errorf("merge counted %+v", res)
	}
	if res.Rate != 3 || res.P50 != 2*time.Millisecond || res.Max != 3*time.Millisecond {
		t.Errorf("merge rate %v p50 %v max %v", res.Rate, res.P50, res.Max)
	}
}

func TestDSN(t *testing.T) {
	for _, c := range []struct{ admin, want string }{
		{"postgres://u:p@h:5/postgres?sslmode=disable", "postgres://u:p@h:5/bench_1?sslmode=disable"},
		{"host=h user=u dbname=postgres", "host=h user=u dbname=postgres dbname='bench_1'"},
		{"", "dbname='bench_1'"},
	} {
		got := (&pgTarget{adminDSN: c.admin}).dsn("bench_1")
		if got != c.want {
			t.Errorf("dsn(%q) = %q, want %q", c.admin, got, c.want)
		}
		cfg, err := pgconn.ParseConfig(got)
		if err != nil {
			t.Errorf("dsn(%q) = %q does not parse: %v", c.admin, got, err)
		} else if cfg.Database != "bench_1" {
			t.Errorf("dsn(%q) = %q names database %q, want bench_1", c.admin, got, cfg.Database)
		}
	}
}

func TestSignupBody(t *testing.T) {
	if got := signupBody("abc"); string(got) != `{"query":"mutation($s: ID!){ signUpForShift(shiftId:$s){ id status waitlistPosition } }","variables":{"s":"abc"}}` {
		t.Errorf("signupBody = %s", got)
	}
}
