package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/trek-go/audit"
)

func statsFixture(t *testing.T) *fixture {
	f := newFixture(t, 10, trekRows...)
	// 40 rows of TREK's own over 1 to 4 May 2025.
	actions := []string{"user.login", "user.login_failed", "trip.update"}
	for i := range 40 {
		f.exec(t, `INSERT INTO audit_log (created_at, action, ip) VALUES (?, ?, '10.0.0.1')`,
			fmt.Sprintf("2025-05-%02d %02d:59:59", 1+i%4, i%24), actions[i%3])
	}
	return f
}

func parseStats(t *testing.T, stdout string) statsReport {
	t.Helper()
	var rep statsReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	return rep
}

// The counts agree with what the library's list reports as the total for
// the same action or day.
func TestStatsMatchTheList(t *testing.T) {
	f := statsFixture(t)
	ctx := context.Background()
	total := func(q audit.Query) int64 {
		t.Helper()
		q.Limit = 1
		page, err := f.a.List(ctx, q)
		require.NoError(t, err)
		return page.Total
	}

	cases := []struct {
		name         string
		args         []string
		since, until time.Time
	}{
		{"everything", nil, time.Time{}, time.Time{}},
		{"a range", []string{"--since", "2025-05-02T00:00:00Z", "--until", "2025-05-04T00:00:00Z"},
			time.Date(2025, 5, 2, 0, 0, 0, 0, time.UTC), time.Date(2025, 5, 4, 0, 0, 0, 0, time.UTC)},
		{"a range in another zone", []string{"--since", "2025-05-02T02:00:00+02:00"},
			time.Date(2025, 5, 2, 0, 0, 0, 0, time.UTC), time.Time{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := f.run(t, append([]string{"stats", "--json"}, tc.args...)...)
			require.Equal(t, exitOK, code, stderr)
			rep := parseStats(t, stdout)

			all := total(audit.Query{Since: tc.since, Until: tc.until})
			require.Positive(t, all)
			assert.Equal(t, all, rep.Total)

			var sum int64
			seen := map[string]bool{}
			for i, k := range rep.Actions {
				assert.Equal(t, total(audit.Query{Action: k.Action, Since: tc.since, Until: tc.until}), k.Count, k.Action)
				assert.False(t, seen[k.Action])
				seen[k.Action] = true
				if i > 0 {
					assert.GreaterOrEqual(t, rep.Actions[i-1].Count, k.Count, "most frequent first")
				}
				sum += k.Count
			}
			assert.Equal(t, rep.Total, sum)

			sum = 0
			for i, d := range rep.Days {
				day, err := time.Parse(time.DateOnly, d.Day)
				require.NoError(t, err, d.Day)
				assert.Equal(t, total(audit.Query{Since: day, Until: day.AddDate(0, 0, 1)}), d.Count, d.Day)
				if i > 0 {
					assert.Less(t, rep.Days[i-1].Day, d.Day, "oldest first")
				}
				sum += d.Count
			}
			assert.Equal(t, rep.Total, sum)
		})
	}

	code, stdout, _ := f.run(t, "stats", "--json")
	require.Equal(t, exitOK, code)
	rep := parseStats(t, stdout)
	assert.EqualValues(t, 10+2+40, rep.Total)

	// Bounds half a second past a stored second, 2 May 01:59:59 (two of
	// the 40 rows): since leaves those rows out, until takes them in.
	for _, tc := range []struct{ since, until string }{
		{"2025-05-02T01:59:59.5Z", "2025-05-03T00:00:00Z"},
		{"2025-05-02T00:00:00Z", "2025-05-02T01:59:59.5Z"},
	} {
		since, err := time.Parse(time.RFC3339, tc.since)
		require.NoError(t, err)
		until, err := time.Parse(time.RFC3339, tc.until)
		require.NoError(t, err)
		var want int64
		for i := range 40 { // as statsFixture writes them
			at := time.Date(2025, 5, 1+i%4, i%24, 59, 59, 0, time.UTC)
			if !at.Before(since) && at.Before(until) {
				want++
			}
		}
		require.Positive(t, want)
		code, stdout, stderr := f.run(t, "stats", "--json", "--since", tc.since, "--until", tc.until)
		require.Equal(t, exitOK, code, stderr)
		assert.Equal(t, want, parseStats(t, stdout).Total, "since %s until %s", tc.since, tc.until)
	}
	assert.Contains(t, rep.Actions, keyCount{"user.passkey_register", 1}, "keys outside the catalogue are counted")
	assert.Contains(t, rep.Days, dayCount{"2025-05-01", 10})
}

