package auth_test

import (
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/picketline/picketline/server/auth"
)

func TestClientAddrTakesForwardedHopsOnlyFromTrustedProxies(t *testing.T) {
	proxies, err := auth.ParseTrustedProxies([]string{"127.0.0.1/32", "10.0.0.0/8", "2001:db8::1"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, peer string
		header     map[string][]string
		want       string
	}{
		{"no header", "127.0.0.1:5000", nil, "127.0.0.1"},
		{"an untrusted peer's header is ignored", "198.51.100.9:5000",
			map[string][]string{"X-Forwarded-For": {"203.0.113.7"}}, "198.51.100.9"},
		{"a trusted peer's header is used", "127.0.0.1:5000",
			map[string][]string{"X-Forwarded-For": {"203.0.113.7"}}, "203.0.113.7"},
		{"the rightmost untrusted hop, not what the client wrote left of it", "127.0.0.1:5000",
			map[string][]string{"X-Forwarded-For": {"192.0.2.66, 203.0.113.7", "10.1.2.3"}}, "203.0.113.7"},
		{"every hop trusted: the leftmost", "127.0.0.1:5000",
			map[string][]string{"X-Forwarded-For": {"10.0.0.2, 10.0.0.1"}}, "10.0.0.2"},
		{"a hop that is no address ends the walk", "127.0.0.1:5000",
			map[string][]string{"X-Forwarded-For": {"203.0.113.7, garbage, 10.0.0.1"}}, "10.0.0.1"},
		{"Forwarded for= without X-Forwarded-For", "127.0.0.1:5000",
			map[string][]string{"Forwarded": {`for=192.0.2.66, for="[2001:db8:cafe::17]:4711";proto=https`}}, "2001:db8:cafe::17"},
		{"Forwarded for= with a port", "127.0.0.1:5000",
			map[string][]string{"Forwarded": {`for="203.0.113.7:443"`}}, "203.0.113.7"},
		{"X-Forwarded-For before Forwarded", "127.0.0.1:5000",
			map[string][]string{"X-Forwarded-For": {"203.0.113.7"}, "Forwarded": {"for=192.0.2.66"}}, "203.0.113.7"},
		{"a trusted IPv6 peer", "[2001:db8::1]:5000",
			map[string][]string{"X-Forwarded-For": {"::ffff:203.0.113.7"}}, "203.0.113.7"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("POST", "/graphql", nil)
		r.RemoteAddr = c.peer
		for k, vs := range c.header {
			for _, v := range vs {
				r.Header.Add(k, v)
			}
		}
		if got := proxies.ClientAddr(r); got != c.want {
			t.Errorf("%s: client address %q, want %q", c.name, got, c.want)
		}
	}
	if got := auth.TrustedProxies(nil).ClientAddr(httptest.NewRequest("GET", "/", nil)); got != "192.0.2.1" {
		t.Errorf("without trusted proxies: %q, want the peer 192.0.2.1", got)
	}
}

func TestTrustedProxiesRefuseWhatIsNoAddress(t *testing.T) {
	for _, bad := range []string{"proxy.internal", "10.0.0.0/33", "203.0.113.7:80"} {
		if _, err := auth.ParseTrustedProxies([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	got, err := auth.ParseTrustedProxies([]string{"10.1.2.3/8", "::ffff:192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("10.0.0.0/8,192.0.2.1/32", got.String()); diff != "" {
		t.Errorf("parsed (-want +got):\n%s", diff)
	}
}

func TestLimitsCountAnIPv6ClientByItsSlash64(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"192.0.2.7":             "192.0.2.7",
		"2001:db8:1:2::1":       "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::9":  "2001:db8:1:2::/64",
		"2001:db8:1:3::1":       "2001:db8:1:3::/64",
		"not an address at all": "not an address at all",
	} {
		if got := auth.LimitedAddr(addr); got != want {
			t.Errorf("LimitedAddr(%q) = %q, want %q", addr, got, want)
		}
	}
}
