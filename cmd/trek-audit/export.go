package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/trek-go/audit"
)

var exportCmd = &command{
	name:     "export",
	synopsis: "export [--format jsonl|csv] [--out FILE] [filters]",
	summary:  "write every entry as JSON Lines or CSV, in constant memory",
	about: `
Writes every entry (or those the filters match) newest first, the order of
the admin list, reading a page of 500 at a time, so memory stays small
whatever the size of the table. Entries recorded after the export started
are not included. jsonl: one entry per line, in the admin API's entry JSON.
csv: a header row, then id, created_at, user_id, username, user_email,
action, resource, details (the JSON text) and ip; an absent value is an
empty field, so CSV cannot tell an absent value from an empty one (jsonl
can). A field a spreadsheet would run as a formula (starting with = + - @,
a tab or a carriage return), which a user can type as their name or a
file's, gets a quote before it; --spreadsheet-safe=false writes fields as
stored, for files read back by programs. On a terminal, CSV shows control
characters (escape sequences, bidi overrides) as escapes (\x1b, \u202e);
redirected or with --out it holds the text as stored. JSON escapes them
either way.

With --out the file is created mode 0600 and appears only once the export
is complete. It opens the database read-only and refuses one the library has never
written to; it never writes a row.`,
	example: "trek-audit export --format csv --since 2026-01-01T00:00:00Z --out audit-2026.csv",
	run:     runExport,
}

// csvHeader names the CSV columns, the admin API's field names.
var csvHeader = []string{"id", "created_at", "user_id", "username", "user_email", "action", "resource", "details", "ip"}

func runExport(ctx context.Context, c *cli, fs *flag.FlagSet, args []string) int {
	format := fs.String("format", "jsonl", "jsonl or csv")
	outPath := fs.String("out", "", "write to this file instead of stdout")
	safe := fs.Bool("spreadsheet-safe", true, "csv: defuse fields a spreadsheet would read as formulas (=false: as stored)")
	var q audit.Query
	addFilterFlags(fs, &q)
	if code, ok := c.parse(fs, args); !ok {
		return code
	}
	if *format != "jsonl" && *format != "csv" {
		return c.fail("export", fmt.Errorf("--format %q: want jsonl or csv", *format))
	}
	a, err := c.open(false)
	if err != nil {
		return c.fail("export", err)
	}
	defer a.Close()

	var out io.Writer = c.stdout
	var file *os.File
	if *outPath != "" {
		// The rename below would put a regular file in place of a device,
		// a pipe or a link (--out /dev/stdout, as root, would replace the
		// system's): those are written through stdout, redirected.
		if info, err := os.Lstat(*outPath); err == nil && !info.Mode().IsRegular() {
			return c.fail("export", fmt.Errorf("--out %s is not a regular file (%s): write to stdout and redirect it there instead",
				escape(*outPath), info.Mode().Type()))
		}
		// Written beside the target and renamed at the end, so a file by
		// that name is always a complete export.
		file, err = os.CreateTemp(filepath.Dir(*outPath), "."+filepath.Base(*outPath)+".*.tmp")
		if err != nil {
			return c.fail("export", err)
		}
		defer os.Remove(file.Name()) // fails harmlessly once renamed
		defer file.Close()
		out = file
	}
	n, err := export(ctx, a, q, out, *format, csvOptions{safe: *safe, terminal: file == nil && isTerminal(c.stdout)})
	if err == nil && file != nil {
		err = file.Sync()
		if cerr := file.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(file.Name(), *outPath)
		}
	}
	if err != nil {
		return c.fail("export", err)
	}
	if file != nil {
		fmt.Fprintf(c.stderr, "exported %d entries to %s\n", n, *outPath)
	}
	return exitOK
}

// entryWriter writes entries in one format; flush is called after each
// page.
type entryWriter interface {
	write(e audit.Entry) error
	flush() error
}

// export streams the entries q matches to w, a page at a time, and returns
// how many it wrote. It keeps nothing from one page to the next.
func export(ctx context.Context, a *audit.Auditor, q audit.Query, w io.Writer, format string, opt csvOptions) (int64, error) {
	var ew entryWriter
	if format == "csv" {
		cw := &csvEntries{w: csv.NewWriter(w), csvOptions: opt, rec: make([]string, len(csvHeader))}
		if err := cw.w.Write(csvHeader); err != nil {
			return 0, err
		}
		ew = cw
	} else {
		ew = &jsonlEntries{bw: bufio.NewWriterSize(w, 64<<10), jp: newJSONPrinter(false)}
	}
	// No total: export never shows one, and counting it on every page
	// would read the filter's rows once a page.
	q.Limit, q.Offset, q.Cursor, q.SkipTotal = audit.MaxPageLimit, 0, "", true
	var n int64
	for {
		page, err := a.List(ctx, q)
		if err != nil {
			return n, err
		}
		for _, e := range page.Entries {
			if err := ew.write(e); err != nil {
				return n, err
			}
			n++
		}
		if err := ew.flush(); err != nil {
			return n, err
		}
		if page.NextCursor == nil {
			return n, nil
		}
		q.Cursor = *page.NextCursor
	}
}

type jsonlEntries struct {
	bw *bufio.Writer
	jp *jsonPrinter
}

func (j *jsonlEntries) write(e audit.Entry) error { return j.jp.print(j.bw, e) }
func (j *jsonlEntries) flush() error              { return j.bw.Flush() }

// csvOptions are how CSV fields are written: safe, with formulas defused;
// terminal, with control characters as escapes (see escape).
type csvOptions struct{ safe, terminal bool }

type csvEntries struct {
	w *csv.Writer
	csvOptions
	rec []string
	buf bytes.Buffer
}

func (c *csvEntries) write(e audit.Entry) error {
	details := ""
	if len(e.Details) > 0 && string(e.Details) != "null" {
		c.buf.Reset()
		if err := json.Compact(&c.buf, e.Details); err != nil {
			return fmt.Errorf("entry %d: details: %w", e.ID, err)
		}
		details = c.buf.String()
	}
	userID := ""
	if e.UserID != nil {
		userID = strconv.FormatInt(*e.UserID, 10)
	}
	c.rec = append(c.rec[:0], strconv.FormatInt(e.ID, 10), e.CreatedAt, userID, deref(e.Username),
		deref(e.UserEmail), string(e.Action), deref(e.Resource), details, deref(e.IP))
	for i, f := range c.rec {
		if c.terminal {
			f = escape(f)
		}
		if c.safe {
			f = defuse(f)
		}
		c.rec[i] = f
	}
	return c.w.Write(c.rec)
}

func (c *csvEntries) flush() error {
	c.w.Flush()
	return c.w.Error()
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// defuse prefixes a quote to a field a spreadsheet would evaluate as a
// formula.
func defuse(f string) string {
	if f != "" {
		switch f[0] {
		case '=', '+', '-', '@', '\t', '\r':
			return "'" + f
		}
	}
	return f
}
