package auth

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/picketline/picketline/db"
)

// TrustedProxies are the peers whose word is taken for whom they forward:
// load balancers and reverse proxies in front of the server. The per-address
// rate limits count the address they name; from any other peer a forwarding
// header is ignored, since a client can write one itself.
type TrustedProxies []netip.Prefix

// ParseTrustedProxies reads addresses and CIDR prefixes (192.0.2.1,
// 10.0.0.0/8, 2001:db8::/32); a bare address is a prefix of one.
func ParseTrustedProxies(items []string) (TrustedProxies, error) {
	var out TrustedProxies
	for _, item := range items {
		if p, err := netip.ParsePrefix(item); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an IP address nor a CIDR prefix", item)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// String lists the prefixes as they were parsed, comma-separated.
func (p TrustedProxies) String() string {
	s := make([]string, len(p))
	for i, prefix := range p {
		s[i] = prefix.String()
	}
	return strings.Join(s, ",")
}

func (p TrustedProxies) trusts(a netip.Addr) bool {
	for _, prefix := range p {
		if prefix.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr returns the address r comes from: its peer's or, when the peer
// is trusted, the rightmost hop of X-Forwarded-For (or, without one, of
// Forwarded's for=) that is not itself trusted. Hops left of the first
// untrusted one were written by whoever that is, so they are never read;
// a hop that is no address (unknown, obfuscated) ends the walk at the last
// address known.
func (p TrustedProxies) ClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	addr = addr.Unmap()
	if !p.trusts(addr) {
		return addr.String()
	}
	hops := forwardedFor(r.Header)
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := parseHop(hops[i])
		if !ok {
			break
		}
		addr = hop
		if !p.trusts(hop) {
			break
		}
	}
	return addr.String()
}

// forwardedFor lists the hops of X-Forwarded-For, or of Forwarded's for=
// parameters when there is no X-Forwarded-For, leftmost first.
func forwardedFor(h http.Header) []string {
	if xff := h.Values("X-Forwarded-For"); len(xff) > 0 {
		return strings.Split(strings.Join(xff, ","), ",")
	}
	var hops []string
	for _, element := range strings.Split(strings.Join(h.Values("Forwarded"), ","), ",") {
		for _, pair := range strings.Split(element, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if ok && strings.EqualFold(k, "for") {
				hops = append(hops, v)
			}
		}
	}
	return hops
}

// parseHop reads one hop: an address, with or without a port, IPv6 in
// brackets when it has one, quoted as Forwarded quotes it.
func parseHop(hop string) (netip.Addr, bool) {
	hop = strings.Trim(strings.TrimSpace(hop), `"`)
	if ap, err := netip.ParseAddrPort(hop); err == nil {
		return ap.Addr().Unmap(), true
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(hop, "["), "]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// Middleware puts the request's client address in its context, for the
// per-address limits of HTTP requests and websockets alike.
func (p TrustedProxies) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if addr := p.ClientAddr(r); addr != "" {
			r = r.WithContext(db.WithClientAddr(r.Context(), LimitedAddr(addr)))
		}
		next.ServeHTTP(w, r)
	})
}

// LimitedAddr is the address the per-address limits count a client
// address as: itself for IPv4, and its /64 for IPv6, which a provider
// hands one subscriber whole, so that walking through it gains nothing.
func LimitedAddr(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil || ip.Is4() {
		return addr
	}
	prefix, err := ip.Prefix(64)
	if err != nil {
		return addr
	}
	return prefix.String()
}
