package audit

// Client IP resolution for audit records.
//
// The audit log records who did something, and "who" includes the client's
// IP address. Behind a reverse proxy the socket peer is the proxy, so the
// real client has to be read from X-Forwarded-For. That header is written
// partly by the client, and therefore cannot be believed blindly: only the
// entries appended by proxies we trust are meaningful. TRUST_PROXY says which
// proxies those are. It means what Express's "trust proxy" setting means
// (TREK's Node server uses Express), so that the audit log and the rest of
// TREK agree on the client address; the few deliberate differences are
// documented on ParseTrustProxy and ClientIP.

import (
	"errors"
	"fmt"
	"math/bits"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// ErrBadTrustProxy is wrapped by every error ParseTrustProxy returns, so
// callers can tell a configuration mistake apart with errors.Is. The wrapping
// error's message quotes the offending TRUST_PROXY value and names the part
// of it that is wrong, because a startup error that does not say what to fix
// just gets the setting deleted.
var ErrBadTrustProxy = errors.New("audit: invalid TRUST_PROXY")

const (
	// maxHops bounds a numeric TRUST_PROXY. No real deployment has
	// anywhere near this many proxies; the bound catches typos and keeps
	// the per-request walk (at most maxHops header entries) small.
	maxHops = 1000

	// maxListWalk bounds how many X-Forwarded-For entries are examined when
	// TRUST_PROXY is a list of trusted ranges. Unlike a hop count, the
	// length of that walk is influenced by the client (it can send many
	// addresses that happen to fall in a trusted range), so it is capped.
	// When the cap is reached the walk stops at the last address examined,
	// which is a trusted address, never one beyond it.
	maxListWalk = 100

	// maxEntryLen is the longest X-Forwarded-For entry (after trimming) or
	// RemoteAddr that is parsed at all. The longest legitimate form,
	// "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%zone]:65535", is 54
	// bytes plus the zone; anything much longer is junk and is rejected
	// without parsing.
	maxEntryLen = 128

	xffHeader = "X-Forwarded-For" // canonical form, as http.Header stores it
)

// namedRanges are the range names Express's proxy-addr understands, with the
// same contents.
var namedRanges = map[string][]netip.Prefix{
	"loopback": {
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("::1/128"),
	},
	"linklocal": {
		netip.MustParsePrefix("169.254.0.0/16"),
		netip.MustParsePrefix("fe80::/10"),
	},
	"uniquelocal": {
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("fc00::/7"),
	},
}

// unixPeerAddr is the address a Unix-domain-socket peer is matched as
// against a list of trusted ranges; see ClientIP.
var unixPeerAddr = netip.AddrFrom4([4]byte{127, 0, 0, 1})

// TrustProxy is a parsed TRUST_PROXY setting: which hops of a request's
// forwarding chain are trusted proxies, and therefore where in
// X-Forwarded-For the client address is found.
//
// It is parsed once at startup with ParseTrustProxy and is then immutable,
// so a single value may be used by any number of goroutines at once.
//
// The zero value trusts nothing: ClientIP returns the socket peer and
// ignores X-Forwarded-For. That is the safe default, because without a
// trusted proxy in front every byte of X-Forwarded-For comes from the client.
type TrustProxy struct {
	// hops is the number of trusted hops when nets is empty. hops == 0
	// with nets empty means "trust nothing".
	hops int
	// nets, when non-empty, selects list mode: an address is a trusted
	// proxy when it lies in one of these ranges. Addresses are stored
	// unmapped (IPv4-mapped IPv6 /96 and longer become IPv4) and masked.
	nets []netip.Prefix
	// text is the normalised list, for String; only set in list mode.
	text string
}

// ParseTrustProxy parses a TRUST_PROXY setting. Spaces and tabs around the
// whole setting and around each entry of a list are ignored; within an
// entry ("10.0.0.0/ 8") they are an error. The accepted forms are:
//
//   - "", "false" or "0": trust nothing; ClientIP returns the socket peer.
//   - "true": trust exactly one hop. Note that this is NOT Express's
//     meaning of true (trust every hop, i.e. believe the leftmost,
//     client-written entry); it is what TREK's Node server does with
//     TRUST_PROXY=true today, and the safe reading for the usual single
//     reverse proxy.
//   - a decimal number N from 0 to 1000: trust N hops (Express's numeric
//     "trust proxy"). N must be exactly the number of proxies in front of
//     TREK; a larger N lets clients choose their recorded address.
//   - a comma-separated list of IP addresses, CIDR ranges (10.0.0.0/8),
//     IPv4 netmask ranges (10.0.0.0/255.0.0.0) and the names "loopback",
//     "linklocal" and "uniquelocal": trust hops whose address is in the list
//     (Express's string "trust proxy", with proxy-addr's semantics).
//
// "true" and "false" and the range names are matched case-insensitively.
//
// A range of length 0 (0.0.0.0/0, ::/0, netmask 0.0.0.0, all of which
// proxy-addr rejects too, and ::ffff:0:0/96, which here means the same as
// 0.0.0.0/0) is rejected: it would trust every address, so any client could
// forge its recorded address. So is an IPv6 range that holds all of
// ::ffff:0:0/96 (::/1, ::ffff:0:0/95), which trusts every IPv4 client.
// Empty list entries ("10.0.0.1,,10.0.0.2"), IPv6 zones and non-contiguous
// netmasks are rejected as well. A range with host bits set (10.0.0.1/8) is
// accepted, as proxy-addr does, and normalised to its network (10.0.0.0/8);
// String shows the effective ranges.
//
// Every error wraps ErrBadTrustProxy and quotes the bad value.
func ParseTrustProxy(s string) (TrustProxy, error) {
	v := trimOWS(s)
	switch {
	case v == "" || strings.EqualFold(v, "false"):
		return TrustProxy{}, nil
	case strings.EqualFold(v, "true"):
		return TrustProxy{hops: 1}, nil
	case isDigits(v):
		n, err := strconv.Atoi(v)
		if err != nil || n > maxHops {
			return TrustProxy{}, badTrustProxy(s, "hop count %s is out of range 0..%d", v, maxHops)
		}
		return TrustProxy{hops: n}, nil
	case (v[0] == '-' || v[0] == '+') && isDigits(v[1:]):
		return TrustProxy{}, badTrustProxy(s, "hop count must be a plain number from 0 to %d", maxHops)
	}

	parts := strings.Split(v, ",")
	t := TrustProxy{nets: make([]netip.Prefix, 0, len(parts))}
	norm := make([]string, 0, len(parts))
	for i, part := range parts {
		part = trimOWS(part)
		if part == "" {
			return TrustProxy{}, badTrustProxy(s, "list entry %d is empty", i+1)
		}
		if name := strings.ToLower(part); namedRanges[name] != nil {
			t.nets = append(t.nets, namedRanges[name]...)
			norm = append(norm, name)
			continue
		}
		p, err := parseTrustedRange(part)
		switch {
		case err == nil:
		case len(parts) == 1 && errors.Is(err, errNotAddr):
			return TrustProxy{}, badTrustProxy(s, "want true, false, a hop count from 0 to %d, or a comma-separated list of IP addresses, CIDR ranges and the names loopback, linklocal, uniquelocal (%v)", maxHops, errors.Unwrap(err))
		case len(parts) == 1:
			return TrustProxy{}, badTrustProxy(s, "%v", err)
		default:
			return TrustProxy{}, badTrustProxy(s, "list entry %q: %v", part, err)
		}
		t.nets = append(t.nets, p)
		norm = append(norm, formatRange(p))
	}
	t.text = strings.Join(norm, ", ")
	return t, nil
}

// badTrustProxy builds a ParseTrustProxy error: it wraps ErrBadTrustProxy and
// quotes the whole setting (with %q, so control characters in a hostile or
// mangled environment variable cannot forge log lines).
func badTrustProxy(value, format string, args ...any) error {
	return fmt.Errorf("%w %q: %s", ErrBadTrustProxy, value, fmt.Sprintf(format, args...))
}

// errNotAddr is matched (errors.Is) by the error parseTrustedRange returns for
// an entry that is not even an IP address, so that ParseTrustProxy can list
// the accepted forms. It never escapes this file.
var errNotAddr = errors.New("not an IP address, CIDR range or one of loopback, linklocal, uniquelocal")

// notAddrError carries netip's reason along with errNotAddr.
type notAddrError struct{ cause error }

func (e notAddrError) Error() string        { return errNotAddr.Error() + " (" + e.cause.Error() + ")" }
func (e notAddrError) Is(target error) bool { return target == errNotAddr }
func (e notAddrError) Unwrap() error        { return e.cause }

// parseTrustedRange parses one list entry that is not a range name: an IP
// address, addr/bits, or IPv4 addr/netmask. The result is masked, and
// IPv4-mapped IPv6 ranges of /96 or longer are converted to IPv4, because
// ClientIP unmaps every address before matching.
func parseTrustedRange(s string) (netip.Prefix, error) {
	addrText, bitsText, hasBits := strings.Cut(s, "/")
	addr, err := netip.ParseAddr(addrText)
	if err != nil {
		return netip.Prefix{}, notAddrError{err}
	}
	if addr.Zone() != "" {
		return netip.Prefix{}, errors.New("IPv6 zones are not allowed")
	}
	n := addr.BitLen()
	if hasBits {
		switch {
		case isDigits(bitsText) && len(bitsText) <= 3:
			n, _ = strconv.Atoi(bitsText) // cannot fail: at most 3 digits
			if n > addr.BitLen() {
				return netip.Prefix{}, fmt.Errorf("prefix length %d is longer than %d bits", n, addr.BitLen())
			}
		case addr.Is4():
			mask, err := netip.ParseAddr(bitsText)
			if err != nil || !mask.Is4() {
				return netip.Prefix{}, fmt.Errorf("%q is neither a prefix length nor an IPv4 netmask", bitsText)
			}
			var ok bool
			if n, ok = maskBits(mask); !ok {
				return netip.Prefix{}, fmt.Errorf("netmask %s is not contiguous", mask)
			}
		default:
			return netip.Prefix{}, fmt.Errorf("%q is not a prefix length (netmasks are only allowed for IPv4)", bitsText)
		}
	}
	if addr.Is4In6() && n >= 96 {
		addr, n = addr.Unmap(), n-96
	}
	if n == 0 {
		return netip.Prefix{}, errors.New("a zero-length range would trust every address, letting any client choose its recorded IP")
	}
	p := netip.PrefixFrom(addr, n).Masked()
	if p.Addr().Is6() && n <= 96 && p.Contains(netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff})) {
		// It holds ::ffff:0:0/96, and so, matched as IPv4-mapped
		// addresses (see trusts), every IPv4 client.
		return netip.Prefix{}, errors.New("the range holds every IPv4-mapped address (::ffff:0:0/96), so it would trust every IPv4 client, letting any of them choose its recorded IP")
	}
	return p, nil
}

