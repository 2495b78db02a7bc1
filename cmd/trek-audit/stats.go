package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // the driver the library uses
)

var statsCmd = &command{
	name:     "stats",
	synopsis: "stats [--since T] [--until T] [--json]",
	summary:  "count entries per action and per day (UTC)",
	about: `
Counts the entries of audit_log per action key (keys outside the catalogue
included) and per day in UTC, optionally between --since (inclusive) and
--until (exclusive), RFC 3339 times after 0001-01-01T00:00:00Z and in the
years 1 to 9999 in UTC, as the list takes them.

The library's list answers one page at a time, and counting through it would
read every row into memory page by page; stats instead runs two GROUP BY
queries over TREK's audit_log table, whose columns are fixed. It opens the
database read-only, as every command but acknowledge and prune does, and needs none of
the library's columns: it works on a database the library has never opened.`,
	example: "trek-audit stats --since 2026-04-01T00:00:00Z --json",
	run:     runStats,
}

// sqliteTime is how TREK's created_at stores time (UTC); boundTime is
// --since and --until as created_at's text compares with them, with the
// fraction of a second if there is one, as the library's list does.
const (
	sqliteTime = "2006-01-02 15:04:05"
	boundTime  = sqliteTime + ".999999999"
)

// statsReport is what stats prints; --json prints it as is.
type statsReport struct {
	Total   int64      `json:"total"`
	Actions []keyCount `json:"actions"` // most frequent first
	Days    []dayCount `json:"days"`    // oldest first
	Since   *time.Time `json:"since,omitempty"`
	Until   *time.Time `json:"until,omitempty"`
}

type keyCount struct {
	Action string `json:"action"`
	Count  int64  `json:"count"`
}

type dayCount struct {
	Day   string `json:"day"` // YYYY-MM-DD in UTC
	Count int64  `json:"count"`
}

func runStats(ctx context.Context, c *cli, fs *flag.FlagSet, args []string) int {
	var since, until time.Time
	fs.Func("since", "count entries at or after this RFC 3339 `time`", timeFlag(&since))
	fs.Func("until", "count entries before this RFC 3339 `time`", timeFlag(&until))
	asJSON := fs.Bool("json", false, "print the counts as JSON")
	if code, ok := c.parse(fs, args); !ok {
		return code
	}
	// A bound is there when its flag was given, whatever its value: the
	// value alone cannot tell, since any time is one a flag could give.
	sinceP, untilP := given(fs, "since", &since), given(fs, "until", &until)
	if err := checkBounds(sinceP, untilP); err != nil {
		return c.fail("stats", err)
	}
	if err := c.checkDB(); err != nil {
		return c.fail("stats", err)
	}
	rep, err := countEntries(ctx, c.db, sinceP, untilP)
	if err != nil {
		return c.fail("stats", err)
	}
	if *asJSON {
		err = newJSONPrinter(true).print(c.stdout, rep)
	} else {
		err = printStats(c, rep)
	}
	if err != nil {
		return c.fail("stats", err)
	}
	return exitOK
}

// given is t if the flag name was given, else nil (no bound).
func given(fs *flag.FlagSet, name string, t *time.Time) *time.Time {
	if isSet(fs, name) {
		return t
	}
	return nil
}

// checkBounds refuses what the list's filter refuses (see audit.Query):
// a bound outside the years 1 to 9999 in UTC, which created_at's text
// cannot hold (year 10000 has five digits and sorts before year 2026 as
// text, so such a bound would count nothing or everything), and a since
// not before until, which counts nothing. (The zero time, which the list
// would read as no bound, timeFlag refuses.) A nil bound is none.
func checkBounds(since, until *time.Time) error {
	for _, b := range []struct {
		flag string
		t    *time.Time
	}{{"--since", since}, {"--until", until}} {
		if b.t == nil {
			continue
		}
		if y := b.t.UTC().Year(); y < 1 || y > 9999 {
			return fmt.Errorf("%s %s is outside the years 1 to 9999 in UTC", b.flag, b.t.Format(time.RFC3339))
		}
	}
	if since != nil && until != nil && !since.Before(*until) {
		return fmt.Errorf("--since must be before --until")
	}
	return nil
}

// countEntries runs the GROUP BY queries on a read-only handle, between
// since and until where each is not nil.
func countEntries(ctx context.Context, path string, since, until *time.Time) (statsReport, error) {
	rep := statsReport{Actions: []keyCount{}, Days: []dayCount{}}
	// Cleaned first: "file://tmp/..." would name a host, tmp.
	dsnPath := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(filepath.Clean(path))
	db, err := sql.Open("sqlite3", "file:"+dsnPath+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		return rep, err
	}
	defer db.Close()

	var where []string
	var args []any
	if since != nil {
		where = append(where, "created_at >= ?")
		args = append(args, since.UTC().Format(boundTime))
		rep.Since = since
	}
	if until != nil {
		where = append(where, "created_at < ?")
		args = append(args, until.UTC().Format(boundTime))
		rep.Until = until
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}

	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true}) // one snapshot for both counts
	if err != nil {
		return rep, fmt.Errorf("opening %s: %w", path, err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT COALESCE(action, ''), COUNT(*) AS n FROM audit_log`+cond+
		` GROUP BY 1 ORDER BY n DESC, 1`, args...)
	if err != nil {
		return rep, fmt.Errorf("counting per action: %w", err)
	}
	for rows.Next() {
		var k keyCount
		if err := rows.Scan(&k.Action, &k.Count); err != nil {
			rows.Close()
			return rep, err
		}
		rep.Actions = append(rep.Actions, k)
		rep.Total += k.Count
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("counting per action: %w", err)
	}
	rows, err = tx.QueryContext(ctx, `SELECT COALESCE(substr(CAST(created_at AS TEXT), 1, 10), '-') AS day, COUNT(*)
		FROM audit_log`+cond+` GROUP BY day ORDER BY day`, args...)
	if err != nil {
		return rep, fmt.Errorf("counting per day: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d dayCount
		if err := rows.Scan(&d.Day, &d.Count); err != nil {
			return rep, err
		}
		rep.Days = append(rep.Days, d)
	}
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("counting per day: %w", err)
	}
	return rep, nil
}

func printStats(c *cli, rep statsReport) error {
	w := c.stdout
	fmt.Fprintf(w, "%d entries", rep.Total)
	if n := len(rep.Days); n > 0 {
		if n == 1 {
			fmt.Fprintf(w, " on 1 day, %s (UTC)", escape(rep.Days[0].Day))
		} else {
			fmt.Fprintf(w, " on %d days, %s to %s (UTC)", n, escape(rep.Days[0].Day), escape(rep.Days[n-1].Day))
		}
	}
	fmt.Fprintln(w)
	if rep.Total == 0 {
		return nil
	}
	width := max(len(fmt.Sprint(rep.Total)), len("COUNT"))
	fmt.Fprintf(w, "\n%*s  %s\n", width, "COUNT", "ACTION")
	for _, k := range rep.Actions {
		fmt.Fprintf(w, "%*d  %s\n", width, k.Count, escape(k.Action))
	}
	fmt.Fprintf(w, "\n%*s  %s\n", width, "COUNT", "DAY")
	for _, d := range rep.Days {
		if _, err := fmt.Fprintf(w, "%*d  %s\n", width, d.Count, escape(d.Day)); err != nil {
			return err
		}
	}
	return nil
}
