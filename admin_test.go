package audit

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// allowAll is an authorize func that lets every request through.
func allowAll(*http.Request) bool { return true }

// adminGet serves GET /api/admin/audit-log?query through h and returns the
// response.
func adminGet(t *testing.T, h http.Handler, query string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/admin/audit-log?"+query, nil))
	return w
}

// adminPage decodes a 200 answer.
func adminPage(t *testing.T, w *httptest.ResponseRecorder) Page {
	t.Helper()
	require.Equal(t, http.StatusOK, w.Code, "body: %s", w.Body)
	var p Page
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
	return p
}

// TestAdminHandlerGolden pins the exact JSON of the admin list for a fixed
// database: TREK's rows from before the library and rows with the library's
// snapshot columns, every nullable field absent somewhere, users renamed
// and deleted, a key outside the catalogue and stored details that are not
// JSON. Run with -update to rewrite testdata/golden/admin_list.json.
func TestAdminHandlerGolden(t *testing.T) {
	cfg := testConfig(t)
	db := createTrekDB(t, cfg.DBPath, map[int64]string{1: "alice", 2: "bob", 3: "carol"})
	insertListRows(t, db, // TREK's rows: TREK's columns only
		listRow{createdAt: "2026-04-20 08:11:53", userID: 1, action: "trip.create", resource: "trip:12",
			details: `{"title":"Lisbon","tripId":12}`, ip: "203.0.113.9"},
		listRow{createdAt: "2026-04-20 08:12:00", action: "user.login_failed",
			details: `{"email":"mallory@example.com"}`, ip: "198.51.100.7"},
		listRow{createdAt: "2026-04-20 08:13:00", action: "backup.create"},
		listRow{createdAt: "2026-04-20 08:14:00", userID: 1, action: "trip.update", resource: "trip:12",
			details: `{"tripId":12,"title":"Lisb`, ip: "203.0.113.9"},
		listRow{createdAt: "2026-04-20 08:15:00", userID: 2, action: "photo.upload", resource: "photo:9",
			details: `{"size":1024}`, ip: "2001:db8::1"},
	)
	a := openAuditor(t, cfg)
	insertListRows(t, db, // rows as the library writes them, with the snapshot
		listRow{createdAt: "2026-04-20 09:00:00", userID: 2, action: "user.password_change",
			ip: "203.0.113.20", username: "bob", email: "bob@example.com"},
		listRow{createdAt: "2026-04-20 09:01:00", userID: 1, action: "user.login",
			ip: "203.0.113.9", username: "alice_old", email: "old@example.com"},
		listRow{createdAt: "2026-04-20 09:02:00", userID: 3, action: "mcp.tool_call", resource: "get_trip",
			details: `{"args":{"tripId":12},"note":"say \"hi\"\nZürich"}`, ip: "10.0.0.1",
			username: "carol", email: "carol@example.com"},
		listRow{createdAt: "2026-04-20 09:03:00", action: "oauth.token.client_auth_failed", resource: "client:7",
			details: `[1,2]`, ip: "198.51.100.7"},
		listRow{createdAt: "2026-04-20 09:04:00", userID: 3, action: "trip.delete", resource: "trip:13",
			details: `{"tripId":13,"trip":"Porto"}`, ip: "203.0.113.30"}, // no snapshot
	)
	_, err := db.Exec(`DELETE FROM users WHERE id = 2`) // bob: user_id becomes NULL
	require.NoError(t, err)
	_, err = db.Exec(`PRAGMA foreign_keys = OFF; DELETE FROM users WHERE id = 3; PRAGMA foreign_keys = ON`)
	require.NoError(t, err) // carol: user_id stays, the users row is gone

	w := adminGet(t, a.AdminHandler(allowAll), "")
	require.Equal(t, http.StatusOK, w.Code, "body: %s", w.Body)
	var got bytes.Buffer
	require.NoError(t, json.Indent(&got, bytes.TrimSpace(w.Body.Bytes()), "", "  "))
	got.WriteByte('\n')

	golden := filepath.Join("testdata", "golden", "admin_list.json")
	if *updateGolden {
		require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
		require.NoError(t, os.WriteFile(golden, got.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test -run TestAdminHandlerGolden -update to create it")
	assert.Equal(t, string(want), got.String())
}

// TestAdminHandlerJSONShape checks the keys and JSON types TREK's panel
// reads, independently of the golden file.
func TestAdminHandlerJSONShape(t *testing.T) {
	cfg := testConfig(t)
	db := createTrekDB(t, cfg.DBPath, map[int64]string{7: "alice"})
	a := openAuditor(t, cfg)
	insertListRows(t, db,
		listRow{createdAt: "2026-04-20 08:11:53", action: "backup.create"},
		listRow{createdAt: "2026-04-20 08:11:54", userID: 7, action: "trip.create", resource: "trip:12",
			details: `{"title":"Lisbon"}`, ip: "203.0.113.9"})

	w := adminGet(t, a.AdminHandler(allowAll), "")
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "application/json; charset=utf-8", w.Header().Get("Content-Type"))
	var body map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
	assert.Equal(t, map[string]any{
		"entries": []any{
			map[string]any{"id": 2.0, "created_at": "2026-04-20T08:11:54Z", "user_id": 7.0, "username": "alice",
				"user_email": "alice@example.com", "action": "trip.create", "resource": "trip:12",
				"details": map[string]any{"title": "Lisbon"}, "ip": "203.0.113.9"},
			map[string]any{"id": 1.0, "created_at": "2026-04-20T08:11:53Z", "user_id": nil, "username": nil,
				"user_email": nil, "action": "backup.create", "resource": nil, "details": nil, "ip": nil},
		},
		"total": 2.0, "limit": 100.0, "offset": 0.0, "next_cursor": nil,
	}, body)

	// An empty list is [] for the panel, never null.
	w = adminGet(t, a.AdminHandler(allowAll), "user_id=99")
	assert.JSONEq(t, `{"entries":[],"total":0,"limit":100,"offset":0,"next_cursor":null}`, w.Body.String())
}

func TestAdminHandlerLimitAndOffset(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	ids := insertManyTrekRows(t, openPlainDB(t, cfg.DBPath), 600)
	newest := ids[len(ids)-1]
	h := a.AdminHandler(allowAll)

	limits := []struct {
		name  string
		value string
		want  int
	}{
		{"empty is the default", "", 100},
		{"not a number is the default", "abc", 100},
		{"negative is clamped to 1", "-5", 1},
		{"zero is the default, as parseInt(limit) || 100", "0", 100},
		{"above 500 is clamped to 500", "9999", 500},
		{"10 is kept", "10", 10},
		// The leading digits, as parseInt reads them.
		{"a number with garbage is its digits", "10abc", 10},
		{"a number with a fraction is its whole part", "20.0", 20},
		{"leading white space is skipped", " \t20", 20},
		{"a sign is read", "+20", 20},
		{"hexadecimal after 0x", "0x14", 20},
		{"no digits after 0x is the default", "0x", 100},
		{"garbage first is the default", "abc10", 100},
		{"a fraction below 1 is the default, as 0 is", "0.5", 100},
		{"too large for an int is clamped to 500", "99999999999999999999", 500},
		{"too small for an int is clamped to 1", "-99999999999999999999", 1},
	}
	for _, c := range limits {
		t.Run("limit "+c.name, func(t *testing.T) {
			p := adminPage(t, adminGet(t, h, "limit="+url.QueryEscape(c.value)))
			assert.Equal(t, c.want, p.Limit)
			assert.Len(t, p.Entries, c.want)
			assert.Equal(t, 0, p.Offset)
			assert.Equal(t, newest, p.Entries[0].ID)
		})
	}

	offsets := []struct {
		name  string
		value string
		want  int
		first int64 // 0: no entries
	}{
		{"empty is 0", "", 0, newest},
		{"not a number is 0", "abc", 0, newest},
		{"negative is 0", "-5", 0, newest},
		{"zero is 0", "0", 0, newest},
		{"past the end gives no entries", "9999", 9999, 0},
		{"10 skips the 10 newest", "10", 10, newest - 10},
		{"10.0 is 10, as parseInt reads it", "10.0", 10, newest - 10},
		{"a space before 10 is skipped", " 10", 10, newest - 10},
		// Clamped where Offset+Limit+1 cannot wrap around to a negative
		// (unbounded) LIMIT, and a JavaScript number still holds it.
		{"the largest int is clamped to 2^53", "9223372036854775807", 1 << 53, 0},
		{"too large for an int is clamped too, not read as 0", "99999999999999999999", 1 << 53, 0},
		{"too small for an int is 0", "-99999999999999999999", 0, newest},
	}
	for _, c := range offsets {
		t.Run("offset "+c.name, func(t *testing.T) {
			// A category filter takes the path that reads each key's
			// newest Offset+Limit+1 ids.
			p := adminPage(t, adminGet(t, h, "limit=10&action=Authentication&offset="+url.QueryEscape(c.value)))
			assert.Equal(t, c.want, p.Offset)
			assert.EqualValues(t, 600, p.Total)
			if c.first == 0 {
				assert.Empty(t, p.Entries)
				assert.Nil(t, p.NextCursor)
				return
			}
			require.Len(t, p.Entries, 10)
			assert.Equal(t, c.first, p.Entries[0].ID)
		})
	}
}

func TestAdminHandlerFilters(t *testing.T) {
	f := newFilterFixture(t)
	h := f.a.AdminHandler(allowAll)
	for _, c := range filterCases {
		t.Run(c.name, func(t *testing.T) {
			want := f.want(c.want...)
			p := adminPage(t, adminGet(t, h, c.params))
			assert.Equal(t, want, entryIDs(p.Entries))
			assert.EqualValues(t, len(want), p.Total)

			// "Load more" through next_cursor, one entry a page.
			got := []int64{}
			cursor := ""
			for range len(want) + 1 {
				p := adminPage(t, adminGet(t, h, c.params+"&limit=1&cursor="+cursor))
				assert.EqualValues(t, len(want), p.Total)
				got = append(got, entryIDs(p.Entries)...)
				if p.NextCursor == nil {
					break
				}
				cursor = url.QueryEscape(*p.NextCursor)
			}
			assert.Equal(t, want, got)
		})
	}
}

// TestAdminHandlerCursorWalkWhileRecording is the panel's "Load more" over
// HTTP while events keep arriving: every row that was there when the first
// page was read is shown exactly once.
func TestAdminHandlerCursorWalkWhileRecording(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	db := openPlainDB(t, cfg.DBPath)
	insertManyTrekRows(t, db, 120)
	before := listAllIDs(t, db)
	srv := httptest.NewServer(a.AdminHandler(allowAll))
	t.Cleanup(srv.Close)

	turn, done := make(chan struct{}), make(chan error)
	go func() {
		defer close(done)
		for range turn {
			var err error
			for range 5 {
				if err = a.Record(t.Context(), Event{Action: UserLogin}); err != nil {
					break
				}
			}
			done <- err
		}
	}()
	defer func() {
		close(turn)
		<-done
	}()

	seen := map[int64]int{}
	next := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 100)
		res, err := srv.Client().Get(srv.URL + "?limit=25&cursor=" + url.QueryEscape(next))
		require.NoError(t, err)
		var p Page
		require.NoError(t, json.NewDecoder(res.Body).Decode(&p))
		res.Body.Close()
		for _, e := range p.Entries {
			seen[e.ID]++
		}
		if p.NextCursor == nil {
			break
		}
		next = *p.NextCursor
		turn <- struct{}{}
		require.NoError(t, <-done)
	}
	assert.Len(t, seen, len(before))
	for _, id := range before {
		assert.Equal(t, 1, seen[id], "row %d", id)
	}
}

