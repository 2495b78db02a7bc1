package audit

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newXFFRequest builds a request as the server would see it: the given socket
// peer, and one X-Forwarded-For header line per element of xff (no header at
// all when xff is empty).
func newXFFRequest(remoteAddr string, xff ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/trips", nil)
	r.RemoteAddr = remoteAddr
	for _, line := range xff {
		r.Header.Add("X-Forwarded-For", line)
	}
	return r
}

func mustTrustProxy(t testing.TB, setting string) TrustProxy {
	t.Helper()
	tp, err := ParseTrustProxy(setting)
	require.NoError(t, err, "TRUST_PROXY=%q", setting)
	return tp
}

type clientIPCase struct {
	name   string
	trust  string   // TRUST_PROXY setting
	remote string   // r.RemoteAddr
	xff    []string // X-Forwarded-For header lines, in order
	want   string
}

func runClientIPCases(t *testing.T, cases []clientIPCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tp := mustTrustProxy(t, tc.trust)
			got := tp.ClientIP(newXFFRequest(tc.remote, tc.xff...))
			assert.Equal(t, tc.want, got, "TRUST_PROXY=%q RemoteAddr=%q X-Forwarded-For=%q", tc.trust, tc.remote, tc.xff)
		})
	}
}

const (
	xffPeer     = "10.0.0.1:5555"
	xffThreeHop = "203.0.113.9, 198.51.100.7, 10.0.0.2"
)

// TestClientIPContract covers each row of TREK's TRUST_PROXY table.
func TestClientIPContract(t *testing.T) {
	runClientIPCases(t, []clientIPCase{
		{name: "unset ignores XFF", trust: "", remote: xffPeer, xff: []string{xffThreeHop}, want: "10.0.0.1"},
		{name: "empty after trimming", trust: " \t ", remote: xffPeer, xff: []string{xffThreeHop}, want: "10.0.0.1"},
		{name: "false", trust: "false", remote: xffPeer, xff: []string{xffThreeHop}, want: "10.0.0.1"},
		{name: "FALSE with spaces", trust: "  FALSE ", remote: xffPeer, xff: []string{xffThreeHop}, want: "10.0.0.1"},
		{name: "zero", trust: "0", remote: xffPeer, xff: []string{xffThreeHop}, want: "10.0.0.1"},
		{name: "unset without XFF", trust: "", remote: xffPeer, want: "10.0.0.1"},
		{name: "true is one hop", trust: "true", remote: xffPeer, xff: []string{xffThreeHop}, want: "10.0.0.2"},
		{name: "True mixed case", trust: " True", remote: xffPeer, xff: []string{xffThreeHop}, want: "10.0.0.2"},
		{name: "one hop", trust: "1", remote: xffPeer, xff: []string{xffThreeHop}, want: "10.0.0.2"},
		{name: "two hops", trust: "2", remote: xffPeer, xff: []string{xffThreeHop}, want: "198.51.100.7"},
		{name: "three hops", trust: "3", remote: xffPeer, xff: []string{xffThreeHop}, want: "203.0.113.9"},
		{name: "hops without XFF is the peer", trust: "3", remote: xffPeer, want: "10.0.0.1"},
		{name: "list stops at first untrusted", trust: "loopback, uniquelocal", remote: xffPeer, xff: []string{xffThreeHop}, want: "198.51.100.7"},
		{name: "list with untrusted peer ignores XFF", trust: "loopback", remote: xffPeer, xff: []string{xffThreeHop}, want: "10.0.0.1"},

		// A client behind one proxy sends "X-Forwarded-For: 6.6.6.6";
		// the proxy appends the real client address.
		{name: "spoof with one trusted hop", trust: "1", remote: xffPeer, xff: []string{"6.6.6.6, 203.0.113.9"}, want: "203.0.113.9"},
		{name: "spoof with true", trust: "true", remote: xffPeer, xff: []string{"6.6.6.6, 203.0.113.9"}, want: "203.0.113.9"},
		{name: "spoof with trust unset", trust: "", remote: xffPeer, xff: []string{"6.6.6.6, 203.0.113.9"}, want: "10.0.0.1"},
		{name: "spoof with proxy list", trust: "10.0.0.1", remote: xffPeer, xff: []string{"6.6.6.6, 203.0.113.9"}, want: "203.0.113.9"},
		{name: "spoof as separate header line", trust: "1", remote: xffPeer, xff: []string{"6.6.6.6", "203.0.113.9"}, want: "203.0.113.9"},
	})
}

