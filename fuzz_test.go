package audit

// Fuzz targets for what hostile input reaches: the details encoder and its
// redaction, the trek.log line writers (events' and LogHandler's), the
// reader of trek.log's chain heads, the admin list's query string, and
// rows others wrote to audit_log and to audit_chain_acks.
// Under plain `go test` they run their seeds; CI runs each for a bounded
// time with -fuzz.

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// fuzzSecretNeedles is the test's own reading of the redaction rule: a key
// is secret when, lower-cased and with only its letters and digits, it
// contains one of the default secret names written the same way, or is
// pass, pin or otp.
var fuzzSecretNeedles = func() []string {
	var out []string
	for _, k := range DefaultSecretKeys {
		out = append(out, fuzzNormalise(k))
	}
	return out
}()

func fuzzNormalise(k string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return r
		}
		return -1
	}, strings.ToLower(k))
}

func fuzzIsSecret(k string) bool {
	n := fuzzNormalise(k)
	return n == "pass" || n == "pin" || n == "otp" ||
		slices.ContainsFunc(fuzzSecretNeedles, func(s string) bool { return strings.Contains(n, s) })
}

// fuzzStoredKey is the text as encoding/json writes it: each invalid UTF-8
// byte becomes U+FFFD.
func fuzzStoredKey(k string) string {
	b, _ := json.Marshal(k)
	var s string
	json.Unmarshal(b, &s)
	return s
}

// fuzzCheckRedacted fails for any value under a secret key, at any depth,
// that is not the redaction marker.
func fuzzCheckRedacted(t *testing.T, v any, path string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if fuzzIsSecret(k) {
				if x != redactedValue {
					t.Fatalf("value under secret key %s/%q survived: %v", path, k, x)
				}
				continue
			}
			fuzzCheckRedacted(t, x, path+"/"+k)
		}
	case []any:
		for i, x := range v {
			fuzzCheckRedacted(t, x, path+"/"+strconv.Itoa(i))
		}
	}
}

// fuzzSurvived reports whether a plain string value came through: whole, or
// (when the details were truncated) cut down with the mark, or left out.
func fuzzSurvived(got any, present, truncated bool, want string) bool {
	if !present {
		return truncated
	}
	s, ok := got.(string)
	if !ok {
		return false
	}
	if s == want {
		return true
	}
	prefix, marked := strings.CutSuffix(s, truncatedMark)
	return truncated && marked && strings.HasPrefix(want, prefix)
}

func FuzzDetails(f *testing.F) {
	// key, value, value repeat, nested key, nested value, extra keys, key repeat
	f.Add("title", "Lisbon", uint16(1), "trip", "tripId", "12", uint8(0), uint8(1))
	f.Add("password", "hunter2", uint16(1), "oidc", "client_secret", "s3cr3t", uint8(0), uint8(1))
	f.Add("API-Key", "k", uint16(1), "Headers", "Set-Cookie", "sid=1", uint8(0), uint8(1))
	f.Add("to\u212aen", "kelvin", uint16(1), "x", "pass\u212Aword", "nested-kelvin", uint8(0), uint8(1))
	f.Add("notes", "lorem ipsum ", uint16(9000), "n", "k", "v", uint8(0), uint8(1))
	f.Add("html", "<&>", uint16(30000), "small", "keep", "me", uint8(0), uint8(1))
	f.Add("ctl", "\x01\x1b", uint16(40000), "small", "keep", "me", uint8(0), uint8(1))
	f.Add("k", "v", uint16(1), "many", "<<<<<<<<", "1", uint8(12), uint8(250))
	f.Add("k\xff", "v\x80", uint16(1), "\xfe", "\xc0\xaf", "\xed\xa0\x80", uint8(2), uint8(1))
	f.Add("\u2028", "\u2029", uint16(1), "\u202e", "", "", uint8(0), uint8(0))
	f.Add("", "", uint16(0), "", "", "", uint8(0), uint8(0))
	f.Add("_truncated", "yes", uint16(1), "_original_size", "x", "y", uint8(0), uint8(1))
	r := newRedactor(nil)
	f.Fuzz(func(t *testing.T, k1, v1 string, rep uint16, k2, nk, nv string, extra, keyRep uint8) {
		// Amplify to reach the size limit, up to ~128 KiB of input.
		v := v1
		if rep > 1 && v1 != "" {
			v = strings.Repeat(v1, min(int(rep), (128<<10)/len(v1)+1))
		}
		details := map[string]any{}
		if nk != "" {
			base := strings.Repeat(nk, min(int(keyRep), (8<<10)/len(nk)+1))
			for i := range int(extra) % 64 {
				details[base+strconv.Itoa(i)] = nv
			}
		}
		details[k2] = map[string]any{nk: nv}
		details[k1] = v

		enc, err := r.encode(details)
		if err != nil {
			t.Fatalf("strings are always encodable, got %v", err)
		}
		if len(enc) > maxDetailsLen {
			t.Fatalf("encoded details are %d bytes, over %d", len(enc), maxDetailsLen)
		}
		if !utf8.Valid(enc) {
			t.Fatalf("encoded details are not valid UTF-8: %q", enc)
		}
		var tree map[string]any
		if err := json.Unmarshal(enc, &tree); err != nil || tree == nil {
			t.Fatalf("encoded details are not a JSON object: %v: %q", err, enc)
		}
		fuzzCheckRedacted(t, tree, "")

		// Plain values under plain keys come through, unless cut down.
		truncated := tree["_truncated"] == true
		stored := map[string]int{}
		for k := range details {
			stored[fuzzStoredKey(k)]++
		}
		plain := func(k string) bool {
			return utf8.ValidString(k) && !fuzzIsSecret(k) && stored[k] == 1 && !strings.HasPrefix(k, "_")
		}
		for k, val := range details {
			if !plain(k) {
				continue
			}
			got, present := tree[k]
			switch val := val.(type) {
			case string:
				if utf8.ValidString(val) && !fuzzSurvived(got, present, truncated, val) {
					t.Fatalf("value of %q: got %q, want %q (truncated: %v)", k, got, val, truncated)
				}
			case map[string]any:
				if !present {
					if !truncated {
						t.Fatalf("nested object %q lost without truncation", k)
					}
					continue
				}
				m, ok := got.(map[string]any)
				if !ok {
					t.Fatalf("nested object %q became %T", k, got)
				}
				for nk, nv := range val {
					s := nv.(string)
					if utf8.ValidString(nk) && !fuzzIsSecret(nk) && utf8.ValidString(s) && m[nk] != s {
						t.Fatalf("nested value %q/%q: got %v, want %q", k, nk, m[nk], s)
					}
				}
			}
		}
	})
}