func TestAdminHandlerBadParameters(t *testing.T) {
	f := newFilterFixture(t)
	h := f.a.AdminHandler(allowAll)
	cases := []struct {
		name   string
		params string
		names  string // the parameter the answer names
	}{
		{"user_id not a number", "user_id=abc", "user_id"},
		{"user_id negative", "user_id=-1", "user_id"},
		{"user_id zero", "user_id=0", "user_id"},
		{"user_id fraction", "user_id=1.5", "user_id"},
		{"since not a time", "since=yesterday", "since"},
		{"since a date without time", "since=2026-04-20", "since"},
		{"until not a time", "until=garbage", "until"},
		{"until without zone", "until=2026-04-20T08:00:00", "until"},
		{"cursor not a number", "cursor=abc", "cursor"},
		{"cursor zero", "cursor=0", "cursor"},
		{"cursor negative", "cursor=-7", "cursor"},
		{"action no key, prefix or category", "action=no+such+category", "action"},
		{"action prefix in capitals", "action=Admin.", "action"},
		{"action with SQL", "action=x%27%3B+DROP+TABLE+audit_log%3B+--", "action"},
		// The parameter is known, not read off the message, which quotes
		// what was typed.
		{"action that names another parameter", "action=" + url.QueryEscape("x: cursor y"), "action"},
		{"cursor that names another parameter", "cursor=" + url.QueryEscape("x: since y"), "cursor"},
		{"since equal to until", "since=2026-04-05T00:00:00Z&until=2026-04-05T00:00:00Z", "since"},
		{"since after until", "since=2026-04-06T00:00:00Z&until=2026-04-05T00:00:00Z", "since"},
		{"bad filter beside good ones", "limit=5&action=user.login&user_id=x", "user_id"},
		// 10000-01-01 in UTC would compare, as text, before every row;
		// the zero time would read as no bound at all.
		{"since past the year 9999 in UTC", "since=9999-12-31T23:59:59-23:59", "since"},
		{"until the zero time", "until=0001-01-01T00:00:00Z", "until"},
		{"until before the year 1 in UTC", "until=0001-01-01T00:00:00%2B01:00", "until"},
		// A filter net/url would drop without a word (a bad escape, an
		// unescaped ';') or one given twice: never a page of every row.
		{"a filter after a ';' in limit", "limit=100;action=user.login", "action"},
		{"a filter after a ';' in offset", "offset=0;user_id=3", "user_id"},
		{"a filter after a ';' in a parameter the list ignores", "x=1;ip=198.51.100.7", "ip"},
		{"a filter after a leading ';'", ";resource=client:7", "resource"},
		{"a filter with an escaped name after a ';'", "limit=5;user%5Fid=3", "user_id"},
		{"ip with a zone's bare '%'", "ip=fe80::1%eth0", "ip"},
		{"ip with a bad escape beside a good filter", "user_id=3&ip=%ff%zz", "ip"},
		{"resource with '%' before letters", "resource=100%off", "resource"},
		{"resource with an unescaped ';'", "resource=client:7;v2", "resource"},
		{"action with a bad escape", "action=user.login%zz", "action"},
		{"user_id ending in '%'", "user_id=3%", "user_id"},
		{"since ending in '%'", "since=2026-04-10T16:00:00Z%", "since"},
		{"until with a bad escape", "until=2026-04-10T16:00:00Z%2", "until"},
		{"cursor with a bad escape", "cursor=5%g0", "cursor"},
		{"a name written with escapes is still the filter", "user%5Fid=3%", "user_id"},
		{"user_id given twice", "user_id=3&user_id=1", "user_id"},
		{"action given empty, then a key", "action=&action=user.login", "action"},
		{"resource given twice, the same", "resource=client:7&resource=client:7", "resource"},
		{"cursor given twice", "cursor=5&cursor=6", "cursor"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { assertRefusedParameter(t, h, c.params, c.names) })
	}
	p := adminPage(t, adminGet(t, h, ""))
	assert.Len(t, p.Entries, len(f.ids), "nothing was harmed")
}