// TestClientIPExpressHops checks hop counting against values computed by hand
// with proxy-addr's algorithm: addresses = [peer, c, b, a] for
// "X-Forwarded-For: a, b, c", result = addresses[min(N, len-1)].
func TestClientIPExpressHops(t *testing.T) {
	want := []string{"10.0.0.1", "10.0.0.2", "198.51.100.7", "203.0.113.9", "203.0.113.9", "203.0.113.9"}
	var cases []clientIPCase
	for n, w := range want {
		cases = append(cases,
			clientIPCase{name: fmt.Sprintf("%d hops one line", n), trust: strconv.Itoa(n), remote: xffPeer, xff: []string{xffThreeHop}, want: w},
			clientIPCase{name: fmt.Sprintf("%d hops three lines", n), trust: strconv.Itoa(n), remote: xffPeer, xff: []string{"203.0.113.9", "198.51.100.7", "10.0.0.2"}, want: w},
			clientIPCase{name: fmt.Sprintf("%d hops two lines", n), trust: strconv.Itoa(n), remote: xffPeer, xff: []string{"203.0.113.9, 198.51.100.7", "10.0.0.2"}, want: w},
		)
	}
	cases = append(cases,
		clientIPCase{name: "IPv6 two hops", trust: "2", remote: "[2001:db8::1]:443", xff: []string{"2001:db8::c1, 2001:db8::2"}, want: "2001:db8::c1"},
		clientIPCase{name: "max hops with short header", trust: "1000", remote: xffPeer, xff: []string{xffThreeHop}, want: "203.0.113.9"},
	)
	runClientIPCases(t, cases)
}

