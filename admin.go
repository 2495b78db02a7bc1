package audit

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// AdminHandler serves TREK's GET /api/admin/audit-log: one page of the list
// as JSON (see Page). It answers 403 unless authorize(r) is true, 405 for
// anything but GET and HEAD, and 400, naming the parameter, for a filter it
// cannot use: one whose value cannot be percent-decoded or that is given
// twice is refused rather than dropped, which would widen the list. limit
// and offset behave as TREK's panel expects: not a number is the default,
// out of range is clamped. Responses are never cached.
//
// Parameters: limit, offset, cursor (from next_cursor), action (a key, a
// prefix ending in '.', or a category), user_id, ip, resource, since and
// until (RFC 3339). Unknown parameters are ignored.
func (a *Auditor) AdminHandler(authorize func(*http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		// authorize first: a caller it refuses learns nothing, not even
		// which methods the list answers.
		if authorize == nil || !authorize(r) {
			writeJSON(w, http.StatusForbidden, apiError{Error: "forbidden"})
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, apiError{Error: "method not allowed"})
			return
		}
		q, perr := parseListQuery(r)
		if perr != nil {
			writeJSON(w, http.StatusBadRequest, perr)
			return
		}
		page, err := a.List(r.Context(), q)
		if err != nil {
			if errors.Is(err, ErrBadQuery) {
				writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error(), Parameter: badParam(err)})
				return
			}
			if errors.Is(err, ErrClosed) {
				// The server is stopping: no fault of the database's.
				writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "the audit log is closed: the server is stopping"})
				return
			}
			writeJSON(w, http.StatusInternalServerError, apiError{Error: "the audit log could not be read"})
			return
		}
		writeJSON(w, http.StatusOK, page)
	})
}

// apiError is the JSON body of every error answer.
type apiError struct {
	Error     string `json:"error"`
	Parameter string `json:"parameter,omitempty"`
}

// badParam is the parameter an ErrBadQuery is about, "" if it names none.
func badParam(err error) string {
	var qe *queryError
	if errors.As(err, &qe) {
		return qe.param
	}
	return ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// listParams are the parameters the admin list reads, each with whether it
// is a filter (or the cursor): one that narrows or places the page, so that
// losing it would show rows the admin did not ask for. limit and offset are
// not: they never fail.
var listParams = map[string]bool{
	"limit": false, "offset": false,
	"cursor": true, "action": true, "user_id": true, "ip": true, "resource": true, "since": true, "until": true,
}

// listQueryValues reads the list's parameters from the raw query, pair by
// pair, rather than through url.Values: ParseQuery drops without a word a
// pair it cannot decode (a '%' not followed by two hexadecimal digits, an
// unescaped ';', which other servers take for a separator) and every pair
// of a query with more than 10,000, and Get takes the first of a repeated
// parameter. A filter lost that way widens the list to every row. So a
// filter whose value cannot be decoded, that is given more than once, or
// that follows a ';' anywhere, is an error naming it. limit and offset never fail, as TREK's panel
// expects: one that cannot be decoded is not a number, and the first of
// several counts. Other parameters, and names that cannot be decoded (no
// name the list knows), are ignored.
func listQueryValues(raw string) (map[string]string, *apiError) {
	vals := make(map[string]string, len(listParams))
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		// A filter after a ';' is a filter to a server that takes ';' for
		// '&', and inside another pair's value here: refused, wherever it
		// stands, so that it cannot be lost in a lenient limit or offset,
		// or in a parameter the list ignores.
		if _, after, ok := strings.Cut(pair, ";"); ok {
			for piece := range strings.SplitSeq(after, ";") {
				k, _, _ := strings.Cut(piece, "=")
				if name, err := url.QueryUnescape(k); err == nil && listParams[name] {
					return nil, &apiError{Error: name + " follows a ';', which does not separate parameters here: " +
						"separate them with '&', and write a ';' in a value as %3B", Parameter: name}
				}
			}
		}
		k, v, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(k)
		filter, known := listParams[name]
		if err != nil || !known {
			continue
		}
		if _, seen := vals[name]; seen {
			if filter {
				return nil, &apiError{Error: name + " is given more than once; give each filter once", Parameter: name}
			}
			continue
		}
		value, err := url.QueryUnescape(v)
		if err != nil || strings.Contains(v, ";") {
			if filter {
				return nil, &apiError{Error: name + " cannot be decoded: write '%' as %25 and ';' as %3B", Parameter: name}
			}
			value = ""
		}
		vals[name] = value
	}
	return vals, nil
}

