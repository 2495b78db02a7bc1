package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trek-go/audit"
)

// inTempDir runs the test in a fresh working directory, where the demo makes
// its ./data, with none of the variables ConfigFromEnv reads.
func inTempDir(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, v := range []string{"TRUST_PROXY", "LOG_LEVEL", "TZ", "AUDIT_DB_PATH", "AUDIT_LOG_PATH", "AUDIT_CHAIN_KEY"} {
		t.Setenv(v, "")
	}
}

// demoEntries opens the demo's database with the library, as an operator
// would after the demo has stopped, and returns its newest entries.
func demoEntries(t *testing.T) []audit.Entry {
	t.Helper()
	a, err := audit.Open(audit.Config{})
	require.NoError(t, err)
	defer a.Close()
	page, err := a.List(t.Context(), audit.Query{})
	require.NoError(t, err)
	return page.Entries
}

func TestDemoOnce(t *testing.T) {
	inTempDir(t)
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), "127.0.0.1:0", true, &out))
	printed := out.String()

	// What it recorded, newest first.
	entries := demoEntries(t)
	require.Len(t, entries, 4)
	got := make([]audit.Action, len(entries))
	for i, e := range entries {
		got[i] = e.Action
		require.NotNil(t, e.IP)
		assert.Equal(t, "127.0.0.1", *e.IP, "%s: the connection's address, X-Forwarded-For ignored", e.Action)
	}
	assert.Equal(t, []audit.Action{audit.UserLoginFailed, audit.TripCreate, audit.UserLogin, audit.UserLoginFailed}, got)
	trip := entries[1]
	require.NotNil(t, trip.UserID)
	require.NotNil(t, trip.Username)
	assert.Equal(t, int64(1), *trip.UserID)
	assert.Equal(t, "alice", *trip.Username)
	assert.JSONEq(t, `{"title":"Lisbon","tripId":1}`, string(trip.Details))
	assert.Nil(t, entries[3].UserID, "a failed login is anonymous")
	assert.JSONEq(t, `{"email":"alice@example.com"}`, string(entries[3].Details))

	// What it printed: the address, the admin token and the curl lines
	// that use them, the list as JSON and trek.log's new lines.
	m := regexp.MustCompile(`TREK audit demo on (http://127\.0\.0\.1:\d+)\n.*\n.*\n  admin token  (\w+)`).FindStringSubmatch(printed)
	require.Len(t, m, 3, "intro in:\n%s", printed)
	base, token := m[1], m[2]
	assert.Contains(t, printed, "curl -s -X POST "+base+"/api/auth/login -H 'Content-Type: application/json' "+
		`-d '{"email":"alice@example.com","password":"correct horse"}'`)
	assert.Contains(t, printed, "curl -s -X POST "+base+"/api/trips -H 'Authorization: Bearer <token from the login>'")
	assert.Contains(t, printed, "curl -s '"+base+"/api/admin/audit-log?limit=10' -H 'Authorization: Bearer "+token+"'")
	for step, status := range map[string]string{"a wrong password": "401", "alice logs in": "200",
		"alice creates a trip": "201", "a guess claiming to be 203.0.113.66": "401"} {
		assert.Regexp(t, regexp.MustCompile(regexp.QuoteMeta(step)+` +-> `+status+`\n`), printed)
	}
	start := strings.Index(printed, "\n{\n")
	end := strings.Index(printed, "\n}\n")
	require.True(t, start > 0 && end > start, "no JSON in:\n%s", printed)
	var page struct{ Entries json.RawMessage }
	require.NoError(t, json.Unmarshal([]byte(printed[start:end+2]), &page))
	stored, err := json.Marshal(entries)
	require.NoError(t, err)
	assert.JSONEq(t, string(stored), string(page.Entries), "the printed list is what is stored")
	assert.Regexp(t, `data/logs/trek.log meanwhile:\n(  \[INFO\] .*\n)+`, printed)
	assert.Contains(t, printed, `alice@example.com created trip "Lisbon" ip=127.0.0.1`)

	trekLog, err := os.ReadFile("data/logs/trek.log")
	require.NoError(t, err)
	assert.Contains(t, string(trekLog), `alice@example.com created trip "Lisbon" ip=127.0.0.1`)
	assert.Contains(t, string(trekLog), "demo server listening", "the server's own lines share trek.log")

	// A second run keeps the first one's events.
	require.NoError(t, run(t.Context(), "127.0.0.1:0", true, &bytes.Buffer{}))
	assert.Len(t, demoEntries(t), 8)
}

