package audit

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testConfig returns a Config whose files live in a fresh temporary folder:
// <tmp>/travel.db and <tmp>/logs/trek.log. Everything else is the default.
func testConfig(t testing.TB) Config {
	t.Helper()
	dir := t.TempDir()
	return Config{
		DBPath:  filepath.Join(dir, "travel.db"),
		LogPath: filepath.Join(dir, "logs", "trek.log"),
	}
}

// openAuditor opens cfg, failing the test if it can't, and closes the
// Auditor when the test ends (closing it earlier is fine).
func openAuditor(t testing.TB, cfg Config) *Auditor {
	t.Helper()
	a, err := Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { a.Close() })
	return a
}

// openPlainDB opens a handle on the SQLite file at path with foreign keys
// off, for a database without TREK's users table: audit_log references
// users, and SQLite refuses every insert into a child table whose parent
// table is missing while foreign keys are on. Closed when the test ends.
func openPlainDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	return openDBFileForTest(t, path, "_busy_timeout=10000")
}

// openTestDB opens the test's own handle on the SQLite file at path, the way
// TREK's server holds it: foreign keys enforced on every connection, a busy
// timeout so it waits for the library's writer. Closed when the test ends.
func openTestDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	return openDBFileForTest(t, path, "_foreign_keys=on&_busy_timeout=10000")
}

// openDBFileForTest opens and pings a handle on the SQLite file at path
// with the driver's query parameters params, closed when the test ends.
func openDBFileForTest(t testing.TB, path, params string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+escapePath(path)+"?"+params)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Ping())
	return db
}

