package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/trek-go/audit"
)

var listCmd = &command{
	name:     "list",
	synopsis: "list [--limit N] [--offset N | --cursor C] [filters] [--all] [--json]",
	summary:  "show entries, newest first, with the admin panel's filters",
	about: `
Prints one page of the audit log, newest first, as the admin panel's list
shows it: a table of ID, TIME (UTC), USER, ACTION, RESOURCE, IP and DETAILS,
with control characters escaped and long details cut. USER is "#7 alice",
"#7", a deleted user's remembered name, or "-" for anonymous; a name that
could pass for these ("-", "#1 alice", or the same in look-alike characters
such as a minus sign or a full-width number sign) is printed in quotes:
any name that does not begin with a letter or a digit. So is any other
stored text that could pass for "-" (no value) or a quoted value, and any
with two spaces together or one at either end, which could move what
follows into a column of its own. The next page is --cursor with the value
printed under the table. --all follows the cursor through every page,
printing each as it is read; the total is counted on the first page only,
so the pages after it carry a total of -1 in --json.
--json prints each page as the admin API returns it (GET
/api/admin/audit-log), one page per line.

Filters combine: --action takes a key (user.login), a prefix ending in '.'
(admin.) or a category (OAuth); --since and --until take RFC 3339 times
after 0001-01-01T00:00:00Z.
It opens the database read-only and refuses one the library has never
written to; it never writes a row.`,
	example: "trek-audit list --action user.login_failed --since 2026-04-01T00:00:00Z --limit 50",
	run:     runList,
}

// addFilterFlags puts the admin list's filters on fs, into q.
func addFilterFlags(fs *flag.FlagSet, q *audit.Query) {
	fs.StringVar(&q.Action, "action", "", "only this action: a key (user.login), a prefix ending in '.' (admin.) or a category (OAuth)")
	fs.Func("user", "only this user `id`, a positive integer", func(s string) error {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return errors.New("must be a positive integer (a user id)")
		}
		q.UserID = n
		return nil
	})
	fs.StringVar(&q.IP, "ip", "", "only this client IP")
	fs.StringVar(&q.Resource, "resource", "", "only this resource, exactly")
	fs.Func("since", "only entries at or after this RFC 3339 `time`, e.g. 2026-04-01T00:00:00Z", timeFlag(&q.Since))
	fs.Func("until", "only entries before this RFC 3339 `time`", timeFlag(&q.Until))
}

// timeFlag reads an RFC 3339 time into dst. It refuses the zero time
// (0001-01-01T00:00:00Z, in any zone), as the admin list does: the
// library's Query reads a zero Since or Until as no bound, so a --until at
// that instant would list every entry rather than none.
func timeFlag(dst *time.Time) func(string) error {
	return func(s string) error {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return fmt.Errorf("want an RFC 3339 time such as 2026-04-20T08:00:00Z")
		}
		if t.IsZero() {
			return fmt.Errorf("want a time after 0001-01-01T00:00:00Z, which would read as no bound")
		}
		*dst = t
		return nil
	}
}

// isSet reports whether the flag was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func runList(ctx context.Context, c *cli, fs *flag.FlagSet, args []string) int {
	var q audit.Query
	fs.IntVar(&q.Limit, "limit", audit.DefaultPageLimit, fmt.Sprintf("entries per page, 1 to %d, as the admin API clamps it: 0 is %d (with --all: default %d)",
		audit.MaxPageLimit, audit.DefaultPageLimit, audit.MaxPageLimit))
	fs.IntVar(&q.Offset, "offset", 0, "skip this many entries (ignored with --cursor)")
	fs.StringVar(&q.Cursor, "cursor", "", "continue after an earlier page (its next cursor)")
	addFilterFlags(fs, &q)
	all := fs.Bool("all", false, "follow the cursor through every page")
	asJSON := fs.Bool("json", false, "print each page as the admin API's JSON")
	maxDetails := fs.Int("max-details", 80, "cut the DETAILS column to this many characters (0: never)")
	if code, ok := c.parse(fs, args); !ok {
		return code
	}
	if *all && !isSet(fs, "limit") {
		q.Limit = audit.MaxPageLimit
	}
	a, err := c.open(false)
	if err != nil {
		return c.fail("list", err)
	}
	defer a.Close()

	jp := newJSONPrinter(false)
	tw := newTable(c.stdout, *maxDetails)
	shown := 0
	var total int64 // the first page's: the later ones are not counted
	for {
		page, err := a.List(ctx, q)
		if err != nil {
			return c.fail("list", err)
		}
		if !q.SkipTotal {
			total = page.Total
		}
		if *asJSON {
			err = jp.print(c.stdout, page)
		} else {
			for _, e := range page.Entries {
				tw.entry(e)
			}
			err = tw.flush()
		}
		if err != nil {
			return c.fail("list", err)
		}
		shown += len(page.Entries)
		if !*all || page.NextCursor == nil {
			if !*asJSON {
				c.listFooter(page, total, shown, *all)
			}
			return exitOK
		}
		// Counting the total again on every page would read the filter's
		// rows once a page.
		q.Cursor, q.Offset, q.SkipTotal = *page.NextCursor, 0, true
	}
}