// maskBits returns the prefix length of a contiguous IPv4 netmask.
func maskBits(mask netip.Addr) (int, bool) {
	b := mask.As4()
	m := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	host := ^m
	if host&(host+1) != 0 { // host bits must be a run of ones at the bottom
		return 0, false
	}
	return bits.OnesCount32(m), true
}

// formatRange writes a range the way ParseTrustProxy reads it back: a single
// address without a length, otherwise canonical CIDR notation.
func formatRange(p netip.Prefix) string {
	if p.Bits() == p.Addr().BitLen() {
		return p.Addr().String()
	}
	return p.String()
}

// String returns the setting in normalised form, for startup logs and
// documentation: "false" when nothing is trusted, the hop count as a number
// ("true" is shown as "1", which is what it means), or the list with names
// lowercased, netmasks converted to prefix lengths, ranges masked to their
// network and single addresses written without a length, joined by ", ".
// ParseTrustProxy(t.String()) yields an equivalent setting.
func (t TrustProxy) String() string {
	switch {
	case len(t.nets) > 0:
		return t.text
	case t.hops == 0:
		return "false"
	default:
		return strconv.Itoa(t.hops)
	}
}

// ClientIP returns the address of the client that sent r, as a canonical IP
// string (netip.Addr.String form: no port, no brackets, no IPv6 zone, and an
// IPv4-mapped IPv6 address written as plain IPv4), for recording in the audit
// log. It never returns text taken verbatim from a header.
//
// It follows Express's req.ip (proxy-addr): the candidate addresses are the
// socket peer (r.RemoteAddr) followed by the X-Forwarded-For entries from
// right to left, all header lines taken together in order as if joined with
// commas. The walk starts at the socket peer and moves left while the current
// hop is a trusted proxy:
//
//   - trust nothing: the socket peer; X-Forwarded-For is not read.
//   - N hops: the candidate N steps from the socket peer, or the leftmost
//     entry if the header is shorter.
//   - a list: the first candidate that is not in a trusted range, or the
//     leftmost entry if all of them are. At most 100 entries are examined;
//     if all of those are trusted, the 100th is returned.
//
// Only X-Forwarded-For is consulted, as in Express; Forwarded and X-Real-IP
// are ignored.
//
// Entries are trimmed of spaces and tabs. "1.2.3.4:5678", "[2001:db8::1]:443"
// and "[2001:db8::1]" are accepted and the port dropped, because some proxies
// write ports; an IPv6 zone is accepted and dropped. Anything else that is
// not an IP address (an empty entry, "unknown", an RFC 7239 "_hidden"
// identifier, markup, an out-of-range port, an over-long entry) is malformed,
// and a malformed entry ends the walk: the result is the last valid address
// walked through, which is always closer to the server than the malformed
// entry. This differs from Express, which would return the malformed text.
//
// Why stopping (rather than skipping the bad entry) is safe: trusted proxies
// only ever append well-formed addresses, at the right-hand end, so the part of
// the header a client controls lies entirely to the left of them. Walking from
// the right, every entry written by a trusted proxy is reached before any
// client-written one, so a malformed entry is met no earlier than the first
// client-controlled position, and stopping there returns an address at least
// as close to the server as the honest answer. (If a proxy of ours writes a
// malformed entry itself, as some write "unknown", the result is the address
// of that proxy: still ours, never chosen by the client.) Skipping the entry
// instead would shift the client's next entry one hop closer, into the
// position that hop counting believes, which is exactly the spoof hop
// counting exists to stop.
//
// The socket peer is r.RemoteAddr in any form net/http produces ("host:port",
// "[v6]:port") or a bare IP. A Unix-domain-socket peer ("", "@", "@name" or a
// "/path") is a local process, typically a reverse proxy on the same machine:
// it counts as a hop, and in list mode it is matched as 127.0.0.1, so that
// "loopback" trusts it. It has no IP address of its own, though, so if the
// walk ends on it the result is "" (unknown). "" is also returned for a nil
// request or a RemoteAddr that is neither an IP nor a Unix socket name,
// without reading X-Forwarded-For: if the server cannot tell who it is
// talking to, it cannot judge whether that peer's header is trustworthy.
// Those are the only cases in which ClientIP returns "".
//
// The work per call is bounded: the header is scanned from the right without
// splitting or copying it, at most N entries (hop count) or 100 (list) are
// parsed, entries longer than 128 bytes are rejected unparsed, and on the
// normal path the only allocation is the returned string.
func (t TrustProxy) ClientIP(r *http.Request) string {
	if r == nil {
		return ""
	}
	peer, unix, ok := parsePeer(r.RemoteAddr)
	if !ok {
		return ""
	}
	best := peer // invalid (=> "") for a Unix socket peer
	if len(t.nets) == 0 && t.hops == 0 {
		return addrString(best)
	}
	if unix {
		peer = unixPeerAddr
	}
	if !t.trusts(peer, 0) {
		return addrString(best)
	}

	limit := t.hops
	if len(t.nets) > 0 {
		limit = maxListWalk
	}
	w := xffWalker{lines: r.Header.Values(xffHeader)}
	for i := 1; i <= limit; i++ {
		entry, more := w.next()
		if !more {
			break // ran out of entries: the leftmost one is the answer
		}
		addr, ok := parseHostPort(trimOWS(entry))
		if !ok {
			break // malformed: stop at the nearest valid address
		}
		best = addr
		if !t.trusts(addr, i) {
			break
		}
	}
	return addrString(best)
}