// fuzzCheckLine checks one log line and returns it without its prefix.
func fuzzCheckLine(t *testing.T, line, prefix string) string {
	if !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 {
		t.Fatalf("not exactly one newline, at the end: %q", line)
	}
	if !utf8.ValidString(line) {
		t.Fatalf("not valid UTF-8: %q", line)
	}
	for _, r := range strings.TrimSuffix(line, "\n") {
		// Printable covers control characters, U+2028/2029, bidi
		// overrides and the other format characters; the rest are the
		// printable runes that show as nothing or a blank.
		if !unicode.IsPrint(r) || r == '\u2800' || unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) ||
			unicode.Is(unicode.Variation_Selector, r) {
			t.Fatalf("unprintable %U in %q", r, line)
		}
	}
	rest, ok := strings.CutPrefix(line, prefix)
	if !ok {
		t.Fatalf("does not start with %q: %q", prefix, line)
	}
	return rest
}

// fuzzToken reads one field of the line: a Go-quoted string or a bare word.
func fuzzToken(t *testing.T, s, what string) (value, rest string) {
	if strings.HasPrefix(s, `"`) {
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			t.Fatalf("%s: bad quoting in %q: %v", what, s, err)
		}
		v, err := strconv.Unquote(q)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v, s[len(q):]
	}
	i := strings.IndexAny(s, " \n")
	if i < 0 {
		t.Fatalf("%s: no end in %q", what, s)
	}
	return s[:i], s[i:]
}

