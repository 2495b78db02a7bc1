package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/trek-go/audit"
)

var pruneCmd = &command{
	name:     "prune",
	synopsis: "prune --before TIME | --keep AGE [--reason TEXT] [--json]",
	summary:  "show, then delete, the entries recorded before a time, keeping the chain verifiable (retention)",
	about: `
TREK never deletes audit entries. Where they must not be kept for good
(they hold IP and email addresses) or the table has grown too large,
prune deletes the oldest: those recorded before --before, oldest first, up
to the first entry recorded at or after it, and never the newest two of
the chain. Entries deleted by hand (sqlite3 ... DELETE) take the chain's
first links with them, and verify then reports them gone, for good.

Without --reason, prune shows what it would delete, and changes nothing.
With your reason, it deletes those entries and, in the same transaction,
records where the chain now starts, under a tag only the chain key makes.
verify then starts its walk there, passes over the chain heads in
trek.log of the entries deleted, and shows the record in every report; an
entry deleted from the chain in any other way is reported as before.

It first checks the chain as verify does, and refuses unless it is intact:
deleting entries of a chain that does not verify could take the evidence
with them. Where trek.log holds no chain head (verify exits 2), the
chain in the table is checked alone: the rows cut off its end, which only
the heads show, are not among those prune deletes. It needs the chain key. It reads first as verify does, so it
migrates nothing. It is safe while TREK runs, but TREK's
own writes wait while it deletes (see the README for how long that takes:
prune in steps, an older --before first, when there is much to delete).
The database file keeps its size; SQLite reuses the space for new
entries (VACUUM, with TREK stopped, gives it back to the disk).

--before takes a date (2025-01-01, midnight UTC) or an RFC 3339 time, to
the second. --keep takes an age instead, and deletes what is older: 1y
(a calendar year), 52w, 365d, or a duration such as 720h; the time it
stands for is shown, and is the one to give --before to delete exactly
what was shown. A cron job that keeps a year of entries:

  trek-audit prune --keep 1y --reason "cron: entries are kept for a year"

Exit status: 0 shown, deleted, or nothing to delete; 2 refused or could
not delete.`,
	example: `trek-audit prune --before 2025-01-01 --reason "alice: entries are kept for a year"`,
	run:     runPrune,
}

// beforeFlag parses --before: a date, midnight UTC, or an RFC 3339 time.
func beforeFlag(dst *time.Time) func(string) error {
	return func(s string) error {
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t, err = time.Parse(time.RFC3339, s)
		}
		if err != nil {
			return fmt.Errorf("want a date such as 2025-01-01 or an RFC 3339 time such as 2025-01-01T00:00:00Z")
		}
		*dst = t
		return nil
	}
}

// maxKeep bounds the count of --keep, so that no sum of days overflows;
// a time before the year 1 is refused all the same.
const maxKeep = 1_000_000

// keepAge returns the time --keep age stands for at now: now less age,
// to the second. age is a count of calendar years (y), weeks (w) or days
// (d), or a Go duration (720h); it must be more than nothing, as keeping
// nothing would delete every entry but the newest two.
func keepAge(age string, now time.Time) (time.Time, error) {
	const want = "want an age such as 1y, 52w, 365d or 720h"
	now = now.UTC().Truncate(time.Second)
	var t time.Time
	if n, unit := len(age), byte(0); n > 1 {
		unit = age[n-1]
		if unit == 'y' || unit == 'w' || unit == 'd' {
			count, err := strconv.Atoi(age[:n-1])
			switch {
			case err != nil || age[0] == '+' || age[0] == '-':
				return time.Time{}, fmt.Errorf("%s", want)
			case count == 0:
				return time.Time{}, fmt.Errorf("%s of more than nothing: keeping nothing would delete every entry but the newest two", want)
			case count > maxKeep:
				return time.Time{}, fmt.Errorf("%s: %d is more than %d", want, count, maxKeep)
			}
			switch unit {
			case 'y':
				t = now.AddDate(-count, 0, 0)
			case 'w':
				t = now.AddDate(0, 0, -7*count)
			default:
				t = now.AddDate(0, 0, -count)
			}
		}
	}
	if t.IsZero() {
		d, err := time.ParseDuration(age)
		if err != nil || d < 0 {
			return time.Time{}, fmt.Errorf("%s", want)
		}
		if d < time.Second {
			return time.Time{}, fmt.Errorf("%s of at least a second: keeping nothing would delete every entry but the newest two", want)
		}
		t = now.Add(-d.Truncate(time.Second))
	}
	if t.Year() < 1 {
		return time.Time{}, fmt.Errorf("%s: %s reaches back before the year 1", want, age)
	}
	return t, nil
}

