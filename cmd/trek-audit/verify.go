package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/trek-go/audit"
)

var verifyCmd = &command{
	name:     "verify",
	synopsis: "verify [--json] [--progress] [--no-anchors]",
	summary:  "check the tamper-evidence chain (exit 0 intact, 1 tampered, 2 could not check)",
	about: `
Walks every row the audit library wrote, in id order, and checks its chain
value with the chain key, then checks the newest rows against the chain
heads recorded in trek.log and its rotated files. It stops at the first
problem and names it: changed, missing or inserted, with the
row's id. Rows TREK's own code inserted carry no chain value; they are
counted apart, as unchained.

The key is AUDIT_CHAIN_KEY if set, else the key file (--key-file, default
.audit_key beside the database). verify never creates a key or a database:
without either it exits 2 and says where it looked. It opens the database
read-only, refuses one the library has never written to, and is safe while
TREK runs.

Rows cut off the end of the table are found only through the chain heads in
trek.log: when the database has chained rows that verify and no chain head
was read (trek.log at --log does not exist, is not a regular file, is
empty or holds no head, and no rotated file beside it holds one), verify
exits 2 rather than report an unchecked end as intact, unless --no-anchors
says to check the chain alone (trek.log is then not read at all, for an
operator who may read the database but not the log). Tampering found in
the table is reported (exit 1) with or without trek.log.

When nothing the key made verifies (neither of the first two chained rows,
no chain head in trek.log, no acknowledgement), the key is most likely not
the one that chained the rows: verify exits 2 and says so, rather than
report tampering.

With --json, the report goes to stdout whatever verify found; when it
could not check (exit 2), its "inconclusive" field says why, and "intact"
then means only that the rows it could check verified. Where there is no
report (the database or the key could not be read, verify was
interrupted), stdout is empty and the error goes to stderr.

Exit status: 0 intact, 1 tampered, 2 could not check. A progress bar goes to
stderr when stderr is a terminal, or with --progress.`,
	example: "trek-audit verify --db /srv/trek/data/travel.db",
	run:     runVerify,
}

func runVerify(ctx context.Context, c *cli, fs *flag.FlagSet, args []string) int {
	asJSON := fs.Bool("json", false, "print the report as JSON on stdout")
	progress := fs.Bool("progress", false, "show the progress bar even when stderr is not a terminal")
	noAnchors := fs.Bool("no-anchors", false, "check the chain alone, without reading trek.log (rows cut off the end are not detected)")
	if code, ok := c.parse(fs, args); !ok {
		return code
	}
	c.noLog = *noAnchors
	a, err := c.open(true)
	if err != nil {
		return c.fail("verify", err)
	}
	defer a.Close()

	var bar *progressBar
	var onProgress func(done, total int64)
	if *progress || isTerminal(c.stderr) {
		bar = &progressBar{w: c.stderr, label: "verifying"}
		onProgress = bar.update
	}
	rep, err := a.VerifyProgress(ctx, onProgress)
	bar.finish()
	if err != nil {
		if ctx.Err() != nil {
			return c.fail("verify", fmt.Errorf("interrupted after %d rows: %w", rep.Checked, ctx.Err()))
		}
		if !*noAnchors && c.aboutTheLog(err) {
			// TREK's server makes trek.log 0600: an operator in the
			// database's group may read travel.db but not the log.
			return c.fail("verify", fmt.Errorf("%w (where trek.log cannot be read, --no-anchors checks the chain alone)", err))
		}
		return c.fail("verify", err)
	}
	// Without a chain head, an intact chain is only intact as far as the
	// table shows, whatever kept the heads away: trek.log missing, or
	// emptied in place (truncated after the newest rows were deleted, which
	// is as much an attack as deleting it). Tampering the table shows is
	// reported all the same.
	//
	// Then, and when the key is not the rows' own, the report still
	// goes to stdout with --json, its inconclusive field saying why, so
	// that a script reading it is not left with nothing to parse, nor
	// with an "intact" that does not mean intact.
	//
	// Heads of rows a pruning deleted check nothing that is left, and a
	// table of unchained rows alone (TREK's own, or the library's with
	// their chain values cleared) is not known intact either.
	if rep.Intact && (rep.Checked > 0 || rep.Unchained > 0) && rep.Anchors-rep.PrunedAnchors == 0 && !*noAnchors {
		why := fmt.Sprintf("%s %s, and no rotated file beside it holds a chain head, so the newest rows "+
			"cannot be checked against their chain heads", c.logPath(), c.whyNoHeads(rep))
		if code, ok := c.printInconclusive(*asJSON, rep, why); !ok {
			return code
		}
		return c.fail("verify", fmt.Errorf("%s: pass --log with trek.log's path (or a copy's that holds its heads, "+
			"such as the one logrotate's copytruncate leaves), or --no-anchors to check the chain alone", why))
	}
	if p := rep.Problem; p != nil && p.KeyMismatch {
		// Nothing the key made verifies: not the first rows, not a head in
		// trek.log, not an acknowledgement, not a record of a pruning (see
		// Tamper.KeyMismatch).
		why := fmt.Sprintf("nothing verifies under the key from %s: most likely it is not the one the rows were written with", c.keySource())
		if code, ok := c.printInconclusive(*asJSON, rep, why); !ok {
			return code
		}
		read := ""
		if c.noLog {
			read = " (trek.log not read)"
		}
		return c.fail("verify", fmt.Errorf("row %d: %s%s. The key came from %s: check that it is the one TREK's server uses "+
			"(AUDIT_CHAIN_KEY, or its key file). With the right key, this report means the first rows were rewritten and "+
			"trek.log's chain heads lost", p.ID, p.Detail, read, c.keySource()))
	}
	if *asJSON {
		if err := newJSONPrinter(true).print(c.stdout, verifyJSON{VerifyReport: rep}); err != nil {
			return c.fail("verify", err)
		}
	} else {
		c.printReport(rep)
	}
	c.warnOfAnOpenKeyFile()
	if !rep.Intact {
		return exitTampered
	}
	return exitOK
}