// TestClientIPExpressList checks list mode (proxy-addr's compiled trust
// function) with named ranges, CIDRs, netmasks and mixed address families.
func TestClientIPExpressList(t *testing.T) {
	runClientIPCases(t, []clientIPCase{
		{name: "loopback chain", trust: "loopback", remote: "127.0.0.1:40000", xff: []string{"203.0.113.9, 127.0.0.2"}, want: "203.0.113.9"},
		{name: "loopback untrusted peer", trust: "loopback", remote: "192.0.2.10:40000", xff: []string{"203.0.113.9"}, want: "192.0.2.10"},
		{name: "uniquelocal all private blocks", trust: "uniquelocal", remote: "192.168.1.1:80", xff: []string{"203.0.113.9, 172.16.5.4, 10.1.2.3"}, want: "203.0.113.9"},
		{name: "uniquelocal excludes 172.32/12 neighbour", trust: "uniquelocal", remote: xffPeer, xff: []string{"203.0.113.9, 172.32.0.1"}, want: "172.32.0.1"},
		{name: "linklocal IPv4", trust: "linklocal", remote: "169.254.1.1:80", xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "linklocal IPv6 with zone", trust: "linklocal", remote: "[fe80::1%eth0]:80", xff: []string{"2001:db8::9"}, want: "2001:db8::9"},
		{name: "loopback IPv6", trust: "loopback", remote: "[::1]:80", xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "all trusted gives leftmost", trust: "uniquelocal", remote: xffPeer, xff: []string{"10.9.9.9, 10.0.0.2"}, want: "10.9.9.9"},
		{name: "first untrusted wins over trusted further left", trust: "uniquelocal", remote: xffPeer, xff: []string{"10.9.9.9, 203.0.113.9, 10.0.0.2"}, want: "203.0.113.9"},
		{name: "CIDR", trust: "10.0.0.0/8", remote: xffPeer, xff: []string{"203.0.113.9, 10.200.0.1"}, want: "203.0.113.9"},
		{name: "CIDR with host bits", trust: "10.0.0.7/8", remote: xffPeer, xff: []string{"203.0.113.9, 10.200.0.1"}, want: "203.0.113.9"},
		{name: "netmask", trust: "10.0.0.0/255.255.0.0", remote: "10.0.5.5:80", xff: []string{"203.0.113.9, 10.1.0.1"}, want: "10.1.0.1"},
		{name: "single addresses", trust: "10.0.0.1, 10.0.0.2", remote: xffPeer, xff: []string{xffThreeHop}, want: "198.51.100.7"},
		{name: "mixed names and CIDR", trust: "loopback, 198.51.100.0/24, uniquelocal", remote: xffPeer, xff: []string{xffThreeHop}, want: "203.0.113.9"},
		{name: "IPv6 CIDR", trust: "fd00::/8", remote: "[fd00::1]:443", xff: []string{"2001:db8::9, fd00::2"}, want: "2001:db8::9"},
		{name: "IPv6 host", trust: "::1", remote: "[::1]:443", xff: []string{"2001:db8::9"}, want: "2001:db8::9"},

		// IPv4-mapped IPv6: trusted IPv4 ranges match mapped addresses,
		// and mapped results are reported as plain IPv4.
		{name: "mapped peer trusted by IPv4 CIDR", trust: "10.0.0.0/8", remote: "[::ffff:10.0.0.1]:5555", xff: []string{"::ffff:203.0.113.9"}, want: "203.0.113.9"},
		{name: "mapped XFF entry trusted by name", trust: "uniquelocal", remote: xffPeer, xff: []string{"203.0.113.9, ::ffff:10.0.0.2"}, want: "203.0.113.9"},
		{name: "mapped untrusted peer is reported as IPv4", trust: "loopback", remote: "[::ffff:192.0.2.10]:80", xff: []string{"203.0.113.9"}, want: "192.0.2.10"},
		{name: "mapped IPv6 range trusts IPv4", trust: "::ffff:10.0.0.0/104", remote: xffPeer, xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "mapped single address trusts IPv4", trust: "::ffff:10.0.0.1", remote: xffPeer, xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "short IPv6 range does not cover IPv4", trust: "8000::/1", remote: "[9999::1]:443", xff: []string{"203.0.113.9, 10.0.0.1"}, want: "10.0.0.1"},
		{name: "IPv4 range does not match IPv4-compatible IPv6", trust: "10.0.0.0/8", remote: "[::a00:1]:80", xff: []string{"203.0.113.9"}, want: "::a00:1"},

		{name: "lines joined in order", trust: "uniquelocal", remote: xffPeer, xff: []string{"203.0.113.9, 10.0.0.4", "10.0.0.3", "10.0.0.2"}, want: "203.0.113.9"},
	})
}

