package audit

import (
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fuzzSettings are the TRUST_PROXY values FuzzClientIP chooses from with its
// first input, so that fuzzing time goes into requests rather than into
// settings that fail to parse (FuzzParseTrustProxy covers those).
var fuzzSettings = []string{
	"",
	"1",
	"2",
	"3",
	"1000",
	"loopback",
	"uniquelocal",
	"loopback, linklocal, uniquelocal",
	"10.0.0.0/8, ::1",
	"fd00::/8, 2001:db8::/32",
	"::ffff:10.0.0.0/104",
	"8000::/1",
}

// FuzzClientIP checks, for arbitrary RemoteAddr and X-Forwarded-For values
// (newlines in xff separate header lines), that ClientIP never panics, only
// ever returns "" or a canonical bare IP taken from the socket peer or an
// X-Forwarded-For entry, and agrees with referenceClientIP, a deliberately
// naive transcription of the documented rules.
func FuzzClientIP(f *testing.F) {
	seeds := []struct {
		setting     byte
		remote, xff string
	}{
		{3, "10.0.0.1:5555", "203.0.113.9, 198.51.100.7, 10.0.0.2"},
		{1, "10.0.0.1:5555", "6.6.6.6, 203.0.113.9"},
		{7, "10.0.0.1:5555", "203.0.113.9, 198.51.100.7, 10.0.0.2"},
		{6, "[::ffff:10.0.0.1]:5555", "::ffff:203.0.113.9"},
		{2, "10.0.0.1:5555", " \t203.0.113.9 ,\t, 10.0.0.2"},
		{3, "10.0.0.1:5555", "203.0.113.9,,10.0.0.2"},
		{1, "10.0.0.1:5555", "1.2.3.4:5678"},
		{1, "10.0.0.1:5555", "[2001:db8::1]:443"},
		{2, "10.0.0.1:5555", "unknown, _hidden"},
		{1, "10.0.0.1:5555", "<script>alert(1)</script>"},
		{1, "10.0.0.1:5555", "fe80::1%eth0"},
		{6, "10.0.0.1:5555", "203.0.113.9\n10.0.0.3\n10.0.0.2"},
		{1, "@", "203.0.113.9"},
		{5, "", "203.0.113.9"},
		{1, "/run/trek.sock", ""},
		{1, "[::1]:80", "::1"},
		{0, "192.0.2.1", "6.6.6.6"},
		{1, "garbage", "203.0.113.9"},
		{11, "10.0.0.1:5555", "9999::1, 203.0.113.9"},
		{4, "10.0.0.1:5555", strings.Repeat("10.0.0.9, ", 600)},
		{6, "10.0.0.1:5555", strings.Repeat("10.0.0.9,", 200) + "unknown"},
	}
	for _, s := range seeds {
		f.Add(s.setting, s.remote, s.xff)
	}

	f.Fuzz(func(t *testing.T, setting byte, remote, xff string) {
		tp, err := ParseTrustProxy(fuzzSettings[int(setting)%len(fuzzSettings)])
		require.NoError(t, err)

		r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		var lines []string
		if xff != "" {
			lines = strings.Split(xff, "\n")
			r.Header["X-Forwarded-For"] = lines
		}

		got := tp.ClientIP(r)

		if got != "" {
			addr, err := netip.ParseAddr(got)
			require.NoError(t, err, "result %q is not an IP", got)
			require.Equal(t, addr.Unmap().WithZone("").String(), got, "result is not canonical")

			// It must come from the request, not be made up.
			allowed := map[string]bool{}
			if a, ok := referenceParseAddr(remote); ok {
				allowed[a.String()] = true
			}
			for _, e := range strings.Split(strings.Join(lines, ","), ",") {
				if a, ok := referenceParseAddr(strings.Trim(e, " \t")); ok {
					allowed[a.String()] = true
				}
			}
			require.True(t, allowed[got], "result %q is neither the socket peer nor an X-Forwarded-For entry", got)
		}

		require.Equal(t, referenceClientIP(tp, remote, lines), got)
	})
}

// referenceClientIP restates ClientIP's rules in the most direct way, for
// differential fuzzing: it joins and splits the header, parses every entry,
// builds proxy-addr's full address list and walks it.
func referenceClientIP(tp TrustProxy, remote string, lines []string) string {
	type candidate struct {
		addr  netip.Addr // as reported; invalid for a Unix socket peer
		match netip.Addr // as matched against trusted ranges
		ok    bool       // well-formed
	}

	var list []candidate
	switch {
	case remote == "" || strings.HasPrefix(remote, "@") || strings.HasPrefix(remote, "/"):
		list = append(list, candidate{match: netip.MustParseAddr("127.0.0.1"), ok: true})
	default:
		a, ok := referenceParseAddr(remote)
		if !ok {
			return ""
		}
		list = append(list, candidate{addr: a, match: a, ok: true})
	}
	if len(lines) > 0 {
		entries := strings.Split(strings.Join(lines, ","), ",")
		for i := len(entries) - 1; i >= 0; i-- {
			a, ok := referenceParseAddr(strings.Trim(entries[i], " \t"))
			list = append(list, candidate{addr: a, match: a, ok: ok})
		}
	}

	trusted := func(c candidate, i int) bool {
		if len(tp.nets) == 0 {
			return i < tp.hops
		}
		for _, p := range tp.nets {
			a := c.match
			if p.Addr().Is6() && a.Is4() {
				a = netip.AddrFrom16(a.As16())
			}
			if p.Contains(a) {
				return true
			}
		}
		return false
	}

	limit := len(list) - 1 // how far left the walk may go
	if len(tp.nets) > 0 {
		limit = min(limit, maxListWalk)
	}
	i := 0
	for i < limit && trusted(list[i], i) && list[i+1].ok {
		i++
	}
	if !list[i].addr.IsValid() {
		return ""
	}
	return list[i].addr.String()
}

// referenceParseAddr accepts what ClientIP documents: an IP, an ip:port,
// or a bracketed IPv6 address without a port, of at most 128 bytes; the
// result is unmapped and zone-less.
func referenceParseAddr(s string) (netip.Addr, bool) {
	if len(s) > 128 {
		return netip.Addr{}, false
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if inner, ok := strings.CutPrefix(s, "["); ok {
		if inner, ok := strings.CutSuffix(inner, "]"); ok {
			if a, err := netip.ParseAddr(inner); err == nil && a.Is6() {
				return a.Unmap().WithZone(""), true
			}
		}
	}
	return netip.Addr{}, false
}

// FuzzParseTrustProxy checks that ParseTrustProxy never panics, that every
// error wraps ErrBadTrustProxy and quotes the input, and that an accepted
// setting survives a round trip through String.
func FuzzParseTrustProxy(f *testing.F) {
	for _, s := range []string{
		"", "false", "FALSE", "0", "true", "1", "3", "1000", "1001", "-1", "yes",
		"loopback", "loopback, 10.0.0.0/8", "10.0.0.0/255.0.0.0", "::1", "fd00::/8",
		"uniquelocal,linklocal", "10.0.0.0/33", "lo0pback", "1.2.3.4.5",
		"10.0.0.0/255.0.255.0", "10.0.0.1,,10.0.0.2", "::ffff:10.0.0.0/104",
		"::ffff:0:0/96", "0.0.0.0/0", "fe80::1%eth0", "10.1.2.3/8", " \tloopback\t",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := ParseTrustProxy(s)
		if err != nil {
			require.True(t, errors.Is(err, ErrBadTrustProxy), "error does not wrap ErrBadTrustProxy: %v", err)
			require.Contains(t, err.Error(), strconv.Quote(s))
			require.Equal(t, TrustProxy{}, tp)
			return
		}
		norm := tp.String()
		again, err := ParseTrustProxy(norm)
		require.NoError(t, err, "String() %q of %q does not parse", norm, s)
		assert.Equal(t, tp, again, "String() %q of %q is not equivalent", norm, s)
		assert.Equal(t, norm, again.String())
	})
}