func FuzzLogLine(f *testing.F) {
	f.Add("alice@example.com", "alice", int64(7), "Lisbon", `{"k":"v"}`, "203.0.113.9")
	f.Add("", "", int64(0), "", "", "")
	f.Add("", "bob smith", int64(3), `My "best" trip\`, "x", "::1")
	f.Add("", "", int64(42), "trip", "", "")
	f.Add("evil\n[INFO] 2026-04-20T10:11:53 admin@example.com deleted trip \"x\" ip=1.2.3.4", "u", int64(1), "t\r\n[DEBUG] forged", "\n", "1.2.3.4\nip=5")
	f.Add("\u2028\u2029", "\u202e", int64(-1), "\x1b[31mred\x1b[0m", "\u2028", "\x00")
	f.Add("\xff\xfe", "\xc0", int64(1), "\xed\xa0\x80", "\xff", "\x80")
	f.Add("a\u00a0b", "\u200b", int64(1), "🚀 ☃", "\U0010FFFF", "\ufeff")
	f.Add("-", "anonymous", int64(1<<62), "ip=-", "null", "-")
	f.Add("", "user#7", int64(3), "", "", "")
	f.Add("", "ip=203.0.113.66", int64(5), "", "", "198.51.100.7")
	r := newRedactor(nil)
	created := time.Date(2026, 4, 20, 8, 11, 53, 0, time.UTC)
	f.Fuzz(func(t *testing.T, email, username string, userID int64, subject, detail, ip string) {
		enc, err := r.encode(map[string]any{"note": detail, "title": subject})
		if err != nil {
			t.Fatal(err)
		}
		p := &pending{
			row: row{createdAt: created, userID: userID, username: username, email: email,
				action: UserLogin, details: enc, ip: ip},
			label:   "logged in",
			subject: subject,
		}
		info := string(appendInfoLine(nil, p, time.UTC))
		rest := fuzzCheckLine(t, info, "[INFO] 2026-04-20T08:11:53 ")
		wantActor := "anonymous"
		switch {
		case email != "":
			wantActor = email
		case username != "":
			wantActor = username
		case userID != 0:
			wantActor = "user#" + strconv.FormatInt(userID, 10)
		}
		bare := !strings.HasPrefix(rest, `"`)
		actor, rest := fuzzToken(t, rest, "actor")
		if actor != wantActor {
			t.Fatalf("actor reads %q, want %q, in %q", actor, wantActor, info)
		}
		// Written bare, "anonymous" and "user#N" are the line's own words
		// for an actor it cannot name, and '=' marks a field: a name may
		// read as neither.
		placeholder := actor == "anonymous" || strings.HasPrefix(actor, "user#")
		if bare && (placeholder != (email == "" && username == "") || strings.Contains(actor, "=")) {
			t.Fatalf("actor %q written bare passes for something it is not, in %q", actor, info)
		}
		rest, ok := strings.CutPrefix(rest, " logged in")
		if !ok {
			t.Fatalf("no label after the actor in %q", info)
		}
		if subject != "" {
			var got string
			got, rest = fuzzToken(t, strings.TrimPrefix(rest, " "), "subject")
			if got != subject {
				t.Fatalf("subject reads %q, want %q, in %q", got, subject, info)
			}
		}
		rest, ok = strings.CutPrefix(rest, " ip=")
		if !ok {
			t.Fatalf("no ip= field in %q", info)
		}
		gotIP, rest := fuzzToken(t, rest, "ip")
		if wantIP := cmp.Or(ip, "-"); gotIP != wantIP {
			t.Fatalf("ip reads %q, want %q, in %q", gotIP, wantIP, info)
		}
		if rest != "\n" {
			t.Fatalf("trailing %q in %q", rest, info)
		}

		debug := string(appendDebugLine(nil, p, time.UTC))
		rest = fuzzCheckLine(t, debug, "[DEBUG] 2026-04-20T08:11:53 AUDIT user.login userId=")
		wantID := "null"
		if userID != 0 {
			wantID = strconv.FormatInt(userID, 10)
		}
		rest, ok = strings.CutPrefix(rest, wantID+" ")
		if !ok {
			t.Fatalf("userId is not %s in %q", wantID, debug)
		}
		var got, want any
		if err := json.Unmarshal([]byte(strings.TrimSuffix(rest, "\n")), &got); err != nil {
			t.Fatalf("details in the debug line are not JSON: %v: %q", err, debug)
		}
		require.NoError(t, json.Unmarshal(enc, &want))
		require.Equal(t, want, got, "details in the debug line")
	})
}

