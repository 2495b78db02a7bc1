package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/trek-go/audit"
)

var acknowledgeCmd = &command{
	name:     "acknowledge",
	synopsis: "acknowledge [--reason TEXT --digest DIGEST] [--json]",
	summary:  "show, then record, that the chain heads in trek.log which no longer match the table are known (after a restore)",
	about: `
After travel.db is restored from a backup, trek.log still holds the chain
heads of the rows recorded since the backup, and verify reports those rows
missing until the lines rotate out of trek.log, which can take years.

Without --reason, acknowledge shows what there is to acknowledge, and
changes nothing: every chain head that does not match the table now, by
kind (naming a position the table holds another row at, or past the
chain's last row) and chain position (1, 2, 3, ... over the rows the
library wrote), and a digest. verify stops at its first problem; this is
all of them. Compare the positions with what the restore should have
taken. Positions named by chain heads of more than one history, all gone,
are pointed out: rows were written there more than once and are gone,
which two restores explain, and so do rows deleted after a restore.

With your reason and that digest, it records exactly that, and refuses if
it has changed meanwhile; rows TREK records meanwhile change nothing. A
refusal does not give the new digest: run acknowledge without --reason
again. Once recorded, verify passes over those heads and shows the
acknowledgement in every report. Heads written later are checked as
before, and so is the chain's last row as the acknowledgement recorded
it, so rows deleted afterwards are still found. Where that record no
longer matches (a second restore, audit_log rebuilt by TREK), verify says
so, and a new acknowledgement supersedes the earlier one.

Only heads can be acknowledged: where the chain in the table itself does
not verify, acknowledge refuses and says what verify found. An
acknowledgement is for good: deleting its row brings the report back, but
anyone who kept a copy of the row can put it back.

It needs the chain key, as verify does, and it writes (as only prune
--reason does besides): a row of its own in the database
(audit_chain_acks), under a tag only the key makes; never audit_log, the
key file or trek.log. It reads
first as verify does, so it migrates nothing. It is safe while TREK runs;
under a load that keeps the database locked past the busy timeout it
fails, and can be run again.

Exit status: 0 shown, acknowledged, or nothing to acknowledge; 2 refused
or could not write.`,
	example: `trek-audit acknowledge --reason "alice: restored travel.db from the backup of 24 November" --digest 18-3f0c9a1e5b7d2468`,
	run:     runAcknowledge,
}

// hasRotatedLogs reports whether files named as lumberjack names trek.log's
// rotated ones (trek-<time>.log) are beside where trek.log should be.
func (c *cli) hasRotatedLogs() bool {
	dir, base := filepath.Split(c.logPath())
	ext := filepath.Ext(base)
	prefix := strings.TrimSuffix(base, ext) + "-"
	entries, err := os.ReadDir(filepath.Clean(dir + "."))
	if err != nil {
		return false
	}
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, prefix) && strings.HasSuffix(n, ext) {
			return true
		}
	}
	return false
}