// parseListQuery reads the list's parameters. limit and offset never fail
// (TREK's panel relies on the defaults); every filter does, with the name of
// the parameter.
func parseListQuery(r *http.Request) (Query, *apiError) {
	var q Query
	v, perr := listQueryValues(r.URL.RawQuery)
	if perr != nil {
		return q, perr
	}
	// As TREK's server reads them (parseInt(limit) || 100, and the same
	// for offset with 0): not a number and 0 give the default; List clamps
	// the rest to 1..500. A number too large for an int is still a number:
	// clamped, not the default, so that an offset past the end is an empty
	// page rather than the first.
	q.Limit = parseIntClamped(v["limit"], 0)
	q.Offset = max(parseIntClamped(v["offset"], 0), 0)
	q.Cursor = v["cursor"]
	q.Action = v["action"]
	q.IP = v["ip"]
	q.Resource = v["resource"]
	if s := v["user_id"]; s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return q, &apiError{Error: "user_id must be a positive integer", Parameter: "user_id"}
		}
		q.UserID = n
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if s := v[p.name]; s != "" {
			// An unencoded '+' of a zone offset arrives as a space.
			t, err := time.Parse(time.RFC3339, strings.ReplaceAll(s, " ", "+"))
			if err != nil {
				return q, &apiError{Error: p.name + " must be an RFC 3339 time, e.g. 2026-04-20T08:00:00Z", Parameter: p.name}
			}
			// The zero time would read as no bound at all (see Query).
			if t.IsZero() || !inTimeRange(t) {
				return q, &apiError{Error: p.name + " must be a time after 0001-01-01T00:00:00Z and before the year 10000", Parameter: p.name}
			}
			*p.dst = t
		}
	}
	return q, nil
}

// parseIntClamped reads an integer as JavaScript's parseInt(s) does,
// which TREK's server uses: after any leading white space and a sign, the
// digits up to the first that is not one, hexadecimal after "0x" ("20.0"
// is 20, "10abc" 10, "0x10" 16). It saturates at the int range when the
// number is too large either way; text with no digits there gives def.
func parseIntClamped(s string, def int) int {
	s = strings.TrimLeftFunc(s, jsSpace)
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg, s = s[0] == '-', s[1:]
	}
	base := 10
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		base, s = 16, s[2:]
	}
	digits := 0
	for digits < len(s) && digitValue(s[digits]) < base {
		digits++
	}
	if digits == 0 {
		return def
	}
	n, err := strconv.ParseUint(s[:digits], base, 64)
	switch {
	case (err != nil || n > math.MaxInt) && neg:
		return math.MinInt
	case err != nil || n > math.MaxInt:
		return math.MaxInt
	case neg:
		return -int(n)
	}
	return int(n)
}

// digitValue is the value of c as a hexadecimal digit, 16 if it is none.
func digitValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return 16
}

// jsSpace is the white space and line terminators JavaScript's parseInt
// skips: tab, vertical tab, form feed, the space separators (Zs, which
// include the no-break space), U+FEFF and the line terminators.
func jsSpace(r rune) bool {
	switch r {
	case '\t', '\v', '\f', '\n', '\r', '\u2028', '\u2029', '\ufeff':
		return true
	}
	return unicode.Is(unicode.Zs, r)
}