func FuzzAdminQuery(f *testing.F) {
	for _, q := range []string{
		"", "limit=abc", "limit=0", "limit=-1", "limit=100000", "limit=2&offset=1", "offset=-5",
		"offset=99999999999999999999", "offset=9223372036854775807", "limit=1&offset=2",
		"cursor=abc", "cursor=0", "cursor=-1", "cursor=9223372036854775807", "limit=2&cursor=4",
		"action=trip.", "action=Trips", "action=oauth", "action=nope", "action=.", "action=a..", "action=TRIP.CREATE",
		"action=trip.create", "action=%E2%80%AE", "user_id=0", "user_id=x", "user_id=9223372036854775808", "user_id=%2B7",
		"since=2026-04-20T08:00:00Z&until=2026-04-19T00:00:00Z", "since=garbage", "until=9999-12-31T23:59:59Z",
		"since=0000-01-01T00:00:00%2B23:59", "since=2026-04-20T08:00:00.999999999-23:59",
		"ip=%ff", "resource=%00", "a=%zz;b", "%", "&&&", "limit=1;offset=2", "limit=1&limit=2",
		"ip=fe80::1%eth0", "resource=client:7;v2", "user_id=3&user_id=1", "action=&action=user.login", "user%5Fid=1",
		"limit=100;action=user.login", ";resource=client:7",
		"action=Trips&user_id=1&ip=203.0.113.9&resource=trip:1&since=2000-01-01T00:00:00Z&until=2100-01-01T00:00:00Z",
	} {
		f.Add(q)
	}
	dir := f.TempDir()
	a, err := Open(Config{
		DBPath:   filepath.Join(dir, "travel.db"),
		LogPath:  filepath.Join(dir, "logs", "trek.log"),
		ChainKey: faultChainKey,
	})
	require.NoError(f, err)
	f.Cleanup(func() { a.Close() })
	ctx := context.Background()
	for i, e := range []Event{
		{Action: UserLogin, Actor: Actor{UserID: 1, Email: "a@example.com"}, IP: "203.0.113.9"},
		{Action: TripCreate, Actor: Actor{UserID: 1}, Resource: "trip:1", Details: map[string]any{"title": "Lisbon"}},
		{Action: UserLoginFailed, Details: map[string]any{"email": "x\xff"}, IP: "2001:db8::1"},
		{Action: OAuthTokenIssue, Actor: Actor{UserID: 2, Username: "bob"}, Resource: "client\u2028x"},
		{Action: BackupCreate, Actor: Actor{UserID: 1}},
	} {
		require.NoError(f, a.Record(ctx, e), "event %d", i)
	}
	h := a.AdminHandler(func(*http.Request) bool { return true })
	f.Fuzz(func(t *testing.T, raw string) {
		req := httptest.NewRequest(http.MethodGet, "/api/admin/audit-log", nil)
		req.URL.RawQuery = raw
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body := rec.Body.Bytes()
		if !json.Valid(body) {
			t.Fatalf("%q: body is not JSON: %q", raw, body)
		}
		switch rec.Code {
		case http.StatusOK:
			var page Page
			require.NoError(t, json.Unmarshal(body, &page))
			if page.Limit < 1 || page.Limit > MaxPageLimit || page.Offset < 0 {
				t.Fatalf("%q: limit %d, offset %d", raw, page.Limit, page.Offset)
			}
			if len(page.Entries) > page.Limit || int64(len(page.Entries)) > page.Total {
				t.Fatalf("%q: %d entries, limit %d, total %d", raw, len(page.Entries), page.Limit, page.Total)
			}
		case http.StatusBadRequest:
			var e struct {
				Error     string `json:"error"`
				Parameter string `json:"parameter"`
			}
			require.NoError(t, json.Unmarshal(body, &e))
			if e.Error == "" {
				t.Fatalf("%q: 400 without an error: %s", raw, body)
			}
		default:
			t.Fatalf("%q: status %d: %s", raw, rec.Code, body)
		}
	})
}

// FuzzAnchorLine feeds the chain-head reader arbitrary trek.log lines. A
// line is taken for an anchor only if it is exactly what appendAnchorLine
// writes for the fields read from it, so no line that merely contains the
// fields can pass; a line the writer wrote is always read back whole.
func FuzzAnchorLine(f *testing.F) {
	mac := strings.Repeat("3f", 32)
	s := newAnchorSigner([]byte("fuzzing key, 32 bytes long......"))
	p := &pending{row: row{id: 42, seq: 40, mac: mac, createdAt: time.Date(2026, 4, 20, 10, 11, 53, 0, time.UTC)}}
	good := appendAnchorLine(nil, p, time.UTC, s)
	f.Add(string(good[:len(good)-1]))
	f.Add("[INFO] 2026-04-20T10:11:53 AUDIT-CHAIN head id=42 seq=40 mac=" + mac)
	f.Add("[INFO] 2026-04-20T10:11:53 alice created trip \"x AUDIT-CHAIN head mac=" + mac + " id=1 seq=1\" ip=-")
	f.Add("[INFO] 2026-04-20T10:11:53 AUDIT-CHAIN head id=+42 seq=040 mac=" + mac + " tag=" + strings.Repeat("0", 32))
	f.Add("[INFO] 2026-04-20T10:11:53 AUDIT-CHAIN head id=42 seq=40 mac=" + mac + " tag=" + strings.Repeat("0", 32) + " x")
	f.Add("")
	f.Fuzz(func(t *testing.T, line string) {
		id, seq, macHex, tagHex, ok := parseAnchorLine([]byte(line))
		if !ok {
			return
		}
		require.Positive(t, id)
		require.Positive(t, seq)
		const at = anchorTagAt
		want := line[:at] + anchorTag + "id=" + strconv.FormatInt(id, 10) + " seq=" + strconv.FormatInt(seq, 10) +
			" mac=" + string(macHex) + " tag=" + string(tagHex)
		require.Equal(t, want, line, "a line read as an anchor must be one the writer could have written")
		if s.valid(id, seq, macHex, tagHex) {
			// Only the signer makes valid tags: past the time, which the
			// tag does not cover, the line must be the one it tagged.
			require.Equal(t, string(good[at:len(good)-1]), line[at:])
		}
	})
}