// TestClientIPMalformed: a malformed entry never becomes the client address;
// the walk stops and returns the nearest valid address it passed.
func TestClientIPMalformed(t *testing.T) {
	runClientIPCases(t, []clientIPCase{
		{name: "spaces and tabs around entries", trust: "2", remote: xffPeer, xff: []string{" \t203.0.113.9 \t,\t10.0.0.2 "}, want: "203.0.113.9"},
		{name: "no spaces after commas", trust: "2", remote: xffPeer, xff: []string{"203.0.113.9,10.0.0.2"}, want: "203.0.113.9"},
		{name: "space inside an entry", trust: "2", remote: xffPeer, xff: []string{"203.0.113.9 198.51.100.7, 10.0.0.2"}, want: "10.0.0.2"},
		{name: "empty entry stops the walk", trust: "3", remote: xffPeer, xff: []string{"203.0.113.9,,10.0.0.2"}, want: "10.0.0.2"},
		{name: "blank entry stops the walk", trust: "3", remote: xffPeer, xff: []string{"203.0.113.9, , 10.0.0.2"}, want: "10.0.0.2"},
		{name: "trailing comma", trust: "1", remote: xffPeer, xff: []string{"203.0.113.9,"}, want: "10.0.0.1"},
		{name: "empty header line", trust: "1", remote: xffPeer, xff: []string{""}, want: "10.0.0.1"},
		{name: "empty line between lines", trust: "3", remote: xffPeer, xff: []string{"203.0.113.9", "", "10.0.0.2"}, want: "10.0.0.2"},
		{name: "IPv4 with port", trust: "1", remote: xffPeer, xff: []string{"1.2.3.4:5678"}, want: "1.2.3.4"},
		{name: "IPv6 with port", trust: "1", remote: xffPeer, xff: []string{"[2001:db8::1]:443"}, want: "2001:db8::1"},
		{name: "bracketed IPv6 without port", trust: "1", remote: xffPeer, xff: []string{"[2001:db8::1]"}, want: "2001:db8::1"},
		{name: "unbracketed IPv6 is an address, not addr:port", trust: "1", remote: xffPeer, xff: []string{"2001:db8::1:443"}, want: "2001:db8::1:443"},
		{name: "port out of range", trust: "1", remote: xffPeer, xff: []string{"1.2.3.4:65536"}, want: "10.0.0.1"},
		{name: "empty port", trust: "1", remote: xffPeer, xff: []string{"1.2.3.4:"}, want: "10.0.0.1"},
		{name: "bracketed IPv4", trust: "1", remote: xffPeer, xff: []string{"[1.2.3.4]:80"}, want: "10.0.0.1"},
		{name: "non-numeric port", trust: "1", remote: xffPeer, xff: []string{"1.2.3.4:http"}, want: "10.0.0.1"},
		{name: "unknown", trust: "2", remote: xffPeer, xff: []string{"unknown, 10.0.0.2"}, want: "10.0.0.2"},
		{name: "obfuscated identifier", trust: "2", remote: xffPeer, xff: []string{"_hidden, 10.0.0.2"}, want: "10.0.0.2"},
		{name: "RFC 7239 syntax", trust: "1", remote: xffPeer, xff: []string{`for="[2001:db8::1]"`}, want: "10.0.0.1"},
		{name: "quoted address", trust: "1", remote: xffPeer, xff: []string{`"203.0.113.9"`}, want: "10.0.0.1"},
		{name: "HTML", trust: "1", remote: xffPeer, xff: []string{`<script>alert(1)</script>`}, want: "10.0.0.1"},
		{name: "HTML with commas", trust: "3", remote: xffPeer, xff: []string{`<img src=x onerror="a(1,2)">, 10.0.0.2`}, want: "10.0.0.2"},
		{name: "hostname", trust: "1", remote: xffPeer, xff: []string{"evil.example"}, want: "10.0.0.1"},
		{name: "IPv4 leading zeros", trust: "1", remote: xffPeer, xff: []string{"010.0.0.1"}, want: "10.0.0.1"},
		{name: "five octets", trust: "1", remote: xffPeer, xff: []string{"1.2.3.4.5"}, want: "10.0.0.1"},
		{name: "IPv4 with zone", trust: "1", remote: xffPeer, xff: []string{"1.2.3.4%eth0"}, want: "10.0.0.1"},
		{name: "IPv6 zone dropped", trust: "1", remote: xffPeer, xff: []string{"fe80::1%eth0"}, want: "fe80::1"},
		{name: "IPv6 junk zone dropped", trust: "1", remote: xffPeer, xff: []string{"fe80::1%<b>x</b>"}, want: "fe80::1"},
		{name: "overlong entry", trust: "1", remote: xffPeer, xff: []string{strings.Repeat("0", 200)}, want: "10.0.0.1"},
		{name: "control characters", trust: "1", remote: xffPeer, xff: []string{"203.0.113.9\x00"}, want: "10.0.0.1"},
		{name: "non-ASCII", trust: "1", remote: xffPeer, xff: []string{"２０３.0.113.9"}, want: "10.0.0.1"},

		// Attacks on hop counting. Express would return the malformed text;
		// skipping it would hand the counted position to 6.6.6.6.
		{name: "malformed entry cannot shift hop counting", trust: "2", remote: xffPeer, xff: []string{"6.6.6.6, unknown"}, want: "10.0.0.1"},
		{name: "malformed entry cannot shift list walk", trust: "uniquelocal", remote: xffPeer, xff: []string{"6.6.6.6, unknown, 10.0.0.2"}, want: "10.0.0.2"},
		{name: "client junk left of honest entries is never reached", trust: "2", remote: xffPeer, xff: []string{"6.6.6.6, <x>, , 203.0.113.9, 10.0.0.2"}, want: "203.0.113.9"},
	})
}