// listFooter says on stderr how much was shown and how to go on, so that
// stdout holds the table alone. total is the first page's: with --all, as
// many matched when the listing began.
func (c *cli) listFooter(p audit.Page, total int64, shown int, all bool) {
	switch {
	case shown == 0:
		fmt.Fprintf(c.stderr, "no entries (%d match)\n", total)
	case all || p.NextCursor == nil:
		fmt.Fprintf(c.stderr, "%d entries shown, %d match\n", shown, total)
	default:
		fmt.Fprintf(c.stderr, "%d entries shown, %d match; next page: --cursor %s\n", shown, total, *p.NextCursor)
	}
}

// table prints entries under a header through a tabwriter. A tabwriter
// aligns what it holds until flushed, so each flush (one page) is aligned
// on its own.
type table struct {
	tw         *tabwriter.Writer
	maxDetails int
	header     bool
}

func newTable(w io.Writer, maxDetails int) *table {
	return &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0), maxDetails: maxDetails}
}

func (t *table) entry(e audit.Entry) {
	if !t.header {
		fmt.Fprintln(t.tw, "ID\tTIME\tUSER\tACTION\tRESOURCE\tIP\tDETAILS")
		t.header = true
	}
	fmt.Fprintf(t.tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, cell(e.CreatedAt), userCell(e),
		cell(string(e.Action)), orDash(e.Resource), orDash(e.IP), truncate(detailsText(e.Details), t.maxDetails))
}

func (t *table) flush() error { return t.tw.Flush() }

// userCell names the actor: "#7 alice", "#7", "alice" (a snapshot whose
// user id is gone) or "-" (anonymous). The name is the user's own text
// (see shownName).
func userCell(e audit.Entry) string {
	name := ""
	switch {
	case e.Username != nil && *e.Username != "":
		name = *e.Username
	case e.UserEmail != nil && *e.UserEmail != "":
		name = *e.UserEmail
	}
	switch {
	case e.UserID != nil && name != "":
		return "#" + strconv.FormatInt(*e.UserID, 10) + " " + shownName(name)
	case e.UserID != nil:
		return "#" + strconv.FormatInt(*e.UserID, 10)
	case name != "":
		return shownName(name)
	}
	return "-"
}

// shownName is a user's name as the USER column prints it (see shown).
// A user picks their name, and the snapshot of a deleted user's is
// printed alone, so a user named "-" or "#1 alice" would otherwise print
// as anonymous or as user 1, and one starting with a quote could pass for
// a quoted name. Every word the column prints begins with '-', '#' or
// '"', and each has look-alikes in Unicode (a minus sign or a dash for
// '-', a full-width or small number sign for '#', curly quotes), so a
// name is quoted unless it begins with a letter or a digit, of any
// script: "Zoë", "李雷" and "Ørjan" print as they are.
func shownName(name string) string {
	return shown(name, letterOrDigit)
}

func letterOrDigit(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// cell is stored text as the TIME, ACTION, RESOURCE and IP columns print
// it (see shown), "-" for none. Clients choose what these hold (an MCP
// tool name, a file name; TREK's own rows any text at all), but the only
// words the columns print of their own are "-" for none and a quoted
// value: so text may begin bare with a letter or a digit, or with ASCII
// punctuation other than '-' and '"' (a resource "/api/trips" or "#42"
// cannot pass for either), while any other mark might be a look-alike of
// those two and is quoted.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return shown(s, func(r rune) bool {
		return letterOrDigit(r) || (r > ' ' && r < 0x7f && r != '-' && r != '"')
	})
}