// trekTimeForm is created_at as TREK's CURRENT_TIMESTAMP writes it.
var trekTimeForm = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`)

// FuzzStoredRow lists a row as TREK's own server, or anyone with the
// database file, could have left it: any created_at text, details that need
// not be JSON, any bytes in the text columns. The admin list must answer
// valid JSON that keeps what can be kept: details that are valid JSON as
// stored, anything else as the parse-error marker; a created_at in SQLite's
// form as ISO 8601 UTC; text as stored, invalid UTF-8 replaced; and of a
// value larger than the list shows, its marked beginning (see
// maxShownText).
func FuzzStoredRow(f *testing.F) {
	f.Add("2026-04-20 08:11:53", `{"title":"Lisbon"}`, "trip:1", "alice", "203.0.113.9")
	f.Add("2026-04-20T08:11:53.5+02:00", `[1,2]`, "", "", "")
	f.Add("yesterday", `{"a":`, "\xff\xfe", "\u2028", "not an ip")
	f.Add("", `"\ud800"`, "x\x00y", "<script>", "::1")
	f.Add("0000-00-00 00:00:00", "null", strings.Repeat("r", 2000), "e\u202eve", "")
	f.Add("2026-04-20 08:11:53", `{"n":1E700,"m":-0.0}`, "", "", "") // valid JSON, past float64
	f.Add(strings.Repeat("t", maxShownText+1), `{"x":"`+strings.Repeat("y", maxShownDetails)+`"}`,
		strings.Repeat("\xff", maxShownText), strings.Repeat("é", maxShownText), "") // each past what is shown
	// One character to SQLite's substr, a megabyte long: cut in bytes.
	f.Add("", "", "\xff"+strings.Repeat("\x84", 1<<20), "", "\xc3"+strings.Repeat("\xa9", 1<<20))
	dir := f.TempDir()
	a, err := Open(Config{DBPath: filepath.Join(dir, "travel.db"), LogPath: filepath.Join(dir, "logs", "trek.log"),
		ChainKey: faultChainKey})
	require.NoError(f, err)
	f.Cleanup(func() { a.Close() })
	db := openPlainDB(f, filepath.Join(dir, "travel.db"))
	h := a.AdminHandler(func(*http.Request) bool { return true })
	f.Fuzz(func(t *testing.T, created, details, resource, username, ip string) {
		res, err := db.Exec(`INSERT INTO audit_log (created_at, action, resource, details, ip, actor_username)
			VALUES (?, 'user.login', ?, ?, ?, ?)`, created, resource, details, ip, username)
		require.NoError(t, err)
		id, err := res.LastInsertId()
		require.NoError(t, err)

		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/admin/audit-log?limit=1", nil))
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		require.True(t, json.Valid(w.Body.Bytes()), "not JSON: %q", w.Body.String())
		var page struct {
			Entries []struct {
				ID        int64           `json:"id"`
				CreatedAt string          `json:"created_at"`
				Resource  *string         `json:"resource"`
				IP        *string         `json:"ip"`
				Details   json.RawMessage `json:"details"`
			} `json:"entries"`
		}
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &page))
		require.Len(t, page.Entries, 1)
		e := page.Entries[0]
		require.Equal(t, id, e.ID)

		if len(details) > maxShownDetails {
			require.JSONEq(t, fmt.Sprintf(`{"_truncated":true,"_original_size":%d}`, len(details)), string(e.Details))
		} else if json.Valid([]byte(details)) && utf8.ValidString(details) {
			require.Equal(t, decodeExactly(t, details), decodeExactly(t, string(e.Details)), "details %q", details)
		} else {
			require.JSONEq(t, `{"_parse_error":true}`, string(e.Details))
		}
		// The column's affinity may have stored a number ("00" is 0).
		var stored string
		var sqlite sql.NullString
		require.NoError(t, db.QueryRow(`SELECT CAST(created_at AS TEXT), strftime('%Y-%m-%dT%H:%M:%fZ', created_at)
			FROM audit_log WHERE id = ?`, id).Scan(&stored, &sqlite))
		if len(stored) > maxShownText {
			requireShown(t, stored, e.CreatedAt) // cut, as any text is
		} else if ts, err := time.Parse("2006-01-02 15:04:05", stored); err == nil && trekTimeForm.MatchString(stored) {
			// (time.Parse alone also takes "2026-04-20  8:11:53": a space
			// in the layout matches a run of them, and the hour may have
			// one digit. SQLite does not read that as a time.)
			require.Equal(t, ts.Format("2006-01-02T15:04:05Z"), e.CreatedAt, "SQLite's own form")
		}
		if len(stored) <= maxShownText && e.CreatedAt != fuzzStoredKey(stored) {
			// Converted: then to ISO 8601 UTC, and to the instant SQLite
			// itself reads in the stored text (to its millisecond).
			require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$`, e.CreatedAt, "from %q", stored)
			listed, err := time.Parse(time.RFC3339Nano, e.CreatedAt)
			require.NoError(t, err)
			require.True(t, sqlite.Valid, "SQLite reads no time in %q, listed as %s", stored, e.CreatedAt)
			require.Equal(t, sqlite.String, listed.Truncate(time.Millisecond).Format("2006-01-02T15:04:05.000Z"), "from %q", stored)
		}
		for _, c := range []struct {
			stored string
			listed *string
		}{{resource, e.Resource}, {ip, e.IP}} {
			require.NotNil(t, c.listed)
			requireShown(t, c.stored, *c.listed)
		}
	})
}