// assertRefusedParameter checks that the admin list answers params with a
// 400 in the contract's JSON, naming the parameter name.
func assertRefusedParameter(t *testing.T, h http.Handler, params, name string) {
	t.Helper()
	w := adminGet(t, h, params)
	require.Equal(t, http.StatusBadRequest, w.Code, "body: %s", w.Body)
	assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	assert.Equal(t, "application/json; charset=utf-8", w.Header().Get("Content-Type"))
	var body struct {
		Error     string `json:"error"`
		Parameter string `json:"parameter"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
	assert.Equal(t, name, body.Parameter)
	assert.Contains(t, body.Error, name)
}

// TestAdminHandlerReadsEveryPair: the list reads the raw query itself, so a
// filter is kept however many pairs surround it (url.ParseQuery gives up
// past 10,000), limit and offset still never fail, and what is not a
// parameter of the list is ignored, decodable or not.
func TestAdminHandlerReadsEveryPair(t *testing.T) {
	f := newFilterFixture(t)
	h := f.a.AdminHandler(allowAll)
	user3 := f.want("tokenIssue", "tokenRefresh", "tokenRefresh2", "tokenRefresh3")
	cases := []struct {
		name   string
		params string
		want   []int64
		limit  int
		offset int
	}{
		{"a filter among 10,000 other pairs", "user_id=3" + strings.Repeat("&x", 10_000), user3, 100, 0},
		{"a filter after 10,000 other pairs", strings.Repeat("x&", 10_000) + "user_id=3", user3, 100, 0},
		{"a name written with escapes", "user%5Fid=3", user3, 100, 0},
		{"an escaped ';' and '%' are a value", "user_id=3&resource=client%3A7%3Bv2%25", []int64{}, 100, 0},
		{"unknown parameters that cannot be decoded are ignored", "a=%zz;b&%=1&user_id;x=1&user_id=3", user3, 100, 0},
		{"a limit that cannot be decoded is not a number", "user_id=3&limit=2%", user3, 100, 0},
		{"a limit with ';' is not a number", "user_id=3&limit=1;offset=2", user3, 100, 0},
		{"the first of two limits counts", "user_id=3&limit=2&limit=3", user3[:2], 2, 0},
		{"an offset that cannot be decoded is 0", "user_id=3&offset=1%zz", user3, 100, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := adminPage(t, adminGet(t, h, c.params))
			assert.Equal(t, c.want, entryIDs(p.Entries))
			assert.Equal(t, c.limit, p.Limit)
			assert.Equal(t, c.offset, p.Offset)
		})
	}
}

// TestAdminHandlerAccess runs the handler behind a real server, so HEAD is
// answered as net/http answers it: headers, no body.
func TestAdminHandlerAccess(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin}))
	isAdmin := func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer admin-token" }
	mux := http.NewServeMux()
	mux.Handle("/admin", a.AdminHandler(isAdmin))
	mux.Handle("/nil", a.AdminHandler(nil))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	cases := []struct {
		name, method, path, token string
		status                    int
		allow                     string // the Allow header, for 405
		body                      string // "page", "error" or "" (none)
	}{
		{"GET as admin", http.MethodGet, "/admin", "admin-token", http.StatusOK, "", "page"},
		{"HEAD as admin", http.MethodHead, "/admin", "admin-token", http.StatusOK, "", ""},
		{"GET without token", http.MethodGet, "/admin", "", http.StatusForbidden, "", "error"},
		{"GET with a wrong token", http.MethodGet, "/admin", "guess", http.StatusForbidden, "", "error"},
		{"HEAD without token", http.MethodHead, "/admin", "", http.StatusForbidden, "", ""},
		{"GET with a nil authorize", http.MethodGet, "/nil", "admin-token", http.StatusForbidden, "", "error"},
		// authorize comes first: a refused caller does not learn which
		// methods the list answers.
		{"POST without token", http.MethodPost, "/admin", "", http.StatusForbidden, "", "error"},
		{"OPTIONS without token", http.MethodOptions, "/admin", "", http.StatusForbidden, "", "error"},
		{"POST", http.MethodPost, "/admin", "admin-token", http.StatusMethodNotAllowed, "GET, HEAD", "error"},
		{"PUT", http.MethodPut, "/admin", "admin-token", http.StatusMethodNotAllowed, "GET, HEAD", "error"},
		{"DELETE", http.MethodDelete, "/admin", "admin-token", http.StatusMethodNotAllowed, "GET, HEAD", "error"},
		{"PATCH", http.MethodPatch, "/admin", "admin-token", http.StatusMethodNotAllowed, "GET, HEAD", "error"},
		{"OPTIONS", http.MethodOptions, "/admin", "admin-token", http.StatusMethodNotAllowed, "GET, HEAD", "error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), c.method, srv.URL+c.path, strings.NewReader(""))
			require.NoError(t, err)
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			res, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			require.NoError(t, err)

			assert.Equal(t, c.status, res.StatusCode)
			assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
			assert.Equal(t, "application/json; charset=utf-8", res.Header.Get("Content-Type"))
			assert.Equal(t, c.allow, res.Header.Get("Allow"))
			switch c.body {
			case "":
				assert.Empty(t, body)
			case "page":
				var p Page
				require.NoError(t, json.Unmarshal(body, &p))
				assert.EqualValues(t, 1, p.Total)
				assert.Len(t, p.Entries, 1)
			case "error":
				var e struct {
					Error string `json:"error"`
				}
				require.NoError(t, json.Unmarshal(body, &e), "body %q", body)
				assert.NotEmpty(t, e.Error)
				assert.NotContains(t, string(body), "user.login", "an error answer shows no entries")
			}
		})
	}
}

// TestAdminHandlerStoreFailure: a database that can't be read is a 500 with a
// JSON body that says so without the driver's message, and still no-store.
// (An Auditor closed is a 503: TestCallsAfterCloseAnswerErrClosed.)
func TestAdminHandlerStoreFailure(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	h := a.AdminHandler(allowAll)
	_, err := openPlainDB(t, cfg.DBPath).Exec(`ALTER TABLE audit_log RENAME TO audit_log_gone`)
	require.NoError(t, err)

	w := adminGet(t, h, "")
	assert.Equal(t, http.StatusInternalServerError, w.Code)
	assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	assert.Equal(t, "application/json; charset=utf-8", w.Header().Get("Content-Type"))
	var e struct {
		Error string `json:"error"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &e))
	assert.NotEmpty(t, e.Error)
	assert.NotContains(t, e.Error, "sql")
}