func runAcknowledge(ctx context.Context, c *cli, fs *flag.FlagSet, args []string) int {
	reason := fs.String("reason", "", "who acknowledges, and what happened; without it, show what would be acknowledged")
	digest := fs.String("digest", "", "the digest shown by acknowledge without --reason: record only that")
	asJSON := fs.Bool("json", false, "print the acknowledgement as JSON on stdout")
	if code, ok := c.parse(fs, args); !ok {
		return code
	}
	if *reason != "" && *digest == "" {
		fmt.Fprintln(c.stderr, "trek-audit acknowledge: --digest is required with --reason: run trek-audit acknowledge without --reason "+
			"to see what would be acknowledged, and its digest")
		return exitError
	}
	if *digest != "" && *reason == "" {
		fmt.Fprintln(c.stderr, "trek-audit acknowledge: --reason is required with --digest: say who acknowledges and what happened")
		return exitError
	}
	// trek.log may be missing while its rotated files hold the heads (moved
	// away by another tool, not yet written again): verify reads them, and
	// so does acknowledge. With neither, --log is likely wrong.
	if _, err := os.Stat(c.logPath()); err != nil && (!errors.Is(err, os.ErrNotExist) || !c.hasRotatedLogs()) {
		return c.fail("acknowledge", fmt.Errorf("trek.log is where the chain heads are, and %w: pass --log with its path", err))
	}
	// First read-only, as verify: that refuses a schema older or newer
	// than this build's, which the read-write open below would migrate
	// (or refuse) instead, and shows what there is to acknowledge.
	ro, err := c.open(true)
	if err != nil {
		return c.fail("acknowledge", err)
	}
	pending, err := ro.Unacknowledged(ctx)
	// A second walk only where its report is needed: to name what the
	// superseded acknowledgements recorded, or to tell a wrong key from
	// nothing to acknowledge (no head this key made, none to show).
	var rep audit.VerifyReport
	if err == nil && (pending.Digest == "" || len(pending.Supersedes) > 0) {
		rep, err = ro.Verify(ctx)
	}
	ro.Close()
	if err != nil {
		return c.fail("acknowledge", err)
	}
	if rep.RejectedAnchors > 0 && rep.Anchors == 0 {
		fmt.Fprintf(c.stderr, "trek-audit acknowledge: warning: %d lines in trek.log look like chain heads but carry no tag this key made: is this the key TREK's server uses (%s)?\n",
			rep.RejectedAnchors, c.keySource())
	}
	ack := pending
	if *reason != "" && pending.Digest != "" {
		a, err := c.openAs(true, false)
		if err != nil {
			return c.fail("acknowledge", err)
		}
		ack, err = a.Acknowledge(ctx, *reason, *digest)
		a.Close()
		if err != nil {
			return c.fail("acknowledge", err)
		}
	}
	if *asJSON { // digest "": nothing to acknowledge; id 0: not recorded
		if err := newJSONPrinter(true).print(c.stdout, ack); err != nil {
			return c.fail("acknowledge", err)
		}
		return exitOK
	}
	switch {
	case ack.Digest == "":
		fmt.Fprintln(c.stdout, "Nothing to acknowledge: every chain head in trek.log matches the table.")
	case ack.ID == 0:
		fmt.Fprintf(c.stdout, "To acknowledge: %d chain heads in %s and its rotated files that no longer match the table.\n", ack.Anchors, c.logPath())
		printAck(c, "  ", ack, rep.Acknowledgements)
		fmt.Fprintf(c.stdout, "To record it, once you know why:\n  trek-audit acknowledge --reason \"who: what happened\" --digest %s\n", ack.Digest)
	default:
		fmt.Fprintf(c.stdout, "Acknowledged %d chain heads in %s and its rotated files that no longer match the table.\n", ack.Anchors, c.logPath())
		printAck(c, "  ", ack, rep.Acknowledgements)
	}
	return exitOK
}

// printAck prints one acknowledgement, each line after indent; one not
// yet recorded (ID 0) without the header, and in the present tense.
// earlier are the acknowledgements it may supersede.
func printAck(c *cli, indent string, ack audit.Acknowledgement, earlier []audit.Acknowledgement) {
	w := c.stdout
	ends, holds, are := "ends", "holds", "are"
	if ack.ID != 0 {
		fmt.Fprintf(w, "%sacknowledgement %d, %s: %s\n", indent, ack.ID, escape(ack.CreatedAt), escape(ack.Reason))
		indent += "  "
		ends, holds, are = "then ended", "then held", "were"
	}
	if ack.Anchors > 0 {
		fmt.Fprintf(w, "%s%d chain heads; the chain %s at row %d, chain position %d\n", indent, ack.Anchors, ends, ack.HeadID, ack.HeadSeq)
	} else {
		fmt.Fprintf(w, "%sno chain heads; the chain %s at row %d, chain position %d\n", indent, ends, ack.HeadID, ack.HeadSeq)
	}
	if ack.Differing > 0 {
		fmt.Fprintf(w, "%s  %d at positions the table %s other rows at: %s\n", indent, ack.Differing, holds, ack.DifferingAt)
	}
	if ack.PastEnd > 0 {
		fmt.Fprintf(w, "%s  %d %s past the chain's last row: %s\n", indent, ack.PastEnd, are, ack.PastEndAt)
	}
	if ack.Doubled > 0 {
		fmt.Fprintf(w, "%s  warning: positions %s are named by chain heads of more than one history, all gone: rows were written there "+
			"more than once and are gone. Two restores explain that; so do rows deleted after a restore\n", indent, ack.DoubledAt)
	}
	for _, id := range ack.Supersedes {
		at := ""
		for _, e := range earlier {
			if e.ID == id {
				at = fmt.Sprintf(", which recorded the chain ending at chain position %d", e.HeadSeq)
			}
		}
		fmt.Fprintf(w, "%ssupersedes acknowledgement %d%s: that record no longer matches the table\n", indent, id, at)
	}
}