// requireShown checks a listed text against the stored one: as stored,
// invalid bytes replaced; or, stored past maxShownText bytes, its first
// shownTextPrefix characters, and no more than maxShownText bytes, so
// replaced (SQLite counts a lead byte and the continuation bytes after it
// as one character where Go counts each invalid byte, so the count is
// bounded by the bytes, and the last is not compared) and truncatedMark.
func requireShown(t *testing.T, stored, listed string) {
	t.Helper()
	if len(stored) <= maxShownText {
		require.Equal(t, fuzzStoredKey(stored), listed, "as stored, invalid bytes replaced")
		return
	}
	shown, ok := strings.CutSuffix(listed, truncatedMark)
	require.True(t, ok, "%d bytes stored, listed whole: %q", len(stored), listed)
	require.LessOrEqual(t, utf8.RuneCountInString(shown), maxShownText, "at most a replaced rune a byte")
	if _, n := utf8.DecodeLastRuneInString(shown); n > 0 {
		shown = shown[:len(shown)-n]
	}
	require.True(t, strings.HasPrefix(fuzzStoredKey(stored), shown), "listed %q is not the beginning of what is stored", shown)
}

// FuzzRawDetails stores JSON as a host passes it on, a request body kept
// as json.RawMessage: any shape, depth or escaping. What is stored must be
// a JSON object that Go reads back, nests no deeper than the limit, and
// keeps no value under a secret key; JSON that nests within the limit and
// has no secret to redact comes through meaning what it meant.
func FuzzRawDetails(f *testing.F) {
	f.Add(`{"title":"Lisbon","tripId":12}`)
	f.Add(`[{"token":"t"},{"a":{"Pass Word":["x"]}}]`)
	f.Add(`{"c\u006fokie":"sid","n":1E700,"s":"\ud800"}`)
	f.Add(`{"k":"dup","k":{"secret":1}}`)
	f.Add(`"camping with a passport"`)
	f.Add(nestedJSON(maxDetailsDepth-1, "note"))
	f.Add(nestedJSON(maxDetailsDepth, "token"))
	f.Add(strings.Repeat(`[`, 3000) + strings.Repeat(`]`, 3000))
	f.Add(`{"a":"\"}]{["}`)
	f.Add("{\"k\xff\":\"v\xfe\"}")
	f.Add("{\"pass\xffword\":\"x\"}")
	r := newRedactor(nil)
	f.Fuzz(func(t *testing.T, raw string) {
		if !json.Valid([]byte(raw)) {
			return
		}
		enc, err := r.encode(map[string]any{"raw": json.RawMessage(raw), "setting": "theme"})
		if err != nil {
			t.Fatalf("valid JSON must be stored, got %v", err)
		}
		if len(enc) > maxDetailsLen {
			t.Fatalf("encoded details are %d bytes, over %d", len(enc), maxDetailsLen)
		}
		if !utf8.Valid(enc) {
			t.Fatalf("encoded details are not valid UTF-8: %q", enc)
		}
		tree, ok := decodeExactly(t, string(enc)).(map[string]any)
		if !ok {
			t.Fatalf("encoded details are not a JSON object: %q", enc)
		}
		if d := jsonDepth(t, string(enc)); d > maxDetailsDepth {
			t.Fatalf("encoded details nest %d deep, over %d", d, maxDetailsDepth)
		}
		fuzzCheckRedacted(t, tree, "")

		if tree["_truncated"] == true || !utf8.ValidString(raw) ||
			jsonDepth(t, raw) >= maxDetailsDepth || fuzzHasSecretKey(decodeExactly(t, raw)) {
			return
		}
		require.Equal(t, decodeExactly(t, raw), tree["raw"])
	})
}

// fuzzHasSecretKey reports whether v has a secret key at any depth.
func fuzzHasSecretKey(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if fuzzIsSecret(k) || fuzzHasSecretKey(x) {
				return true
			}
		}
	case []any:
		return slices.ContainsFunc(v, fuzzHasSecretKey)
	}
	return false
}