// verifyJSON is what verify --json prints: the report, and for exit
// status 2 why it could not be checked (Inconclusive), so that the JSON
// alone never reads as intact when verify could not say so.
type verifyJSON struct {
	audit.VerifyReport
	Inconclusive string `json:"inconclusive,omitempty"`
}

// printInconclusive prints rep with why it is inconclusive, when --json
// asks for the report; ok is false, with the exit status, when printing
// failed.
func (c *cli) printInconclusive(asJSON bool, rep audit.VerifyReport, why string) (code int, ok bool) {
	if !asJSON {
		return 0, true
	}
	if err := newJSONPrinter(true).print(c.stdout, verifyJSON{VerifyReport: rep, Inconclusive: why}); err != nil {
		return c.fail("verify", err), false
	}
	return 0, true
}

// whyNoHeads says why trek.log at --log gave Verify, whose report is rep,
// no chain head: "does not exist", "is not a regular file", "is empty" or
// "holds no chain head". Lstat, as the library reads it: a folder, or a
// link, in its place is skipped like a missing file.
func (c *cli) whyNoHeads(rep audit.VerifyReport) string {
	info, err := os.Lstat(c.logPath())
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "does not exist"
	case err == nil && !info.Mode().IsRegular():
		return "is not a regular file"
	case err == nil && info.Size() == 0:
		return "is empty"
	case rep.RejectedAnchors > 0:
		return fmt.Sprintf("holds no chain head this key made (%d lines in it or its rotated files look like one but carry no tag this key made)", rep.RejectedAnchors)
	case rep.PrunedAnchors > 0:
		return fmt.Sprintf("holds no chain head but of rows a pruning deleted (%d)", rep.PrunedAnchors)
	}
	return "holds no chain head"
}

// aboutTheLog reports whether err is a file system error about trek.log,
// its rotated files or their folder.
func (c *cli) aboutTheLog(err error) bool {
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		return false
	}
	dir := filepath.Dir(c.logPath())
	return filepath.Clean(pe.Path) == dir || filepath.Dir(pe.Path) == dir
}

// warnOfAnOpenKeyFile says on stderr when the key file verify used can be
// read or written by others than its owner: whoever reads the key can
// rewrite the log and its chain to match, and verify would find nothing.
// The library makes the file 0600; a copy of the data folder (cp without
// -p, a backup restored) often does not keep that. Unix only: elsewhere
// the mode bits say nothing of who can read it.
func (c *cli) warnOfAnOpenKeyFile() {
	if runtime.GOOS == "windows" || os.Getenv("AUDIT_CHAIN_KEY") != "" {
		return
	}
	info, err := os.Stat(c.keyPath())
	if err != nil || info.Mode().Perm()&0o077 == 0 {
		return
	}
	fmt.Fprintf(c.stderr, "trek-audit verify: warning: %s can be read or written by others than its owner (mode %04o): "+
		"whoever can read the key can rewrite the log and its chain to match; make it 0600 (chmod 600 %s)\n",
		escape(c.keyPath()), info.Mode().Perm(), escape(c.keyPath()))
}

