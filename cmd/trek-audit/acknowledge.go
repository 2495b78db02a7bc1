package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/trek-go/audit"
)

var acknowledgeCmd = &command{
	name:     "acknowledge",
	synopsis: "acknowledge --reason TEXT [--json]",
	summary:  "record that the chain heads in trek.log which no longer match the table are known (after a restore)",
	about: `
After travel.db is restored from a backup, trek.log still holds the chain
heads of the rows recorded since the backup, and verify reports those rows
missing until the lines rotate out of trek.log, which can take years.
acknowledge records, with your reason, exactly the heads that do not match
the table now; verify then passes over them and shows the acknowledgement
in every report. Heads written later are checked as before, so rows
deleted afterwards are still found.

Only heads can be acknowledged: where the chain in the table itself does
not verify, acknowledge refuses and says what verify found. Acknowledging
is a decision, so run verify first and read what it reports.

The acknowledgement also records the chain's last row, and verify checks
that row from then on as it checks a chain head: rows deleted back past it
are found even once trek.log holds no other head. Where that record no
longer matches (a second restore, audit_log rebuilt by TREK, or rows
deleted since), verify says so, and a new acknowledgement supersedes the
earlier one.

It needs the chain key, as verify does, and it is the one command that
writes: a row of its own in the database (audit_chain_acks), under a tag
only the key makes; never audit_log, the key file or trek.log. It is safe
while TREK runs; under a load that keeps the database locked past the busy
timeout it fails, and can be run again.

It reports the chain positions the heads it covers stand at (1, 2, 3, ...
over the rows the library wrote): compare them with what you expect the
restore to have taken. An acknowledgement is for good: deleting its row
brings the report back, but anyone who kept a copy of the row can put it
back.

Exit status: 0 acknowledged, or nothing to acknowledge; 2 refused or
could not write.`,
	example: `trek-audit acknowledge --reason "alice: restored travel.db from the backup of 24 November"`,
	run:     runAcknowledge,
}

func runAcknowledge(ctx context.Context, c *cli, fs *flag.FlagSet, args []string) int {
	reason := fs.String("reason", "", "who acknowledges, and what happened (required)")
	asJSON := fs.Bool("json", false, "print the acknowledgement as JSON on stdout")
	if code, ok := c.parse(fs, args); !ok {
		return code
	}
	if *reason == "" {
		fmt.Fprintln(c.stderr, "trek-audit acknowledge: --reason is required: say who acknowledges and what happened")
		fs.Usage()
		return exitError
	}
	if _, err := os.Stat(c.logPath()); err != nil {
		return c.fail("acknowledge", fmt.Errorf("trek.log is where the chain heads are, and %w: pass --log with its path", err))
	}
	// First read-only, as verify: that refuses a schema older or newer
	// than this build's, which the read-write open below would migrate
	// (or refuse) instead, and says why there is nothing to acknowledge.
	ro, err := c.open(true)
	if err != nil {
		return c.fail("acknowledge", err)
	}
	rep, err := ro.Verify(ctx)
	ro.Close()
	if err != nil {
		return c.fail("acknowledge", err)
	}
	if rep.RejectedAnchors > 0 && rep.Anchors == 0 {
		fmt.Fprintf(c.stderr, "trek-audit acknowledge: warning: %d lines in trek.log look like chain heads but carry no tag this key made: is this the key TREK's server uses (%s)?\n",
			rep.RejectedAnchors, c.keySource())
	}
	var ack audit.Acknowledgement
	if !rep.Intact {
		a, err := c.openAs(true, false)
		if err != nil {
			return c.fail("acknowledge", err)
		}
		ack, err = a.Acknowledge(ctx, *reason)
		a.Close()
		if err != nil {
			return c.fail("acknowledge", err)
		}
	}
	if *asJSON { // id 0: nothing to acknowledge
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(ack); err != nil {
			return c.fail("acknowledge", err)
		}
		return exitOK
	}
	if ack.ID == 0 {
		fmt.Fprintln(c.stdout, "Nothing to acknowledge: every chain head in trek.log matches the table.")
		return exitOK
	}
	fmt.Fprintf(c.stdout, "Acknowledged %d chain heads in %s and its rotated files that no longer match the table.\n", ack.Anchors, c.logPath())
	if len(ack.Supersedes) > 0 {
		fmt.Fprintf(c.stdout, "Superseded %d earlier acknowledgements whose record of the chain's last row no longer matches.\n", len(ack.Supersedes))
	}
	printAck(c, "  ", ack)
	return exitOK
}

// printAck prints one acknowledgement, each line after indent.
func printAck(c *cli, indent string, ack audit.Acknowledgement) {
	fmt.Fprintf(c.stdout, "%sacknowledgement %d, %s: %s\n", indent, ack.ID, escape(ack.CreatedAt), escape(ack.Reason))
	if ack.Anchors > 0 {
		fmt.Fprintf(c.stdout, "%s  %d chain heads, chain positions %d to %d; the chain then ended at row %d, chain position %d\n",
			indent, ack.Anchors, ack.FirstSeq, ack.LastSeq, ack.HeadID, ack.HeadSeq)
	} else {
		fmt.Fprintf(c.stdout, "%s  no chain heads; the chain then ended at row %d, chain position %d\n", indent, ack.HeadID, ack.HeadSeq)
	}
	if len(ack.Supersedes) > 0 {
		fmt.Fprintf(c.stdout, "%s  supersedes acknowledgements %s, whose record of the chain's last row no longer matches\n",
			indent, joinIDs(ack.Supersedes))
	}
}

// joinIDs writes ids as "2, 5".
func joinIDs(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(s, ", ")
}
