package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/trek-go/audit"
)

// allEntries reads every entry through the library, newest first.
func allEntries(t *testing.T, a *audit.Auditor) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	q := audit.Query{Limit: audit.MaxPageLimit}
	for {
		page, err := a.List(context.Background(), q)
		require.NoError(t, err)
		out = append(out, page.Entries...)
		if page.NextCursor == nil {
			return out
		}
		q.Cursor = *page.NextCursor
	}
}

// exportFixture has more entries than one page of the export (500), and
// rows with hostile text from TREK's own code.
func exportFixture(t *testing.T) *fixture {
	f := newFixture(t, 10, trekRows...)
	tx, err := f.raw.Begin()
	require.NoError(t, err)
	for i := range 1200 {
		_, err := tx.Exec(`INSERT INTO audit_log (created_at, user_id, action, resource, details, ip, actor_username, actor_email)
			VALUES (?, ?, 'trip.update', ?, ?, ?, ?, ?)`,
			fmt.Sprintf("2025-06-%02d 12:00:%02d", i%28+1, i%60), i%7+1, fmt.Sprintf("trip:%d", i),
			fmt.Sprintf(`{"tripId":%d,"title":"Trip, \"quoted\"\nsecond line <b>","start_date":"2026-05-01"}`, i),
			"203.0.113.5", fmt.Sprintf("user%d", i%7+1), nil)
		require.NoError(t, err)
	}
	require.NoError(t, tx.Commit())
	f.exec(t, `INSERT INTO audit_log (action, resource, details, ip, actor_username)
		VALUES ('user.login_failed', ?, '{"note":"x\u202ey"}', '+1', '@SUM(A1)')`, "=HYPERLINK(\"http://x\")\r\n\x1b")
	f.exec(t, `INSERT INTO audit_log (action, details) VALUES ('user.login', 'not json')`)
	return f
}