func (c *cli) printReport(rep audit.VerifyReport) {
	w := c.stdout
	if rep.Intact {
		fmt.Fprintln(w, "OK: the audit log's chain is intact.")
	} else {
		fmt.Fprintln(w, "TAMPERED: the audit log's chain does not verify.")
		p := rep.Problem
		where := fmt.Sprintf("at row %d, chain position %d", p.ID, p.Seq)
		if p.ID == 0 {
			where = fmt.Sprintf("past the end of the table, from chain position %d", p.Seq)
		}
		fmt.Fprintf(w, "  problem:        %s %s\n", p.Kind, where)
		fmt.Fprintf(w, "  detail:         %s\n", escape(p.Detail))
		if p.Acknowledgeable {
			fmt.Fprintln(w, "  note:           the rows in the table chain up, but a record kept apart from them (a chain head in trek.log,")
			fmt.Fprintln(w, "                  or an acknowledgement's record of the chain's last row) does not match them: rows were deleted,")
			fmt.Fprintln(w, "                  or travel.db was restored from a backup. After a restore, trek-audit acknowledge shows what")
			fmt.Fprintln(w, "                  there is to acknowledge and how; verify then checks the rest")
		}
	}
	checked := "rows verified against the key"
	if !rep.Intact {
		checked += ", before the problem"
	}
	fmt.Fprintf(w, "  rows checked:   %d (%s)\n", rep.Checked, checked)
	fmt.Fprintf(w, "  unchained rows: %d (inserted by TREK's own code, not covered by the chain)\n", rep.Unchained)
	if rep.HeadID > 0 {
		fmt.Fprintf(w, "  last good row:  id %d, chain position %d\n", rep.HeadID, rep.HeadSeq)
	}
	if c.noLog {
		fmt.Fprintln(w, "  anchors read:   none (--no-anchors: trek.log not read; rows deleted from the end of the table cannot be detected)")
	} else {
		fmt.Fprintf(w, "  anchors read:   %d (chain heads in %s and its rotated files)\n", rep.Anchors, c.logPath())
	}
	if len(rep.Acknowledgements) > 0 {
		fmt.Fprintf(w, "  acknowledged:   %d of those chain heads, passed over as the acknowledgements below list them\n", rep.AcknowledgedAnchors)
		for _, ack := range rep.Acknowledgements {
			printAck(c, "                  ", ack, rep.Acknowledgements)
		}
	}
	if len(rep.Prunings) > 0 {
		fmt.Fprintf(w, "  pruned:         the chain starts at position %d; %d chain heads of rows deleted by pruning passed over\n", rep.StartSeq, rep.PrunedAnchors)
		printPrunings(c, "                  ", rep.Prunings)
	}
	fmt.Fprintf(w, "  database:       %s\n", c.db)
	fmt.Fprintf(w, "  key:            %s\n", c.keySource())
	if rep.Anchors-rep.AcknowledgedAnchors-rep.PrunedAnchors == 0 && rep.Checked > 0 && !c.noLog {
		if len(rep.Acknowledgements) == 0 {
			fmt.Fprintln(w, "  warning:        no chain heads found in trek.log: rows deleted from the end of the table cannot be detected")
		} else {
			fmt.Fprintln(w, "  warning:        no chain heads found in trek.log but those acknowledged: rows recorded since the newest acknowledgement and then deleted from the end of the table cannot be detected")
		}
	}
	if rep.SkippedLogFiles > 0 {
		fmt.Fprintf(w, "  warning:        %d entries beside trek.log are named like log files but are not regular files (a folder, a pipe, a device, a link); they were not read\n", rep.SkippedLogFiles)
	}
	if rep.RejectedAnchors > 0 {
		fmt.Fprintf(w, "  warning:        %d lines in trek.log look like chain heads but carry no tag this key made (forged, damaged, or written under another key); they were ignored. If the chain was started again under a new key, verify with the old one too\n", rep.RejectedAnchors)
	}
	if rep.RejectedAcknowledgements > 0 {
		fmt.Fprintf(w, "  warning:        %d acknowledgements in the database carry no tag this key made (forged, damaged, or made under an earlier key); they acknowledge nothing\n", rep.RejectedAcknowledgements)
	}
	if rep.RejectedPrunings > 0 {
		fmt.Fprintf(w, "  warning:        %d records of prunings in the database carry no tag this key made (forged, damaged, or made under an earlier key); they account for no deleted row\n", rep.RejectedPrunings)
	}
	if rep.ClearedUserIDs > 0 {
		fmt.Fprintf(w, "  warning:        %d users have rows whose user_id is empty although the user exists: cleared by hand, which hides them from the user filter (list --user), or the id went to a new account after the user was deleted\n", rep.ClearedUserIDs)
	}
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressBar redraws one line on its writer. A nil bar draws nothing.
type progressBar struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	drawn bool
}

const barWidth = 30

func (b *progressBar) update(done, total int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if total < done {
		total = done // rows arrived since the count was read
	}
	frac := 1.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	n := int(frac * barWidth)
	fmt.Fprintf(b.w, "\r%s [%s%s] %3d%%  %d/%d rows", b.label,
		strings.Repeat("#", n), strings.Repeat(".", barWidth-n), int(frac*100), done, total)
	b.drawn = true
}

// finish ends the bar's line, so what follows starts on a fresh one.
func (b *progressBar) finish() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprintln(b.w)
	}
}