func TestStatsText(t *testing.T) {
	f := statsFixture(t)
	code, stdout, stderr := f.run(t, "stats", "--until", "2025-05-01T12:00:00Z")
	require.Equal(t, exitOK, code, stderr)
	// TREK's two March rows, and the six May rows i = 0, 4, 8, 24, 28, 32
	// (hours 0, 4 and 8), two of each action.
	assert.Equal(t, `8 entries on 3 days, 2025-03-01 to 2025-05-01 (UTC)

COUNT  ACTION
    3  user.login
    2  trip.update
    2  user.login_failed
    1  user.passkey_register

COUNT  DAY
    1  2025-03-01
    1  2025-03-02
    6  2025-05-01
`, stdout)

	code, stdout, _ = f.run(t, "stats", "--since", "2030-01-01T00:00:00Z")
	require.Equal(t, exitOK, code)
	assert.Equal(t, "0 entries\n", stdout)

	// A path the shell gave as //srv/...: a path still, not a URI's host.
	code, stdout, stderr = runCLI(t, t.Context(), "stats", "--db", "/"+f.db, "--log", f.log, "--until", "2025-05-01T12:00:00Z")
	require.Equal(t, exitOK, code, stderr)
	assert.True(t, strings.HasPrefix(stdout, "8 entries on 3 days"), stdout)
}

// stats opens the file read-only: on TREK's own database it adds none of
// the library's columns or tables.
func TestStatsChangesNothing(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	path := trekOnlyDB(t, dir, `INSERT INTO audit_log (action) VALUES ('user.login'), ('user.login'), ('trip.create')`)
	db, err := sql.Open("sqlite3", "file:"+path)
	require.NoError(t, err)
	defer db.Close()
	schema := func() string {
		var parts []string
		rows, err := db.Query(`SELECT sql FROM sqlite_master ORDER BY name`)
		require.NoError(t, err)
		defer rows.Close()
		for rows.Next() {
			var s sql.NullString
			require.NoError(t, rows.Scan(&s))
			parts = append(parts, s.String)
		}
		require.NoError(t, rows.Err())
		return strings.Join(parts, "\n")
	}
	before := schema()

	code, stdout, stderr := runCLI(t, context.Background(), "stats", "--json", "--db", path)
	require.Equal(t, exitOK, code, stderr)
	rep := parseStats(t, stdout)
	assert.EqualValues(t, 3, rep.Total)
	assert.Equal(t, []keyCount{{"user.login", 2}, {"trip.create", 1}}, rep.Actions)
	assert.Equal(t, before, schema())
	assert.False(t, fileExists(t, filepath.Join(dir, ".audit_key")))
}

func TestActions(t *testing.T) {
	cleanEnv(t)
	cat := audit.Catalogue()
	require.Len(t, cat, 46)

	code, stdout, stderr := runCLI(t, context.Background(), "actions")
	require.Equal(t, exitOK, code, stderr)
	rows := lines(stdout)
	require.Len(t, rows, 1+46)
	assert.Regexp(t, `^KEY +CATEGORY +DESCRIPTION$`, rows[0])
	for i, info := range cat {
		assert.Regexp(t, `^`+regexp.QuoteMeta(string(info.Action))+` +`+regexp.QuoteMeta(info.Category)+` +`+regexp.QuoteMeta(info.Description)+`$`, rows[i+1])
	}

	code, stdout, stderr = runCLI(t, context.Background(), "actions", "--json")
	require.Equal(t, exitOK, code, stderr)
	var got []map[string]string
	require.NoError(t, json.Unmarshal([]byte(stdout), &got))
	require.Len(t, got, 46)
	for i, info := range cat {
		assert.Equal(t, map[string]string{"action": string(info.Action), "category": info.Category,
			"description": info.Description}, got[i])
	}
}

// A table made by hand may hold NULL actions, which TREK's does not: stats
// counts them under an empty action rather than failing on the scan.
func TestStatsCountsNullActions(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	dbPath, logPath := filepath.Join(dir, "travel.db"), filepath.Join(dir, "logs", "trek.log")
	raw, err := sql.Open("sqlite3", "file:"+dbPath+"?_busy_timeout=10000")
	require.NoError(t, err)
	defer raw.Close()
	_, err = raw.Exec(`CREATE TABLE audit_log (id INTEGER PRIMARY KEY AUTOINCREMENT,
		created_at DATETIME DEFAULT CURRENT_TIMESTAMP, user_id INTEGER, action TEXT, resource TEXT, details TEXT, ip TEXT);
		INSERT INTO audit_log (action) VALUES (NULL), ('user.login'), (NULL)`)
	require.NoError(t, err)
	a, err := audit.Open(audit.Config{DBPath: dbPath, LogPath: logPath}) // as TREK's server does first
	require.NoError(t, err)
	require.NoError(t, a.Close())

	code, stdout, stderr := runCLI(t, context.Background(), "stats", "--json", "--db", dbPath, "--log", logPath)
	require.Equal(t, exitOK, code, stderr)
	rep := parseStats(t, stdout)
	assert.EqualValues(t, 3, rep.Total)
	assert.ElementsMatch(t, []keyCount{{"", 2}, {"user.login", 1}}, rep.Actions)
}

