package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/trek-go/audit"
)

var tailCmd = &command{
	name:     "tail",
	synopsis: "tail [-n N] [-f] [--interval D] [filters] [--json]",
	summary:  "print the newest entries, and with -f follow new ones as they arrive",
	about: `
Prints the newest N entries, oldest of them first, one line each: TIME, ID,
USER, ACTION, RESOURCE, IP and DETAILS, two spaces apart, control
characters escaped, "-" for an absent value, and a value in quotes where it
could pass for those words or move a column (see list -h). With -f it then
asks the database every --interval for entries newer than the last one
printed, and prints them as they arrive, until interrupted (Ctrl-C or
SIGTERM). Where the last entry printed is gone (travel.db restored from
a backup, copied over or moved into place), it says so on stderr and
follows on from the newest entry there is then; entries recorded between
the restore and that poll may be among those it passes over (tail -n
shows them). --json prints each entry as one line
of the admin API's entry JSON. The list's filters (--action, --user, --ip,
--resource, --since, --until) apply to both.

It opens the database read-only and refuses one the library has never
written to; it never writes a row.`,
	example: "trek-audit tail -f -n 20 --action OAuth",
	run:     runTail,
}

func runTail(ctx context.Context, c *cli, fs *flag.FlagSet, args []string) int {
	n := fs.Int("n", 10, "print this many of the newest entries first")
	follow := fs.Bool("f", false, "keep printing new entries until interrupted")
	interval := fs.Duration("interval", time.Second, "how often -f asks for new entries")
	asJSON := fs.Bool("json", false, "print each entry as one line of JSON")
	maxDetails := fs.Int("max-details", 200, "cut DETAILS to this many characters (0: never; not with --json)")
	var filter audit.Query
	addFilterFlags(fs, &filter)
	if code, ok := c.parse(fs, args); !ok {
		return code
	}
	if *n < 0 || *interval <= 0 {
		return c.fail("tail", fmt.Errorf("-n must be 0 or more and --interval positive"))
	}
	a, err := c.open(false)
	if err != nil {
		return c.fail("tail", err)
	}
	defer func() { a.Close() }()
	opened, _ := os.Stat(c.db) // the file it reads, to notice another put in its place

	out := bufio.NewWriter(c.stdout)
	emit := func(entries []audit.Entry) error {
		for _, e := range entries {
			if err := writeTailLine(out, e, *asJSON, *maxDetails); err != nil {
				return err
			}
		}
		return out.Flush()
	}

	newest, last, err := newestEntries(ctx, a, filter, *n)
	if err != nil {
		return c.fail("tail", err)
	}
	if err := emit(newest); err != nil {
		return c.fail("tail", err)
	}
	if !*follow {
		return exitOK
	}
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return exitOK
		case <-tick.C:
		}
		if st, err := os.Stat(c.db); err == nil && opened != nil && !os.SameFile(st, opened) {
			// Another file moved into place: the handle still reads the
			// old one, which no one writes to any more.
			fmt.Fprintf(c.stderr, "trek-audit tail: %s is another file now (restored from a backup?); reading it\n", escape(c.db))
			a.Close()
			if a, err = c.open(false); err != nil {
				return c.fail("tail", err)
			}
			opened = st
		}
		fresh, newest, err := entriesAfter(ctx, a, filter, last)
		if err != nil {
			if ctx.Err() != nil {
				return exitOK
			}
			return c.fail("tail", err)
		}
		if newest < last {
			// The last entry printed is gone: deleted (a pruning of the
			// oldest, where it was one), or the table went back to a
			// backup, whose new entries may take ids printed before.
			fmt.Fprintf(c.stderr, "trek-audit tail: the newest entry matching is now %d, before %d, the last one printed: "+
				"entries were deleted, or the table restored from a backup; following on from %d\n", newest, last, newest)
			last = newest
		}
		if len(fresh) == 0 {
			continue
		}
		last = fresh[len(fresh)-1].ID
		if err := emit(fresh); err != nil {
			return c.fail("tail", err)
		}
	}
}

// newestEntries returns the newest n entries matching filter, oldest
// first, and the id of the newest match (0: none yet), from which -f goes
// on even when n is 0.
func newestEntries(ctx context.Context, a *audit.Auditor, filter audit.Query, n int) ([]audit.Entry, int64, error) {
	q := filter
	q.Limit = min(max(n, 1), audit.MaxPageLimit)
	q.SkipTotal = true // tail shows no total; see audit.Query
	var out []audit.Entry
	var last int64
	for {
		page, err := a.List(ctx, q)
		if err != nil {
			return nil, 0, err
		}
		if last == 0 && len(page.Entries) > 0 {
			last = page.Entries[0].ID
		}
		out = append(out, page.Entries[:min(len(page.Entries), n-len(out))]...)
		if len(out) >= n || page.NextCursor == nil {
			break
		}
		q.Cursor = *page.NextCursor
	}
	slices.Reverse(out)
	return out, last, nil
}

// entriesAfter returns the entries matching filter whose id is above
// after, oldest first, and the id of the newest match (0: none). The list
// is newest first, so it reads from the top down until it reaches an id
// it has printed: a poll reads only the new rows, plus one. The first
// page is small, since most polls find little.
func entriesAfter(ctx context.Context, a *audit.Auditor, filter audit.Query, after int64) (out []audit.Entry, newest int64, err error) {
	q := filter
	q.Limit = 20
	q.SkipTotal = true // a poll a second would count the filter's rows each time
	for {
		page, err := a.List(ctx, q)
		if err != nil {
			return nil, 0, err
		}
		if newest == 0 && len(page.Entries) > 0 {
			newest = page.Entries[0].ID
		}
		for _, e := range page.Entries {
			if e.ID <= after {
				slices.Reverse(out)
				return out, newest, nil
			}
			out = append(out, e)
		}
		if page.NextCursor == nil {
			slices.Reverse(out)
			return out, newest, nil
		}
		q.Cursor, q.Limit = *page.NextCursor, audit.MaxPageLimit
	}
}

// writeTailLine writes one entry as one line.
func writeTailLine(w io.Writer, e audit.Entry, asJSON bool, maxDetails int) error {
	if asJSON {
		return newJSONPrinter(false).print(w, e)
	}
	_, err := fmt.Fprintf(w, "%s  %d  %s  %s  %s  %s  %s\n", cell(e.CreatedAt), e.ID, userCell(e),
		cell(string(e.Action)), orDash(e.Resource), orDash(e.IP), truncate(detailsText(e.Details), maxDetails))
	return err
}