// trusts reports whether candidate i (0 = socket peer) is a trusted proxy,
// meaning the walk may move past it to the next entry on the left.
func (t TrustProxy) trusts(addr netip.Addr, i int) bool {
	if len(t.nets) == 0 {
		return i < t.hops
	}
	// Addresses arrive unmapped, so an IPv4-mapped address matches IPv4
	// ranges; an IPv4 address never matches an IPv6 range. (proxy-addr
	// would match it against one shorter than /96 that holds its mapped
	// form, such as ::/1: ParseTrustProxy refuses those, and stores longer
	// IPv4-mapped ranges as IPv4.)
	for _, p := range t.nets {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// parsePeer classifies r.RemoteAddr: an IP address (with or without a port),
// a Unix-domain socket peer, or unusable (ok == false). net/http reports a
// Unix socket peer as its bound name: "@" for an unnamed socket on Linux,
// "@name" for an abstract one, a path, or "" where the platform gives no
// name.
func parsePeer(s string) (addr netip.Addr, unix, ok bool) {
	if s == "" || s[0] == '@' || s[0] == '/' {
		return netip.Addr{}, true, true
	}
	addr, ok = parseHostPort(s)
	return addr, false, ok
}

// parseHostPort parses "ip", "ipv4:port", "[ipv6]:port" or "[ipv6]" and
// returns the address unmapped and without a zone. It accepts exactly what
// netip.ParseAddr, or failing that netip.ParseAddrPort, accepts (plus the
// bracketed form without a port), but picks the form from the shape of s
// first, because a failed netip parse allocates an error and this runs on
// every request.
func parseHostPort(s string) (netip.Addr, bool) {
	if s == "" || len(s) > maxEntryLen {
		return netip.Addr{}, false
	}
	host := s
	wantV4, wantV6 := false, false
	if s[0] == '[' {
		wantV6 = true
		if s[len(s)-1] == ']' {
			host = s[1 : len(s)-1]
		} else {
			i := strings.LastIndexByte(s, ':')
			if i < 2 || s[i-1] != ']' || !validPort(s[i+1:]) {
				return netip.Addr{}, false
			}
			host = s[1 : i-1]
		}
	} else if i := strings.IndexByte(s, ':'); i >= 0 && strings.IndexByte(s[i+1:], ':') < 0 {
		// Exactly one colon: IPv4 with a port. (An IPv6 address has at
		// least two colons, and an unbracketed one cannot carry a port.)
		if !validPort(s[i+1:]) {
			return netip.Addr{}, false
		}
		host, wantV4 = s[:i], true
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || (wantV4 && !addr.Is4()) || (wantV6 && !addr.Is6()) {
		return netip.Addr{}, false
	}
	return addr.Unmap().WithZone(""), true
}

// validPort reports whether s is a decimal port number 0..65535, with the
// same leniency as strconv.ParseUint (leading zeros allowed).
func validPort(s string) bool {
	if s == "" {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
		if n > 65535 {
			return false
		}
	}
	return true
}

// addrString formats a resolved address; the invalid Addr (a Unix socket
// peer) is "".
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// xffWalker yields the entries of a multi-line header from right to left, as
// if the lines had been joined with commas, without joining or splitting
// them: each step slices off the text after the last remaining comma, so a
// large header is neither copied nor scanned beyond the entries walked.
type xffWalker struct {
	lines []string // lines not yet started, consumed from the end
	cur   string   // unconsumed part of the current line
	open  bool     // whether cur still holds at least one entry
}

func (w *xffWalker) next() (string, bool) {
	if !w.open {
		n := len(w.lines)
		if n == 0 {
			return "", false
		}
		w.cur, w.lines, w.open = w.lines[n-1], w.lines[:n-1], true
	}
	if i := strings.LastIndexByte(w.cur, ','); i >= 0 {
		entry := w.cur[i+1:]
		w.cur = w.cur[:i]
		return entry, true
	}
	w.open = false
	return w.cur, true
}

// trimOWS trims the optional whitespace HTTP allows around list elements:
// spaces and horizontal tabs.
func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// isDigits reports whether s is a non-empty run of ASCII decimal digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