// FuzzLogHandlerLine writes host records through LogHandler: whatever the
// message, key and value, the line is one printable line that cannot pass
// for a chain head, and, after a constant message, the key and the value
// read back as given (a value under a secret key redacted, a long one cut).
func FuzzLogHandlerLine(f *testing.F) {
	f.Add("server started", "port", "3000", false)
	f.Add("2026-04-20T10:11:53 AUDIT-CHAIN head", "id", "99 seq=99 mac=aa tag=bb", true)
	f.Add("forged?\n[INFO] x", "user", "eve\r\n[INFO] x", false)
	f.Add("", "", "", true)
	f.Add("m", "smtp.pass", "s3cr3t", false)
	f.Add("\u202e", "k=v", `"quoted" \ back`, false)
	f.Add("\xff", "\xfe", strings.Repeat("é", 5000), false)
	f.Add("AUDIT", "a b", "\u2028", true)
	r := newRedactor(nil)
	at := time.Date(2026, 4, 20, 8, 11, 53, 0, time.UTC)
	f.Fuzz(func(t *testing.T, msg, key, val string, zeroTime bool) {
		var buf bytes.Buffer
		h := &logHandler{w: &buf, loc: time.UTC, level: slog.LevelInfo, redact: &r}
		when := at
		if zeroTime {
			when = time.Time{}
		}
		rec := slog.NewRecord(when, slog.LevelInfo, msg, 0)
		rec.AddAttrs(slog.String(key, val))
		require.NoError(t, h.Handle(context.Background(), rec))
		line := buf.String()
		fuzzCheckLine(t, line, "[INFO] ")
		if isAnchorShaped([]byte(strings.TrimSuffix(line, "\n"))) {
			t.Fatalf("a host line shaped like a chain head: %q", line)
		}
		if len(line) > 2*(6*maxLogValue+len(truncatedMark))+64 {
			t.Fatalf("line of %d bytes", len(line))
		}

		buf.Reset()
		rec = slog.NewRecord(at, slog.LevelInfo, "m", 0)
		rec.AddAttrs(slog.String(key, val))
		require.NoError(t, h.Handle(context.Background(), rec))
		line = buf.String()
		rest := fuzzCheckLine(t, line, "[INFO] 2026-04-20T08:11:53 m ")
		var gotKey string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				t.Fatalf("key: bad quoting in %q: %v", line, err)
			}
			gotKey, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			i := strings.IndexByte(rest, '=')
			if i < 0 {
				t.Fatalf("no '=' after the key in %q", line)
			}
			gotKey, rest = rest[:i], rest[i:]
		}
		if gotKey != key {
			t.Fatalf("key reads %q, want %q, in %q", gotKey, key, line)
		}
		rest, ok := strings.CutPrefix(rest, "=")
		if !ok {
			t.Fatalf("no '=' after the key in %q", line)
		}
		got, rest := fuzzToken(t, rest, "value")
		if rest != "\n" {
			t.Fatalf("trailing %q in %q", rest, line)
		}
		switch {
		case fuzzIsSecret(key):
			if got != redactedValue {
				t.Fatalf("value under secret key %q written: %q", key, line)
			}
		case len(val) <= maxLogValue:
			if got != val {
				t.Fatalf("value reads %q, want %q", got, val)
			}
		default:
			prefix, marked := strings.CutSuffix(got, truncatedMark)
			if !marked || len(got) > maxLogValue || !strings.HasPrefix(val, prefix) {
				t.Fatalf("long value not cut to a marked prefix: %d bytes", len(got))
			}
		}
	})
}

// FuzzLogValue walks values of any JSON shape as LogHandler writes a map,
// slice or struct: the text is always JSON, no value under a secret key is
// left, and nesting stops at the depth limit.
func FuzzLogValue(f *testing.F) {
	f.Add(`{"password":"hunter2","email":"a@example.com"}`)
	f.Add(`[{"Set-Cookie":"sid=1"},{"a":{"API Key":["k"]}}]`)
	f.Add(`{"n":1E700,"s":"\ud800","t":"\u2028"}`)
	f.Add(nestedJSON(maxDetailsDepth+5, "token"))
	f.Add(`{"k":"dup","k":{"secret":1}}`)
	r := newRedactor(nil)
	f.Fuzz(func(t *testing.T, raw string) {
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return
		}
		if !composite(v) {
			return
		}
		out := logValueJSON(&r, v)
		if !json.Valid([]byte(out)) {
			t.Fatalf("not JSON: %q", out)
		}
		if len(out) > maxLogValue {
			t.Fatalf("%d bytes, over %d", len(out), maxLogValue)
		}
		if d := jsonDepth(t, out); d > maxDetailsDepth {
			t.Fatalf("nests %d deep", d)
		}
		fuzzCheckRedacted(t, decodeExactly(t, out), "")
	})
}