// TestClientIPRemoteAddr covers the forms RemoteAddr takes, including Unix
// domain sockets, which have no IP address.
func TestClientIPRemoteAddr(t *testing.T) {
	runClientIPCases(t, []clientIPCase{
		{name: "IPv4 with port", trust: "", remote: "192.0.2.10:1234", want: "192.0.2.10"},
		{name: "IPv4 without port", trust: "", remote: "192.0.2.10", want: "192.0.2.10"},
		{name: "IPv6 with port", trust: "", remote: "[::1]:80", want: "::1"},
		{name: "IPv6 without port", trust: "", remote: "::1", want: "::1"},
		{name: "bracketed IPv6 without port", trust: "", remote: "[::1]", want: "::1"},
		{name: "non-canonical IPv6", trust: "", remote: "[2001:DB8:0:0::1]:80", want: "2001:db8::1"},
		{name: "IPv6 with zone", trust: "", remote: "[fe80::1%eth0]:80", want: "fe80::1"},
		{name: "IPv4-mapped", trust: "", remote: "[::ffff:192.0.2.10]:80", want: "192.0.2.10"},
		{name: "bad port", trust: "", remote: "192.0.2.10:99999", want: ""},
		{name: "garbage", trust: "", remote: "not-an-ip", want: ""},
		{name: "garbage peer is not walked past", trust: "1", remote: "not-an-ip", xff: []string{"203.0.113.9"}, want: ""},
		{name: "unix socket unnamed, trust nothing", trust: "", remote: "@", xff: []string{"203.0.113.9"}, want: ""},
		{name: "unix socket unnamed, one hop", trust: "1", remote: "@", xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "unix socket, one hop, no XFF", trust: "1", remote: "@", want: ""},
		{name: "unix socket, malformed XFF", trust: "1", remote: "@", xff: []string{"unknown"}, want: ""},
		{name: "unix socket abstract", trust: "1", remote: "@trek", xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "unix socket path", trust: "true", remote: "/run/trek/trek.sock", xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "unix socket empty name", trust: "1", remote: "", xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "unix socket trusted as loopback", trust: "loopback", remote: "@", xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "unix socket matched as 127.0.0.1", trust: "127.0.0.1", remote: "@", xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "unix socket not trusted by uniquelocal", trust: "uniquelocal", remote: "@", xff: []string{"203.0.113.9"}, want: ""},
	})

	t.Run("nil request", func(t *testing.T) {
		assert.Empty(t, mustTrustProxy(t, "1").ClientIP(nil))
	})
}

// listOfAddrs returns n distinct addresses 10.x.y.1 in X-Forwarded-For order
// (leftmost first) and the header built from them.
func listOfAddrs(n int) ([]string, string) {
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("10.%d.%d.1", i/256, i%256)
	}
	return addrs, strings.Join(addrs, ", ")
}