// created_at holds a four-digit year, so a bound whose UTC year has five
// digits (or is 0 or less) would compare as text in the wrong place:
// stats refuses it, naming the flag, as the list does; and a since not
// before until, which counts nothing. A bound at either end of the years
// 1 to 9999 is taken.
func TestStatsTimeBoundsPastTheYear9999(t *testing.T) {
	f := statsFixture(t)
	cases := []struct {
		name string
		args []string
		want string // the error; "": counted, every entry
	}{
		{"until, year 10000 in UTC", []string{"--until", "9999-12-31T23:00:00-05:00"},
			"trek-audit stats: --until 9999-12-31T23:00:00-05:00 is outside the years 1 to 9999 in UTC\n"},
		{"since, year 10000 in UTC", []string{"--since", "9999-12-31T23:00:00-05:00"},
			"trek-audit stats: --since 9999-12-31T23:00:00-05:00 is outside the years 1 to 9999 in UTC\n"},
		{"since, year 0", []string{"--since", "0000-06-01T00:00:00Z"},
			"trek-audit stats: --since 0000-06-01T00:00:00Z is outside the years 1 to 9999 in UTC\n"},
		{"until, year 0 in UTC", []string{"--until", "0001-01-01T00:30:00+01:00"},
			"trek-audit stats: --until 0001-01-01T00:30:00+01:00 is outside the years 1 to 9999 in UTC\n"},
		{"since after until", []string{"--since", "2025-05-03T00:00:00Z", "--until", "2025-05-02T00:00:00Z"},
			"trek-audit stats: --since must be before --until\n"},
		{"since equal to until", []string{"--since", "2025-05-03T02:00:00+02:00", "--until", "2025-05-03T00:00:00Z"},
			"trek-audit stats: --since must be before --until\n"},
		{"the last second of 9999", []string{"--until", "9999-12-31T18:59:59-05:00"}, ""},
		{"the first of year 1", []string{"--since", "0001-01-01T00:00:01Z", "--until", "9999-12-31T23:59:59Z"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := f.run(t, append([]string{"stats", "--json"}, tc.args...)...)
			if tc.want != "" {
				assert.Equal(t, exitError, code)
				assert.Empty(t, stdout)
				assert.Equal(t, tc.want, stderr)
				return
			}
			require.Equal(t, exitOK, code, stderr)
			assert.EqualValues(t, 10+2+40, parseStats(t, stdout).Total)
		})
	}
}

// The zero time (0001-01-01T00:00:00Z, in any zone) is refused as a bound,
// as the admin list refuses it: the library's Query reads a zero bound as
// none, and so did stats, which counted every entry for a --until at that
// instant and did not refuse a --since after it. A bound is there when
// its flag is given.
func TestTimeFlagsRefuseTheZeroTime(t *testing.T) {
	f := statsFixture(t)
	cases := []struct {
		name  string
		args  []string
		flag  string
		value string
	}{
		{"until alone", []string{"--until", "0001-01-01T00:00:00Z"}, "until", "0001-01-01T00:00:00Z"},
		{"since alone", []string{"--since", "0001-01-01T00:00:00Z"}, "since", "0001-01-01T00:00:00Z"},
		{"the same instant in another zone", []string{"--until", "0001-01-01T01:00:00+01:00"}, "until", "0001-01-01T01:00:00+01:00"},
		{"since after it", []string{"--since", "2025-05-03T00:00:00Z", "--until", "0001-01-01T00:00:00Z"}, "until", "0001-01-01T00:00:00Z"},
	}
	for _, cmd := range []string{"stats", "list", "tail"} {
		for _, tc := range cases {
			t.Run(cmd+" "+tc.name, func(t *testing.T) {
				code, stdout, stderr := f.run(t, append([]string{cmd}, tc.args...)...)
				assert.Equal(t, exitError, code)
				assert.Empty(t, stdout)
				assert.Contains(t, stderr, fmt.Sprintf("trek-audit %s: invalid value %q for flag -%s: want a time after 0001-01-01T00:00:00Z",
					cmd, tc.value, tc.flag))
			})
		}
	}
}