// countRows returns the number of rows in audit_log.
func countRows(t testing.TB, db *sql.DB) int64 {
	t.Helper()
	var n int64
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM audit_log`).Scan(&n))
	return n
}

// readLog returns the content of the log file at path; empty when the file
// does not exist (lumberjack creates it on the first write).
func readLog(t testing.TB, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	return raw
}

// logLines returns the lines of the log file at path without their
// newlines. The file must end with a newline: a torn last line fails the
// test.
func logLines(t testing.TB, path string) []string {
	t.Helper()
	raw := readLog(t, path)
	if len(raw) == 0 {
		return nil
	}
	require.True(t, bytes.HasSuffix(raw, []byte("\n")), "%s does not end with a newline", path)
	return strings.Split(string(raw[:len(raw)-1]), "\n")
}

// chainAnchorLine matches the chain-head line the library writes after each
// committed batch (see Verify). It belongs to no event.
var chainAnchorLine = regexp.MustCompile(`^\[INFO\] \S+ AUDIT-CHAIN head id=\d+ seq=\d+ mac=[0-9a-f]{64} tag=[0-9a-f]{32}$`)

// eventLines returns the lines that belong to events: all but the chain-head
// anchors.
func eventLines(lines []string) []string {
	var out []string
	for _, l := range lines {
		if !chainAnchorLine.MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

// linesWithPrefix returns the lines that start with prefix, e.g. "[INFO] ".
func linesWithPrefix(lines []string, prefix string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// storedRow is one audit_log row as it is on disk, every column as stored.
type storedRow struct {
	ID            int64
	CreatedAt     string // the stored text
	UserID        sql.NullInt64
	Action        string
	Resource      sql.NullString
	Details       sql.NullString
	IP            sql.NullString
	ActorUsername sql.NullString
	ActorEmail    sql.NullString
}

// readRows returns audit_log's rows in id order.
func readRows(t testing.TB, db *sql.DB) []storedRow {
	t.Helper()
	// CAST: the driver would turn a DATETIME column into a time.Time and
	// hide the text that is stored.
	rows, err := db.Query(`SELECT id, CAST(created_at AS TEXT), user_id, action, resource, details, ip, actor_username, actor_email
		FROM audit_log ORDER BY id`)
	require.NoError(t, err)
	defer rows.Close()
	var out []storedRow
	for rows.Next() {
		var r storedRow
		require.NoError(t, rows.Scan(&r.ID, &r.CreatedAt, &r.UserID, &r.Action, &r.Resource, &r.Details, &r.IP,
			&r.ActorUsername, &r.ActorEmail))
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

// trekSchema is the users table and the audit_log table exactly as TREK's
// server creates them (CONTRACT §3).
const trekSchema = `
CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT, email TEXT);
CREATE TABLE audit_log (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
	user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
	action TEXT NOT NULL,
	resource TEXT,
	details TEXT,
	ip TEXT
);
CREATE INDEX idx_audit_log_created ON audit_log(created_at DESC);`

// createTrekDB makes a database at path as TREK's server leaves it: TREK's
// users and audit_log tables, with the users given as id -> username (email
// username@example.com). It returns the test's handle (see openTestDB).
func createTrekDB(t testing.TB, path string, users map[int64]string) *sql.DB {
	t.Helper()
	db := openTestDB(t, path)
	_, err := db.Exec(trekSchema)
	require.NoError(t, err)
	for id, name := range users {
		_, err := db.Exec(`INSERT INTO users (id, username, email) VALUES (?, ?, ?)`, id, name, name+"@example.com")
		require.NoError(t, err)
	}
	return db
}

// insertTrekRow inserts a row the way TREK's own server does: only TREK's
// columns, created_at left to its default. Pass nil for NULL.
func insertTrekRow(t testing.TB, db *sql.DB, userID any, action string, resource, details, ip any) int64 {
	t.Helper()
	res, err := db.Exec(`INSERT INTO audit_log (user_id, action, resource, details, ip) VALUES (?, ?, ?, ?, ?)`,
		userID, action, resource, details, ip)
	require.NoError(t, err)
	id, err := res.LastInsertId()
	require.NoError(t, err)
	return id
}

// validEvent returns an event under info's action that carries everything
// the catalogue requires of it, with details shaped as TREK's handlers send
// them, and Resource "res:<action>".
func validEvent(info ActionInfo) Event {
	e := Event{Action: info.Action, Resource: "res:" + string(info.Action)}
	if len(info.RequiredDetails) > 0 || info.ChangeRequired {
		e.Details = map[string]any{}
	}
	for _, k := range info.RequiredDetails {
		switch k {
		case "title", "trip":
			e.Details[k] = "Lisbon"
		default:
			e.Details[k] = 12
		}
	}
	if info.ChangeRequired {
		e.Details["start_date"] = "2026-05-01"
	}
	if info.ResourceRequired {
		e.Resource = "get_trip_summary"
	}
	return e
}

// logSubject is what an event's [INFO] line quotes after the label: the
// trip's title where the event names one, else the resource.
func logSubject(e Event) string {
	for _, k := range []string{"title", "trip"} {
		if s, ok := e.Details[k].(string); ok && s != "" {
			return s
		}
	}
	return e.Resource
}

// fmtInfoLine is the [INFO] line expected for a plain-ASCII event.
func fmtInfoLine(logTime, who, label, subject, ip string) string {
	if ip == "" {
		ip = "-"
	}
	if subject == "" {
		return fmt.Sprintf("[INFO] %s %s %s ip=%s", logTime, who, label, ip)
	}
	return fmt.Sprintf("[INFO] %s %s %s %q ip=%s", logTime, who, label, subject, ip)
}

// decodeExactly decodes valid JSON with its numbers as written, so that
// two texts compare equal when they mean the same: a number too large for
// a float64 (1E700) is still valid JSON, which testify's JSONEq refuses.
func decodeExactly(t testing.TB, s string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v), "decoding %q", s)
	return v
}

// assertAcknowledgeableLoss checks that rep reports rows lost at row id,
// chain position seq, in a way Acknowledge accepts: as after a restore
// from a backup.
func assertAcknowledgeableLoss(t *testing.T, rep VerifyReport, id, seq int64) {
	t.Helper()
	require.NotNil(t, rep.Problem)
	assert.Equal(t, TamperMissing, rep.Problem.Kind, rep.Problem.Detail)
	assert.EqualValues(t, id, rep.Problem.ID)
	assert.EqualValues(t, seq, rep.Problem.Seq)
	assert.True(t, rep.Problem.Acknowledgeable)
}