func TestDemoAddressInUse(t *testing.T) {
	inTempDir(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()

	err = run(t.Context(), ln.Addr().String(), true, &bytes.Buffer{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), ln.Addr().String()+" is already in use")
	assert.Contains(t, err.Error(), "-addr")
	assert.NoDirExists(t, "data", "nothing is created before the address is taken")
}

// signalWriter collects output and closes ready once it has seen marker.
type signalWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	ready  chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	had := strings.Contains(w.buf.String(), w.marker)
	w.buf.Write(p)
	if !had && strings.Contains(w.buf.String(), w.marker) {
		close(w.ready)
	}
	return len(p), nil
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestDemoServesUntilCancelled runs the demo as `go run` does, talks to it
// while it serves, then stops it the way Ctrl-C does and checks everything
// it accepted was stored.
func TestDemoServesUntilCancelled(t *testing.T) {
	inTempDir(t)
	ctx, cancel := context.WithCancel(t.Context())
	out := &signalWriter{marker: "Serving until Ctrl-C.", ready: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", false, out) }()
	select {
	case <-out.ready:
	case err := <-done:
		cancel()
		t.Fatalf("the demo stopped before serving: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`demo on (http://\S+)\n(?:.*\n){2}  admin token  (\w+)`).FindStringSubmatch(out.String())
	require.Len(t, m, 3, "intro in:\n%s", out)
	base, token := m[1], m[2]

	cases := []struct {
		name, method, path, auth, body string
		status                         int
	}{
		{"a trip without login", http.MethodPost, "/api/trips", "", `{"title":"Oslo"}`, http.StatusUnauthorized},
		{"a trip with a made-up token", http.MethodPost, "/api/trips", "Bearer nope", `{"title":"Oslo"}`, http.StatusUnauthorized},
		{"the admin token is no login", http.MethodPost, "/api/trips", "Bearer " + token, `{"title":"Oslo"}`, http.StatusUnauthorized},
		{"login with a body that is not JSON", http.MethodPost, "/api/auth/login", "", `email=alice`, http.StatusBadRequest},
		{"login for an unknown email", http.MethodPost, "/api/auth/login", "", `{"email":"eve@example.com","password":"correct horse"}`, http.StatusUnauthorized},
		{"GET on login", http.MethodGet, "/api/auth/login", "", "", http.StatusMethodNotAllowed},
		{"the audit list without the admin token", http.MethodGet, "/api/admin/audit-log", "", "", http.StatusForbidden},
		{"the audit list with a wrong token", http.MethodGet, "/api/admin/audit-log", "Bearer " + strings.ToLower(token), "", http.StatusForbidden},
		{"the audit list with the admin token", http.MethodGet, "/api/admin/audit-log", "Bearer " + token, "", http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), c.method, base+c.path, strings.NewReader(c.body))
			require.NoError(t, err)
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			res.Body.Close()
			assert.Equal(t, c.status, res.StatusCode)
		})
	}

	cancel()
	require.NoError(t, <-done)
	assert.Contains(t, out.String(), "Shutting down.")
	// The session's 4 events and one failed login from above, for the
	// unknown email; the body that is not JSON is refused before any event.
	entries := demoEntries(t)
	assert.Len(t, entries, 5)
	assert.Equal(t, audit.UserLoginFailed, entries[0].Action)
	assert.JSONEq(t, `{"email":"eve@example.com"}`, string(entries[0].Details))
}

// TestDemoSaysWhatTrustProxyDid: the note after the session says what the
// setting made of the last request's X-Forwarded-For, for every way of
// trusting nothing as for one that trusts the loopback proxy.
func TestDemoSaysWhatTrustProxyDid(t *testing.T) {
	for _, tc := range []struct {
		setting, ip string
		believed    bool
	}{
		{"", "127.0.0.1", false},
		{"false", "127.0.0.1", false},
		{"0", "127.0.0.1", false},
		{"true", "203.0.113.66", true},
		{"loopback", "203.0.113.66", true},
		{"10.0.0.0/8", "127.0.0.1", false}, // trusts proxies, but not this connection
	} {
		t.Run(tc.setting, func(t *testing.T) {
			inTempDir(t)
			t.Setenv("TRUST_PROXY", tc.setting)
			var out bytes.Buffer
			require.NoError(t, run(t.Context(), "127.0.0.1:0", true, &out))
			last := demoEntries(t)[0]
			require.NotNil(t, last.IP)
			assert.Equal(t, tc.ip, *last.IP)
			if tc.believed {
				assert.Contains(t, out.String(), "was recorded under the client address its X-Forwarded-For gives (203.0.113.66)")
			} else {
				assert.Contains(t, out.String(), "The X-Forwarded-For of the last request was not believed")
			}
		})
	}
}

// Run where TREK keeps its data, the demo must not record its made-up
// events in TREK's audit log, nor add its user and trip to TREK's tables.
func TestDemoRefusesADatabaseNotItsOwn(t *testing.T) {
	for name, schema := range map[string]string{
		"TREK's users table": `CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT, email TEXT, password_hash TEXT, role TEXT)`,
		"another table":      `CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT)`,
	} {
		t.Run(name, func(t *testing.T) {
			inTempDir(t)
			require.NoError(t, os.MkdirAll("data", 0o750))
			db, err := sql.Open("sqlite3", "file:data/travel.db")
			require.NoError(t, err)
			_, err = db.Exec(schema)
			require.NoError(t, err)
			require.NoError(t, db.Close())
			before, err := os.ReadFile("data/travel.db")
			require.NoError(t, err)

			err = run(t.Context(), "127.0.0.1:0", true, &bytes.Buffer{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "data/travel.db is not the demo's database")
			after, err := os.ReadFile("data/travel.db")
			require.NoError(t, err)
			assert.Equal(t, before, after, "the database is left as it was")
			assert.NoFileExists(t, "data/logs/trek.log")
		})
	}
}