func TestClientIPLargeHeaders(t *testing.T) {
	const kib64 = 64 << 10

	spoofs := strings.Repeat("6.6.6.6, ", kib64/len("6.6.6.6, ")+1)
	require.Greater(t, len(spoofs), kib64)

	addrs500, hdr500 := listOfAddrs(500)
	addrsBig, hdrBig := listOfAddrs(kib64 / len("10.0.0.1, "))
	require.Greater(t, len(hdrBig), kib64-len("10.0.0.1, "))

	runClientIPCases(t, []clientIPCase{
		{name: "64KiB of spoofs, one hop", trust: "1", remote: xffPeer, xff: []string{spoofs + "203.0.113.9"}, want: "203.0.113.9"},
		{name: "64KiB of spoofs, list", trust: "uniquelocal", remote: xffPeer, xff: []string{spoofs + "203.0.113.9, 10.0.0.2"}, want: "203.0.113.9"},
		{name: "64KiB single entry", trust: "1", remote: xffPeer, xff: []string{strings.Repeat("1", kib64)}, want: "10.0.0.1"},
		{name: "64KiB of commas", trust: "1", remote: xffPeer, xff: []string{strings.Repeat(",", kib64)}, want: "10.0.0.1"},
		{name: "64KiB of spaces", trust: "1", remote: xffPeer, xff: []string{strings.Repeat(" ", kib64)}, want: "10.0.0.1"},
		{name: "64KiB trusted addresses, list stops at cap", trust: "uniquelocal", remote: xffPeer, xff: []string{hdrBig}, want: addrsBig[len(addrsBig)-maxListWalk]},
		{name: "64KiB trusted addresses, max hops", trust: "1000", remote: xffPeer, xff: []string{hdrBig}, want: addrsBig[len(addrsBig)-1000]},
		{name: "500 hops, trust 500", trust: "500", remote: xffPeer, xff: []string{hdr500}, want: addrs500[0]},
		{name: "500 hops, trust 499", trust: "499", remote: xffPeer, xff: []string{hdr500}, want: addrs500[1]},
		{name: "500 hops, trust 1000", trust: "1000", remote: xffPeer, xff: []string{hdr500}, want: addrs500[0]},
		{name: "500 hops, trust 2", trust: "2", remote: xffPeer, xff: []string{hdr500}, want: addrs500[498]},
		{name: "500 hops, list cap", trust: "uniquelocal", remote: xffPeer, xff: []string{hdr500}, want: addrs500[500-maxListWalk]},
		{name: "500 hops as 500 lines", trust: "uniquelocal", remote: xffPeer, xff: addrs500, want: addrs500[500-maxListWalk]},
		{name: "500 hops, untrusted near the right", trust: "uniquelocal", remote: xffPeer, xff: []string{hdr500 + ", 203.0.113.9, 10.0.0.2"}, want: "203.0.113.9"},
	})
}

// TestClientIPAllocations pins the allocation budget: the normal path
// allocates only the returned string, and a huge header is not copied.
func TestClientIPAllocations(t *testing.T) {
	_, hdrBig := listOfAddrs(6000)
	cases := []struct {
		name  string
		trust string
		req   *http.Request
		max   float64
	}{
		{name: "socket peer", trust: "", req: newXFFRequest(xffPeer, xffThreeHop), max: 1},
		{name: "three hops", trust: "3", req: newXFFRequest(xffPeer, xffThreeHop), max: 1},
		{name: "list", trust: "loopback, uniquelocal", req: newXFFRequest(xffPeer, xffThreeHop), max: 1},
		{name: "IPv6", trust: "2", req: newXFFRequest("[2001:db8::1]:443", "2001:db8::c1, 2001:db8::2"), max: 1},
		{name: "malformed entry", trust: "3", req: newXFFRequest(xffPeer, "unknown, 10.0.0.2"), max: 2},
		{name: "huge header", trust: "uniquelocal", req: newXFFRequest(xffPeer, hdrBig), max: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tp := mustTrustProxy(t, tc.trust)
			allocs := testing.AllocsPerRun(100, func() { _ = tp.ClientIP(tc.req) })
			assert.LessOrEqual(t, allocs, tc.max)
		})
	}
}