// orDash is cell for a column that may be NULL.
func orDash(s *string) string {
	if s == nil {
		return "-"
	}
	return cell(*s)
}

// shown is stored text s as a column prints it: escaped, and in double
// quotes (a quote within written \") unless its first rune is one that
// bare may begin with, and it has no space at either end nor two
// together. Columns are set apart by two spaces (exactly, in tail; at
// least, in the table), so two spaces within a value, or one at its end
// beside the gap, would move what follows into a column of its own: a
// tool named "get_trip  10.9.9.9" would print a forged IP. Within the
// quotes, spaces that come two or more together are written \x20, so
// that a line of tail splits into its columns at every two spaces, quotes
// or not.
func shown(s string, bare func(rune) bool) string {
	e := escape(s)
	first, _ := utf8.DecodeRuneInString(s)
	if bare(first) && strings.TrimSpace(s) == s && !strings.Contains(s, "  ") {
		return e
	}
	return `"` + escapeSpaceRuns(strings.ReplaceAll(e, `"`, `\"`), `\x20`) + `"`
}

// escapeSpaceRuns writes each space of s that stands beside another as
// esc, and leaves single spaces as they are.
func escapeSpaceRuns(s, esc string) string {
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' && (i > 0 && s[i-1] == ' ' || i+1 < len(s) && s[i+1] == ' ') {
			b.WriteString(esc)
		} else {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// detailsText is the details as one line of JSON, "-" for none. Valid
// JSON holds no raw control characters below U+0020, but it may hold other
// unprintable ones (bidi overrides, U+0085): those are written as JSON
// escapes, as are two spaces together, so the text stays the same JSON and
// prints safely in its column.
func detailsText(d json.RawMessage) string {
	if len(d) == 0 || string(d) == "null" {
		return "-"
	}
	var b bytes.Buffer
	if err := json.Compact(&b, d); err != nil {
		return cell(string(d))
	}
	s := b.String()
	if !printable(b.Bytes()) {
		s = escapeJSONText(s)
	}
	// Compact JSON holds spaces only within strings, where \u0020 means
	// the same: two together would set off a column of their own.
	return escapeSpaceRuns(s, `\u0020`)
}

// escapeJSONText writes every character of JSON text s that is not
// printable as a \u escape, which inside a string means the same, except
// the newlines between the lines of indented JSON and at its end (within a
// string, JSON has none).
func escapeJSONText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\ufffd`) // the list passes only valid UTF-8; kept safe anyway
		case visibleRune(r) || r == '\n':
			b.WriteString(s[i : i+size])
		case r > 0xFFFF:
			hi, lo := utf16.EncodeRune(r)
			fmt.Fprintf(&b, `\u%04x\u%04x`, hi, lo)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += size
	}
	return b.String()
}

// visibleRune reports whether r is printable and shows as something: not one
// of the letters and marks that show as nothing or as a blank (the Hangul
// fillers, the combining grapheme joiner, the variation selectors, the
// blank Braille pattern), which would make one word read as two, or move
// a column.
func visibleRune(r rune) bool {
	return strconv.IsPrint(r) && r != '\u2800' &&
		!unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) && !unicode.Is(unicode.Variation_Selector, r)
}

// escape makes s safe to print on a terminal and in a column: control
// characters (ANSI escapes, newlines, tabs, bidi overrides), runes that
// do not show (see visibleRune) and invalid UTF-8 are written as Go escapes
// (\x1b, \n, \u202e, \u3164), and a backslash as \\, so what is printed
// cannot be confused with an escape.
func escape(s string) string {
	clean := true
	for _, r := range s {
		if r == '\\' || r == utf8.RuneError || !visibleRune(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80 && !visibleRune(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case !visibleRune(r) && r <= 0xFFFF:
			fmt.Fprintf(&b, `\u%04x`, r)
		case !visibleRune(r):
			fmt.Fprintf(&b, `\U%08x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// truncate cuts s to max characters, the last one an ellipsis; max 0 or
// less: never.
func truncate(s string, max int) string {
	if max <= 0 || utf8.RuneCountInString(s) <= max {
		return s
	}
	n := 0
	for i := range s {
		if n == max-1 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}