// TestParseIntClamped holds parseIntClamped to what JavaScript's
// parseInt(s) gives (the values in the table are parseInt's), saturated
// at the int range.
func TestParseIntClamped(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{
		{"42", 42}, {"-42", -42}, {"+42", 42}, {"042", 42},
		{"42px", 42}, {"4.9", 4}, {"4e3", 4}, {"1_000", 1},
		{"  42", 42}, {"\t\n\v\f\r42", 42}, {"\u00a042", 42}, {"\u300042", 42}, {"\ufeff42", 42}, {"\u202842", 42},
		{"0x1f", 31}, {"0X1F", 31}, {"-0x10", -16}, {"0x1g", 1}, {"0b11", 0}, {"0o7", 0},
		{"9223372036854775807", math.MaxInt}, {"9223372036854775808", math.MaxInt}, {"-99999999999999999999", math.MinInt},
		{"0xffffffffffffffffff", math.MaxInt},
		// No digits: the default (NaN in JavaScript).
		{"", -1}, {"abc", -1}, {"-", -1}, {"+-1", -1}, {"0x", -1}, {" ", -1}, {"\u200b42", -1}, {".5", -1}, {"٤٢", -1},
	} {
		assert.Equal(t, c.want, parseIntClamped(c.in, -1), "parseInt(%q)", c.in)
	}
}