func TestParseTrustProxyGood(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{name: "unset", in: "", want: "false"},
		{name: "spaces only", in: "  \t", want: "false"},
		{name: "false", in: "false", want: "false"},
		{name: "False padded", in: " False ", want: "false"},
		{name: "zero", in: "0", want: "false"},
		{name: "zero padded with zeros", in: "00", want: "false"},
		{name: "true", in: "true", want: "1"},
		{name: "TRUE", in: "TRUE", want: "1"},
		{name: "one", in: "1", want: "1"},
		{name: "three", in: "3", want: "3"},
		{name: "leading zero", in: "03", want: "3"},
		{name: "max", in: "1000", want: "1000"},
		{name: "loopback", in: "loopback", want: "loopback"},
		{name: "names are case-insensitive", in: "LoopBack", want: "loopback"},
		{name: "name and CIDR", in: "loopback, 10.0.0.0/8", want: "loopback, 10.0.0.0/8"},
		{name: "netmask", in: "10.0.0.0/255.0.0.0", want: "10.0.0.0/8"},
		{name: "netmask all ones", in: "10.0.0.1/255.255.255.255", want: "10.0.0.1"},
		{name: "IPv6 host", in: "::1", want: "::1"},
		{name: "IPv6 host /128", in: "::1/128", want: "::1"},
		{name: "IPv6 CIDR", in: "fd00::/8", want: "fd00::/8"},
		{name: "names without spaces", in: "uniquelocal,linklocal", want: "uniquelocal, linklocal"},
		{name: "all names", in: "loopback,linklocal,uniquelocal", want: "loopback, linklocal, uniquelocal"},
		{name: "host bits masked", in: "10.1.2.3/8", want: "10.0.0.0/8"},
		{name: "IPv4 host", in: "10.0.0.1", want: "10.0.0.1"},
		{name: "IPv4 /32", in: "10.0.0.1/32", want: "10.0.0.1"},
		{name: "IPv4-mapped host", in: "::ffff:10.0.0.1", want: "10.0.0.1"},
		{name: "IPv4-mapped range", in: "::ffff:10.0.0.0/104", want: "10.0.0.0/8"},
		{name: "non-canonical IPv6", in: "2001:DB8:0::/32", want: "2001:db8::/32"},
		{name: "tabs around entries", in: "\tloopback\t,\t::1\t", want: "loopback, ::1"},
		{name: "duplicates kept", in: "loopback, loopback", want: "loopback, loopback"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTrustProxy(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got.String())

			again, err := ParseTrustProxy(got.String())
			require.NoError(t, err, "String() must parse back")
			assert.Equal(t, got, again, "String() must round-trip")
		})
	}

	t.Run("zero value", func(t *testing.T) {
		var zero TrustProxy
		assert.Equal(t, "false", zero.String())
		got, err := ParseTrustProxy("false")
		require.NoError(t, err)
		assert.Equal(t, zero, got)
		assert.Equal(t, "10.0.0.1", zero.ClientIP(newXFFRequest(xffPeer, xffThreeHop)))
	})
}