func TestExportRoundTrip(t *testing.T) {
	f := exportFixture(t)
	want := allEntries(t, f.a)
	require.Len(t, want, 10+2+1200+2)

	t.Run("jsonl", func(t *testing.T) {
		out := filepath.Join(f.dir, "export", "audit.jsonl")
		require.NoError(t, os.Mkdir(filepath.Dir(out), 0o700))
		code, stdout, stderr := f.run(t, "export", "--format", "jsonl", "--out", out)
		require.Equal(t, exitOK, code, stderr)
		assert.Empty(t, stdout)
		assert.Equal(t, fmt.Sprintf("exported %d entries to %s\n", len(want), out), stderr)
		st, err := os.Stat(out)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
		left, err := os.ReadDir(filepath.Dir(out))
		require.NoError(t, err)
		assert.Len(t, left, 1, "no temporary file is left behind")

		raw, err := os.ReadFile(out)
		require.NoError(t, err)
		var got []audit.Entry
		for _, l := range lines(string(raw)) {
			var e audit.Entry
			require.NoError(t, json.Unmarshal([]byte(l), &e), l)
			got = append(got, e)
		}
		require.Len(t, got, len(want))
		assert.JSONEq(t, string(must(json.Marshal(want))), string(must(json.Marshal(got))))
	})

	t.Run("csv", func(t *testing.T) {
		// As stored: a program reads the file back.
		code, stdout, stderr := f.run(t, "export", "--format", "csv", "--spreadsheet-safe=false")
		require.Equal(t, exitOK, code, stderr)
		assert.Empty(t, stderr)
		// Fields are written exactly; encoding/csv's Reader drops a
		// carriage return before a newline even inside quotes, so the
		// comparison below reads "\r\n" as "\n" and this checks the bytes.
		assert.Contains(t, stdout, "\"=HYPERLINK(\"\"http://x\"\")\r\n\x1b\"")
		recs, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
		require.NoError(t, err)
		require.Len(t, recs, 1+len(want))
		textOf := func(s *string) string {
			if s == nil {
				return ""
			}
			return strings.ReplaceAll(*s, "\r\n", "\n")
		}
		assert.Equal(t, []string{"id", "created_at", "user_id", "username", "user_email", "action", "resource", "details", "ip"}, recs[0])
		for i, e := range want {
			r := recs[i+1]
			require.Len(t, r, 9)
			assert.Equal(t, strconv.FormatInt(e.ID, 10), r[0])
			assert.Equal(t, e.CreatedAt, r[1])
			if e.UserID == nil {
				assert.Empty(t, r[2])
			} else {
				assert.Equal(t, strconv.FormatInt(*e.UserID, 10), r[2])
			}
			assert.Equal(t, textOf(e.Username), r[3])
			assert.Equal(t, textOf(e.UserEmail), r[4])
			assert.Equal(t, string(e.Action), r[5])
			assert.Equal(t, textOf(e.Resource), r[6])
			if e.Details == nil {
				assert.Empty(t, r[7])
			} else {
				assert.JSONEq(t, string(e.Details), r[7])
			}
			assert.Equal(t, textOf(e.IP), r[8])
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestExportFilters(t *testing.T) {
	f := exportFixture(t)
	code, stdout, stderr := f.run(t, "export", "--since", "2025-06-03T00:00:00Z", "--until", "2025-06-04T00:00:00Z",
		"--resource", "trip:2")
	require.Equal(t, exitOK, code, stderr)
	rows := lines(stdout)
	require.Len(t, rows, 1)
	var e audit.Entry
	require.NoError(t, json.Unmarshal([]byte(rows[0]), &e))
	assert.Equal(t, "2025-06-03T12:00:02Z", e.CreatedAt)
}

// TestExportSpreadsheetSafe: a CSV export is opened in a spreadsheet more
// often than not, and a user chooses what their name or a resource says:
// a field a spreadsheet would run as a formula is defused unless asked not
// to be.
func TestExportSpreadsheetSafe(t *testing.T) {
	f := exportFixture(t)
	for _, tc := range []struct {
		name string
		args []string
		safe bool
	}{
		{"by default", nil, true},
		{"asked for", []string{"--spreadsheet-safe"}, true},
		{"as stored", []string{"--spreadsheet-safe=false"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := f.run(t, append(append([]string{"export", "--format", "csv"}, tc.args...), "--action", "user.login_failed")...)
			require.Equal(t, exitOK, code, stderr)
			recs, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
			require.NoError(t, err)
			require.Len(t, recs, 1+1+2, "the header, the hostile row, two sample failed logins")
			hostile := recs[1]
			quote := map[bool]string{true: "'", false: ""}[tc.safe]
			assert.Equal(t, quote+"@SUM(A1)", hostile[3])
			// "\r\n" reads back as "\n": see the round trip.
			assert.Equal(t, quote+"=HYPERLINK(\"http://x\")\n\x1b", hostile[6], "the field itself is kept")
			assert.Equal(t, quote+"+1", hostile[8])
			assert.JSONEq(t, `{"note":"x\u202ey"}`, hostile[7], "JSON starts with { and is left alone")
		})
	}
}

// TestExportToATerminal: CSV on a terminal shows control characters as
// escapes, so that a name with an escape sequence in it cannot drive the
// operator's terminal; JSON Lines escape them everywhere.
func TestExportToATerminal(t *testing.T) {
	f := exportFixture(t)
	q := audit.Query{Action: "user.login_failed"}
	var csvOut, jsonOut bytes.Buffer
	_, err := export(t.Context(), f.a, q, &csvOut, "csv", csvOptions{safe: true, terminal: true})
	require.NoError(t, err)
	_, err = export(t.Context(), f.a, q, &jsonOut, "jsonl", csvOptions{})
	require.NoError(t, err)
	for name, out := range map[string]string{"csv": csvOut.String(), "jsonl": jsonOut.String()} {
		for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			requireTerminalSafe(t, l, name)
		}
	}
	recs, err := csv.NewReader(&csvOut).ReadAll()
	require.NoError(t, err)
	assert.Equal(t, `'=HYPERLINK("http://x")\r\n\x1b`, recs[1][6], "escaped, then defused")
	var e audit.Entry
	require.NoError(t, json.Unmarshal([]byte(lines(jsonOut.String())[0]), &e))
	require.NotNil(t, e.Resource)
	assert.Equal(t, "=HYPERLINK(\"http://x\")\r\n\x1b", *e.Resource, "JSON means what was stored")
	assert.Contains(t, jsonOut.String(), `x\u202ey`)
}

func TestExportFailsWithoutLeavingAFile(t *testing.T) {
	f := newFixture(t, 3)
	out := filepath.Join(f.dir, "missing-folder", "audit.csv")
	code, _, stderr := f.run(t, "export", "--format", "csv", "--out", out)
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "missing-folder")
	assert.False(t, fileExists(t, out))
}

// TestExportOutIsARegularFile: --out is written by renaming a finished
// file onto it, which would put a regular file in place of a link, or of
// a device or a pipe (as root, --out /dev/stdout would replace the
// system's). Those are refused, and left as they were; a regular file is
// replaced whole.
func TestExportOutIsARegularFile(t *testing.T) {
	f := newFixture(t, 3)
	target := filepath.Join(f.dir, "target.csv")
	require.NoError(t, os.WriteFile(target, []byte("old\n"), 0o600))
	link := filepath.Join(f.dir, "link.csv")
	require.NoError(t, os.Symlink(target, link))
	folder := filepath.Join(f.dir, "folder")
	require.NoError(t, os.Mkdir(folder, 0o700))
	for _, out := range []string{link, folder} {
		code, _, stderr := f.run(t, "export", "--format", "csv", "--out", out)
		assert.Equal(t, exitError, code, out)
		assert.Contains(t, stderr, "is not a regular file", out)
		assert.Contains(t, stderr, "write to stdout and redirect it there instead", out)
	}
	st, err := os.Lstat(link)
	require.NoError(t, err)
	assert.NotZero(t, st.Mode()&os.ModeSymlink, "the link is still a link")
	old, err := os.ReadFile(target)
	require.NoError(t, err)
	assert.Equal(t, "old\n", string(old))

	code, _, stderr := f.run(t, "export", "--format", "csv", "--out", target)
	require.Equal(t, exitOK, code, stderr)
	data, err := os.ReadFile(target)
	require.NoError(t, err)
	assert.Len(t, lines(string(data)), 4, "the header and three entries")
}

// heapProbe is an output that keeps nothing: it counts lines and bytes,
// and every `every` lines it collects garbage and records the live heap.
type heapProbe struct {
	every, lines, bytes int64
	peak                uint64
}

func (p *heapProbe) Write(b []byte) (int, error) {
	p.bytes += int64(len(b))
	for _, c := range b {
		if c != '\n' {
			continue
		}
		p.lines++
		if p.lines%p.every == 0 {
			p.peak = max(p.peak, liveHeap())
		}
	}
	return len(b), nil
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// The export holds one page at a time: exporting 200,000 rows, over 50 MB
// of JSON Lines or 35 MB of CSV, the live heap never grows by more than
// 4 MB.
func TestExportConstantMemory(t *testing.T) {
	const rows = 200_000
	cleanEnv(t)
	dir := t.TempDir()
	db, log := filepath.Join(dir, "travel.db"), filepath.Join(dir, "logs", "trek.log")
	a, err := audit.Open(audit.Config{DBPath: db, LogPath: log})
	require.NoError(t, err)
	require.NoError(t, a.Close())
	fillRows(t, db, rows)

	for _, format := range []string{"jsonl", "csv"} {
		t.Run(format, func(t *testing.T) {
			probe := &heapProbe{every: rows / 10}
			var stderr bytes.Buffer
			base := liveHeap()
			code := run(context.Background(), []string{"export", "--format", format, "--db", db, "--log", log}, probe, &stderr)
			require.Equal(t, exitOK, code, stderr.String())
			header := map[string]int64{"jsonl": 0, "csv": 1}[format]
			assert.EqualValues(t, rows+header, probe.lines)
			assert.Greater(t, probe.bytes, int64(30<<20), "the output is far larger than the bound below")
			grown := int64(probe.peak) - int64(base)
			t.Logf("%s: %d MB written, live heap grew by at most %d KB", format, probe.bytes>>20, grown>>10)
			assert.Less(t, grown, int64(4<<20))
		})
	}
}

// fillRows inserts n rows with TREK's columns and the actor snapshot in
// one statement, generated by SQLite itself, which is fast even under the
// race detector.
func fillRows(t *testing.T, path string, n int) {
	t.Helper()
	raw, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=10000&_synchronous=OFF")
	require.NoError(t, err)
	defer raw.Close()
	_, err = raw.Exec(`
		WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < ? - 1)
		INSERT INTO audit_log (created_at, user_id, action, resource, details, ip, actor_username, actor_email)
		SELECT printf('2025-%02d-%02d 08:%02d:%02d', i % 12 + 1, i % 28 + 1, i % 60, i % 60), i % 300 + 1, 'trip.update',
			'trip:' || i, printf('{"tripId":%d,"title":"Trip number %d to somewhere far","start_date":"2026-05-01"}', i, i),
			printf('198.51.%d.%d', i % 200, i % 250 + 1), 'user' || (i % 300 + 1), 'user' || (i % 300 + 1) || '@example.com'
		FROM seq`, n)
	require.NoError(t, err)
}
