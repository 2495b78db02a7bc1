package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/trek-go/audit"
)

// fixture is a TREK data folder in a temp dir: travel.db with the
// library's rows (and TREK's own, unchained ones), logs/trek.log with the
// chain heads, .audit_key beside the database. Its Auditor stays open for
// recording more, and raw is a plain handle for changes behind the
// library's back.
type fixture struct {
	dir, db, log, key string
	a                 *audit.Auditor
	raw               *sql.DB
}

// cleanEnv empties the variables the command reads, so the developer's
// own environment cannot change what a test sees.
func cleanEnv(t *testing.T) {
	t.Helper()
	for _, v := range []string{"AUDIT_DB_PATH", "AUDIT_LOG_PATH", "AUDIT_CHAIN_KEY"} {
		t.Setenv(v, "")
	}
}

// newFixture records n events of sampleEvent(0..n-1), ids 1..n, then
// appends trekRows as TREK's own server inserts them (ids n+1, ...).
func newFixture(t *testing.T, n int, trekRows ...trekRow) *fixture {
	t.Helper()
	cleanEnv(t)
	dir := t.TempDir()
	f := &fixture{dir: dir, db: filepath.Join(dir, "travel.db"), log: filepath.Join(dir, "logs", "trek.log"),
		key: filepath.Join(dir, ".audit_key")}
	var err error
	f.a, err = audit.Open(audit.Config{DBPath: f.db, LogPath: f.log})
	require.NoError(t, err)
	t.Cleanup(func() { f.a.Close() })
	for i := range n {
		f.record(t, sampleEvent(i))
	}
	f.raw, err = sql.Open("sqlite3", "file:"+f.db+"?_busy_timeout=10000")
	require.NoError(t, err)
	t.Cleanup(func() { f.raw.Close() })
	for _, r := range trekRows {
		f.exec(t, `INSERT INTO audit_log (created_at, user_id, action, resource, details, ip) VALUES (?, ?, ?, ?, ?, ?)`,
			r.createdAt, r.userID, r.action, r.resource, r.details, r.ip)
	}
	return f
}

func (f *fixture) record(t *testing.T, e audit.Event) {
	t.Helper()
	require.NoError(t, f.a.Record(context.Background(), e))
}

func (f *fixture) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	_, err := f.raw.Exec(q, args...)
	require.NoError(t, err, q)
}

// count counts the rows of table.
func (f *fixture) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	require.NoError(t, f.raw.QueryRow(`SELECT COUNT(*) FROM `+table).Scan(&n))
	return n
}

// run runs the command with the fixture's --db and --log after args[0].
func (f *fixture) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runCLI(t, context.Background(), withPaths(args, "--db", f.db, "--log", f.log)...)
}

// withPaths inserts flags after the command name.
func withPaths(args []string, flags ...string) []string {
	if len(args) == 0 {
		return flags
	}
	return slices.Concat(args[:1], flags, args[1:])
}

func runCLI(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// sampleEvent is event i of a fixture: five kinds in turn, with actors,
// addresses and details (one with a terminal escape in it).
//
//	i%5 == 0: user.login by #1 alice from 203.0.113.1
//	i%5 == 1: user.login_failed, anonymous, from 198.51.100.7
//	i%5 == 2: trip.create by #2 bob, resource trip:<i>
//	i%5 == 3: mcp.tool_call by #2 bob, resource get_trip
//	i%5 == 4: admin.user_create by #1 alice
func sampleEvent(i int) audit.Event {
	alice := audit.Actor{UserID: 1, Username: "alice", Email: "alice@example.com"}
	bob := audit.Actor{UserID: 2, Username: "bob", Email: "bob@example.com"}
	switch i % 5 {
	case 0:
		return audit.Event{Action: audit.UserLogin, Actor: alice, IP: "203.0.113.1"}
	case 1:
		return audit.Event{Action: audit.UserLoginFailed, IP: "198.51.100.7",
			Details: map[string]any{"email": "mallory\x1b[2J@example.com", "reason": "invalid_password"}}
	case 2:
		return audit.Event{Action: audit.TripCreate, Actor: bob, IP: "203.0.113.2", Resource: fmt.Sprintf("trip:%d", i),
			Details: map[string]any{"title": fmt.Sprintf("Trip %d", i), "tripId": i}}
	case 3:
		return audit.Event{Action: audit.MCPToolCall, Actor: bob, IP: "203.0.113.2", Resource: "get_trip"}
	default:
		return audit.Event{Action: audit.AdminUserCreate, Actor: alice, IP: "203.0.113.1",
			Details: map[string]any{"username": fmt.Sprintf("new%d", i), "role": "user"}}
	}
}

// trekRow is a row as TREK's own server inserts it: no chain value.
type trekRow struct {
	createdAt string
	userID    any
	action    string
	resource  any
	details   any
	ip        any
}

// idsWhere returns the ids 1..n of the sample events i (id i+1) for which
// keep is true, newest first: what the list shows.
func idsWhere(n int, keep func(i int) bool) []int64 {
	var ids []int64
	for i := n - 1; i >= 0; i-- {
		if keep(i) {
			ids = append(ids, int64(i+1))
		}
	}
	return ids
}

func fileExists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	if os.IsNotExist(err) {
		return false
	}
	require.NoError(t, err)
	return true
}

// lines splits output into its lines, without the empty one after the
// last newline.
func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// trekOnlyDB creates travel.db in dir as TREK's server alone makes it:
// TREK's audit_log table holding the rows that insert adds, none of the
// library's columns or tables. It returns the file's path.
func trekOnlyDB(t *testing.T, dir, insert string) string {
	t.Helper()
	path := filepath.Join(dir, "travel.db")
	db, err := sql.Open("sqlite3", "file:"+path)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(`CREATE TABLE audit_log (
			id INTEGER PRIMARY KEY AUTOINCREMENT,
			created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
			user_id INTEGER, action TEXT NOT NULL, resource TEXT, details TEXT, ip TEXT)`)
	require.NoError(t, err)
	_, err = db.Exec(insert)
	require.NoError(t, err)
	return path
}