func TestParseTrustProxyBad(t *testing.T) {
	cases := []struct {
		name string
		in   string
		part string // text the message must contain besides the quoted value
	}{
		{name: "yes", in: "yes", part: "want true, false, a hop count"},
		{name: "word in a list", in: "loopback, yes", part: `list entry "yes": not an IP address`},
		{name: "negative", in: "-1", part: "hop count"},
		{name: "plus sign", in: "+1", part: "hop count"},
		{name: "too many hops", in: "1001", part: "out of range"},
		{name: "overflowing hops", in: "99999999999999999999999", part: "out of range"},
		{name: "prefix too long", in: "10.0.0.0/33", part: "prefix length 33"},
		{name: "IPv6 prefix too long", in: "::1/129", part: "prefix length 129"},
		{name: "misspelled name", in: "lo0pback", part: `"lo0pback"`},
		{name: "misspelled name in list", in: "loopback, uniqelocal", part: `"uniqelocal"`},
		{name: "five octets", in: "1.2.3.4.5", part: `"1.2.3.4.5"`},
		{name: "non-contiguous netmask", in: "10.0.0.0/255.0.255.0", part: "not contiguous"},
		{name: "empty list entry", in: "10.0.0.1,,10.0.0.2", part: "list entry 2 is empty"},
		{name: "trailing comma", in: "10.0.0.1,", part: "list entry 2 is empty"},
		{name: "only a comma", in: ",", part: "list entry 1 is empty"},
		{name: "true inside a list", in: "true, loopback", part: `"true"`},
		{name: "hop count inside a list", in: "1, loopback", part: `"1"`},
		{name: "decimal hop count", in: "1.5", part: `"1.5"`},
		{name: "zero-length IPv4 range", in: "0.0.0.0/0", part: "zero-length"},
		{name: "zero-length IPv6 range", in: "::/0", part: "zero-length"},
		{name: "zero netmask", in: "10.0.0.0/0.0.0.0", part: "zero-length"},
		{name: "all IPv4-mapped", in: "::ffff:0:0/96", part: "zero-length"},
		{name: "IPv6 range holding all IPv4-mapped", in: "::/1", part: "every IPv4-mapped address"},
		{name: "IPv6 range just wider than IPv4-mapped", in: "::ffff:0:0/95", part: "every IPv4-mapped address"},
		{name: "IPv6 zone", in: "fe80::1%eth0", part: "zone"},
		{name: "IPv6 netmask", in: "fd00::/ffff::", part: "netmasks are only allowed for IPv4"},
		{name: "IPv6 mask on IPv4", in: "10.0.0.0/ffff::", part: "netmask"},
		{name: "missing length", in: "10.0.0.0/", part: `""`},
		{name: "word as length", in: "10.0.0.0/eight", part: `"eight"`},
		{name: "double slash", in: "10.0.0.0/8/8", part: `"8/8"`},
		{name: "hostname", in: "localhost", part: `"localhost"`},
		{name: "IP with port", in: "10.0.0.1:80", part: `"10.0.0.1:80"`},
		{name: "control character", in: "loopback\n10.0.0.1", part: `\n`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTrustProxy(tc.in)
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrBadTrustProxy), "must wrap ErrBadTrustProxy: %v", err)
			assert.Contains(t, err.Error(), strconv.Quote(tc.in), "must quote the value")
			assert.Contains(t, err.Error(), tc.part)
			assert.Equal(t, TrustProxy{}, got, "a failed parse must not trust anything")
		})
	}
}

// Benchmarks. Compare the resolver cases with BenchmarkClientIPBaselineSocketPeer
// from the same run, which only parses and formats RemoteAddr.

func benchmarkClientIP(b *testing.B, setting string, r *http.Request, want string) {
	tp := mustTrustProxy(b, setting)
	require.Equal(b, want, tp.ClientIP(r))
	b.ReportAllocs()
	for b.Loop() {
		tp.ClientIP(r)
	}
}

func BenchmarkClientIPBaselineSocketPeer(b *testing.B) {
	benchmarkClientIP(b, "", newXFFRequest(xffPeer, xffThreeHop), "10.0.0.1")
}

func BenchmarkClientIPHops3(b *testing.B) {
	benchmarkClientIP(b, "3", newXFFRequest(xffPeer, xffThreeHop), "203.0.113.9")
}

func BenchmarkClientIPList(b *testing.B) {
	benchmarkClientIP(b, "loopback, uniquelocal, 198.51.100.0/24", newXFFRequest(xffPeer, xffThreeHop), "203.0.113.9")
}

func BenchmarkClientIPHops3IPv6(b *testing.B) {
	benchmarkClientIP(b, "3", newXFFRequest("[2001:db8::1]:443", "2001:db8::c1, 2001:db8::b, 2001:db8::2"), "2001:db8::c1")
}

func BenchmarkClientIPList64KiBTrusted(b *testing.B) {
	addrs, hdr := listOfAddrs(6000)
	benchmarkClientIP(b, "uniquelocal", newXFFRequest(xffPeer, hdr), addrs[len(addrs)-maxListWalk])
}