// FuzzAckRow reads a row of audit_chain_acks as anyone who can write the
// database could have left it. Reading must never panic, and a row that
// reads as an acknowledgement must say what the key signed: the only
// signed row here is good, so any accepted row carries good's values,
// whatever its spelling of the numbers.
func FuzzAckRow(f *testing.F) {
	s := newAckSigner([]byte("fuzzing key, 32 bytes long......"))
	const list = "6 6 00112233445566778899aabbccddeeff\n7 7 ffeeddccbbaa99887766554433221100\n"
	refs := []ackRef{{1, strings.Repeat("1", 32)}, {2, strings.Repeat("2", 32)}}
	good := Acknowledgement{ID: 3, CreatedAt: "2026-11-26T12:00:00Z", Reason: "restored from backup",
		HeadID: 5, HeadSeq: 5, Supersedes: []int64{1, 2}, Digest: "5-0011223344556677", headMac: strings.Repeat("ab", 32), refs: refs}
	signed := fieldsOf(&good, list)
	tag := hex.EncodeToString(s.tag(&signed))
	superseded := refList(refs)
	f.Add("3", good.CreatedAt, good.Reason, "5", "5", good.headMac, superseded, good.Digest, tag, list)
	f.Add("03", good.CreatedAt, good.Reason, "+5", "5", good.headMac, strings.Replace(superseded, "1:", "01:", 1), good.Digest, tag, list)
	f.Add("3", good.CreatedAt, good.Reason, "5", "5", good.headMac, superseded+",", good.Digest, tag, list+"8 8 00")
	f.Add("4", good.CreatedAt, good.Reason, "5", "5", good.headMac, "1", "", tag, list)
	f.Add("3", good.CreatedAt, good.Reason, "5", "5", good.headMac, superseded, good.Digest, strings.ToUpper(tag), list) // found by fuzzing
	f.Add("x", "", "", "", "", "", "", "", "", "")
	good.Anchors, good.PastEnd, good.PastEndAt, good.tag = 2, 2, "6-7", tag
	f.Fuzz(func(t *testing.T, id, createdAt, why, headID, headSeq, headMac, supersedes, digest, tag, heads string) {
		var row ackRow
		for i, v := range []string{id, createdAt, why, headID, headSeq, headMac, supersedes, digest, tag, heads} {
			row[i] = sql.NullString{String: v, Valid: true}
		}
		ack, got, ok := s.parse(row)
		if !ok {
			return
		}
		require.Equal(t, good, ack)
		require.Len(t, got, 2)
		require.Equal(t, ackedHead{seq: 6, id: 6, mac: [16]byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}}, got[0])
	})
}

// FuzzCapDepth checks capDepth, which cuts nesting by scanning bytes,
// against the obvious tree walk: decode, replace every object or array
// deeper than the limit by the truncation mark, encode. Both results are
// compared decoded, so only what they mean counts, and capDepth's must be
// valid JSON.
func FuzzCapDepth(f *testing.F) {
	f.Add(`{"a":[1,{"b":[[]]}],"c":"x[{\"]"}`, uint8(2))
	f.Add(`[[[[[["deep"]]]]]]`, uint8(3))
	f.Add(`{"k\\":{"}":[{}]}}`, uint8(1))
	f.Add(`"[{"`, uint8(0))
	f.Add(`[{},[],{"a":{}},[[1]]]`, uint8(1))
	f.Fuzz(func(t *testing.T, doc string, limit uint8) {
		var buf bytes.Buffer
		if json.Compact(&buf, []byte(doc)) != nil {
			return
		}
		enc, maxDepth := buf.Bytes(), int(limit%8)
		got := capDepth(bytes.Clone(enc), maxDepth)
		require.True(t, json.Valid(got), "capDepth(%s, %d) = %s", enc, maxDepth, got)

		decode := func(b []byte) any {
			d := json.NewDecoder(bytes.NewReader(b))
			d.UseNumber()
			var v any
			require.NoError(t, d.Decode(&v))
			return v
		}
		var cut func(v any, level int) any
		cut = func(v any, level int) any {
			switch x := v.(type) {
			case map[string]any:
				if level >= maxDepth {
					return truncatedMark
				}
				for k, e := range x {
					x[k] = cut(e, level+1)
				}
			case []any:
				if level >= maxDepth {
					return truncatedMark
				}
				for i, e := range x {
					x[i] = cut(e, level+1)
				}
			}
			return v
		}
		require.Equal(t, cut(decode(enc), 0), decode(got), "capDepth(%s, %d) = %s", enc, maxDepth, got)
	})
}