func runPrune(ctx context.Context, c *cli, fs *flag.FlagSet, args []string) int {
	var before time.Time
	fs.Func("before", "delete the entries recorded before this `time` (a date, midnight UTC, or RFC 3339)", beforeFlag(&before))
	fs.Func("keep", "delete the entries older than this `age` (1y, 52w, 365d, 720h), instead of --before", func(age string) (err error) {
		before, err = keepAge(age, time.Now())
		return err
	})
	reason := fs.String("reason", "", "who prunes, and why; without it, show what would be deleted")
	asJSON := fs.Bool("json", false, "print what is (or would be) deleted as JSON on stdout")
	if code, ok := c.parse(fs, args); !ok {
		return code
	}
	switch {
	case isSet(fs, "before") && isSet(fs, "keep"):
		fmt.Fprintln(c.stderr, "trek-audit prune: give --before or --keep, not both")
		return exitError
	case !isSet(fs, "before") && !isSet(fs, "keep"):
		fmt.Fprintln(c.stderr, "trek-audit prune: --before (or --keep) is required: the entries recorded before it are deleted")
		return exitError
	}
	// First read-only, as acknowledge: that refuses a schema older or
	// newer than this build's, which the read-write open below would
	// migrate (or refuse) instead. Without a reason, it shows what there
	// is to delete; with one, Prune walks the chain itself, once.
	a, err := c.open(true)
	if err != nil {
		return c.fail("prune", err)
	}
	var p audit.Pruning
	if *reason == "" {
		p, err = a.PrunePlan(ctx, before)
	}
	a.Close()
	if err == nil && *reason != "" {
		a, oerr := c.openAs(true, false)
		if oerr != nil {
			return c.fail("prune", oerr)
		}
		p, err = a.Prune(ctx, before, *reason)
		if cerr := a.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return c.fail("prune", err)
	}
	if *asJSON { // rows 0: nothing to delete; id 0: not deleted
		if err := newJSONPrinter(true).print(c.stdout, p); err != nil {
			return c.fail("prune", err)
		}
		return exitOK
	}
	w := c.stdout
	switch {
	case p.Rows == 0:
		fmt.Fprintf(w, "Nothing to delete: no entry was recorded before %s (the newest two of the chain are always kept).\n",
			before.UTC().Truncate(time.Second).Format(time.RFC3339))
	case p.ID == 0:
		fmt.Fprintln(w, "To delete:")
		printPruning(c, "  ", p)
		fmt.Fprintf(w, "To delete them, once you are sure:\n  trek-audit prune --before %s --reason \"who: why\"\n", p.Before)
	default:
		fmt.Fprintln(w, "Deleted:")
		printPruning(c, "  ", p)
	}
	return exitOK
}

// printPruning prints one pruning, each line after indent; one not yet
// made (ID 0) without the header, and in the present tense.
func printPruning(c *cli, indent string, p audit.Pruning) {
	w := c.stdout
	were, starts := "would be", "would start"
	if p.ID != 0 {
		fmt.Fprintf(w, "%spruning %d, %s: %s\n", indent, p.ID, escape(p.CreatedAt), escape(p.Reason))
		indent += "  "
		were, starts = "were", "starts"
	}
	fmt.Fprintf(w, "%s%d entries recorded before %s %s deleted, from %s to %s\n", indent, p.Rows, p.Before, were, escape(p.Oldest), escape(p.Newest))
	if p.FirstSeq > 0 {
		fmt.Fprintf(w, "%sthe chain %s at row %d, chain position %d\n", indent, starts, p.FirstID, p.FirstSeq)
	}
}

// prunesShown bounds the prunings verify lists: a daily retention job
// leaves one a day. --json lists them all.
const prunesShown = 3

// printPrunings prints the newest prunesShown of list, after indent.
func printPrunings(c *cli, indent string, list []audit.Pruning) {
	if n := len(list) - prunesShown; n > 0 {
		fmt.Fprintf(c.stdout, "%s(%d earlier prunings; --json lists them)\n", indent, n)
		list = list[n:]
	}
	for _, p := range list {
		printPruning(c, indent, p)
	}
}
