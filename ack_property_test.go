package audit

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The property Acknowledge owes whoever reads Verify's reports after it:
// acknowledging never hides a change other than the one it showed. A copy
// of travel.db is restored as from a backup (the newest rows cut off,
// sqlite_sequence set back or not, new events recorded on what was left or
// not, trek.log holding every chain head or only those of the rows lost),
// what Unacknowledged shows is acknowledged, and Verify then reports the
// chain intact. From there, against any edit made by hand to audit_log or
// to audit_chain_acks:
//
//  1. The acknowledgement hides nothing else: when the chained rows are not
//     exactly those the library had written when it was made (a chained
//     field, an id, a chain position or chain value changed; a chained row
//     deleted, from the middle or from the end, back past the last row it
//     recorded or not, and chained over or not), the report is not intact.
//     Rows cut off the end are in reach even where trek.log holds no head
//     but those acknowledged: the README's "Tamper evidence" says the
//     acknowledgement's record of the chain's last row is checked as
//     before, and "rows deleted afterwards are still found, even on a
//     quiet instance whose trek.log holds no head but the acknowledged
//     ones"; events recorded after the edits take nothing out of reach
//     ("also once new rows have taken their ids and chain positions").
//  2. Only the row Acknowledge wrote acknowledges: a row of
//     audit_chain_acks changed in any field (its id included) or copied
//     acknowledges nothing and is counted as rejected, and without the
//     original, as written, the lost rows are reported again, as they
//     were before the acknowledgement. A copy beside the original, or the
//     original put back as it was, leaves the acknowledgement standing.
//  3. No false alarm: when neither changed (only TREK's own unchained rows
//     were changed, added or deleted, a value was set to what it was, a
//     user_id cleared, or events recorded since), the report is intact.
//  4. A report that a row "was row N" is made only of a row whose chained
//     fields are row N's as the library wrote them, and Verify answers
//     every such edit without an error and in time.
//
// "As it was" for audit_chain_acks is as Verify reads it back: every
// column as text (readAcks), so a value recast to a BLOB of the same text
// is the same value.

// ackRestore says how a copy of the tamper template is restored from a
// backup before the acknowledgement, and what else happens around it.
type ackRestore struct {
	cut      int64 // the restore keeps the rows with ids below cut
	sequence bool  // sqlite_sequence is set back with them, as the backup holds it
	quiet    bool  // trek.log holds only the chain heads of the rows lost (rotated away, or a quiet instance)
	before   int   // events recorded after the restore, before acknowledging
	after    int   // events recorded after the edits
}

func (s ackRestore) String() string {
	return fmt.Sprintf("restored keeping ids below %d (sqlite_sequence set back: %t, trek.log quiet: %t), %d events before "+
		"the acknowledgement, %d after the edits", s.cut, s.sequence, s.quiet, s.before, s.after)
}

// The flags of an input's second byte: its low two bits are
// ackRestore.before, and the two above these ackRestore.after (modulo 3).
const (
	restoreSequence = 1 << 2
	restoreQuiet    = 1 << 3
	restoreAfter1   = 1 << 4
	restoreAfter2   = 2 << 4
)

// decodeAckRestore reads an input's first two bytes: the row the restore
// cuts from (ids 1 to 13: every chained row may be lost, and at least
// one is), then the flags.
func decodeAckRestore(r *tamperBytes) ackRestore {
	cut, flags := r.next(), r.next()
	return ackRestore{
		cut:      1 + int64(cut%13),
		before:   int(flags & 3),
		sequence: flags&restoreSequence != 0,
		quiet:    flags&restoreQuiet != 0,
		after:    int(flags>>4) % 3,
	}
}

// ackColNames are audit_chain_acks' columns (ackColumns) by name, in the
// order the edits below number them.
var ackColNames = [...]string{"id", "created_at", "reason", "head_id", "head_seq", "head_mac", "supersedes", "digest", "anchors", "tag"}

// ackText is a row of audit_chain_acks as Verify reads it: every column
// cast to text.
type ackText [len(ackColNames)]sql.NullString

// readAckTexts reads every row of audit_chain_acks as Verify does, in id
// order.
func readAckTexts(t testing.TB, db *sql.DB) []ackText {
	t.Helper()
	var out []ackText
	for _, r := range readTableTexts(t, db, "audit_chain_acks", ackColNames[:]) {
		out = append(out, ackText(r))
	}
	return out
}

// readTableTexts reads every row of table, columns cast to text, in id
// order.
func readTableTexts(t testing.TB, db *sql.DB, table string, columns []string) [][]sql.NullString {
	t.Helper()
	cols := make([]string, len(columns))
	for i, c := range columns {
		cols[i] = "CAST(" + c + " AS TEXT)"
	}
	rows, err := db.Query(`SELECT ` + strings.Join(cols, ", ") + ` FROM ` + table + ` ORDER BY id`)
	require.NoError(t, err)
	defer rows.Close()
	var out [][]sql.NullString
	for rows.Next() {
		r := make([]sql.NullString, len(columns))
		dest := make([]any, len(r))
		for i := range r {
			dest[i] = &r[i]
		}
		require.NoError(t, rows.Scan(dest...))
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

// The edits of audit_chain_acks an input makes, decoded as applyTamperOps
// decodes those of audit_log: a byte for the kind, a byte for the row
// (its place among the rows by id), then the bytes each reads.
const (
	ackOpSet    = iota // column, value (below): one column set
	ackOpDelete        // the row deleted
	ackOpCopy          // id (a signed byte added; 0: 1000 added): copied whole under another id
	ackOpMove          // id, as ackOpCopy: given another id
	ackOpKinds
)

// The values ackOpSet sets, a byte for the kind and then its own.
const (
	ackValSame   = iota // the value itself
	ackValBlob          // cast to a BLOB: the same text
	ackValAsText        // cast to TEXT
	ackValAppend        // length, bytes: appended
	ackValPlus          // signed byte: added
	ackValNull
	ackValOther // column: another column's value
	ackValUpper // upper()
	ackValChar  // position, character: one character replaced
	ackValZero  // a 0 written before it, as a BLOB: for a number, the same number spelled otherwise
	ackValKinds
)

// applyAckOps decodes up to two edits of audit_chain_acks from r: none for
// half the inputs, so that most of them edit audit_log under an
// acknowledgement that still stands.
func applyAckOps(e *tamperEditor, r *tamperBytes) {
	n := 0
	switch r.next() % 4 {
	case 2:
		n = 1
	case 3:
		n = 2
	}
	for range n {
		op, place := r.next()%ackOpKinds, r.next()
		ids := ackIDs(e)
		if len(ids) == 0 {
			continue
		}
		id := ids[int(place)%len(ids)]
		otherID := func() int64 {
			if d := int64(int8(r.next())); d != 0 {
				return id + d
			}
			return id + 1000
		}
		switch op {
		case ackOpSet:
			col := ackColNames[int(r.next())%len(ackColNames)]
			e.exec(`UPDATE audit_chain_acks SET `+col+` = `+ackValue(r, col)+` WHERE id = ?`, id)
		case ackOpDelete:
			e.exec(`DELETE FROM audit_chain_acks WHERE id = ?`, id)
		case ackOpCopy:
			e.exec(`INSERT INTO audit_chain_acks (`+strings.Join(ackColNames[:], ", ")+`) SELECT ?, `+
				strings.Join(ackColNames[1:], ", ")+` FROM audit_chain_acks WHERE id = ?`, otherID(), id)
		case ackOpMove:
			e.exec(`UPDATE audit_chain_acks SET id = ? WHERE id = ?`, otherID(), id)
		}
	}
}

// ackValue decodes the value ackOpSet sets column col to, as an SQL
// expression with its values written in: the bytes they come from are
// few, and quoted here, so nothing needs binding.
func ackValue(r *tamperBytes, col string) string {
	switch r.next() % ackValKinds {
	case ackValSame:
		return col
	case ackValBlob:
		return `CAST(` + col + ` AS BLOB)`
	case ackValAsText:
		return `CAST(` + col + ` AS TEXT)`
	case ackValAppend:
		return col + ` || ` + sqlQuote(r.text())
	case ackValPlus:
		return fmt.Sprintf(`%s + %d`, col, int8(r.next()))
	case ackValNull:
		return `NULL`
	case ackValOther:
		return ackColNames[int(r.next())%len(ackColNames)]
	case ackValUpper:
		return `upper(` + col + `)`
	case ackValChar:
		pos, c := int(r.next()%64), r.next()
		return fmt.Sprintf(`substr(%s, 1, %d) || %s || substr(%s, %d)`, col, pos, sqlQuote(string("0123456789abcdefABCDEF "[int(c)%23])), col, pos+2)
	}
	return `CAST('0' || ` + col + ` AS BLOB)`
}

// sqlQuote writes s as an SQL literal: a BLOB of its bytes, cast to text.
func sqlQuote(s string) string {
	return fmt.Sprintf(`CAST(x'%x' AS TEXT)`, s)
}

// ackIDs are the ids of audit_chain_acks' rows now, in order.
func ackIDs(e *tamperEditor) []int64 {
	e.t.Helper()
	return queryIDs(e.t, e.db, `SELECT id FROM audit_chain_acks ORDER BY id`)
}

// checkAckProperties restores a copy of the template as s says,
// acknowledges what that left to acknowledge, edits the copy with edit,
// then verifies it read-only and checks the report against the oracle.
// It returns whether the oracle calls the edits tampering: with the
// chained rows, or with the acknowledgement.
func checkAckProperties(t *testing.T, tmpl *tamperTemplate, s ackRestore, edit func(e *tamperEditor)) (tampered bool) {
	t.Helper()
	ctx := t.Context()
	c := tmpl.copy(t)
	cfg := Config{DBPath: c.dbPath, LogPath: c.logPath, ChainKey: faultChainKey}

	// The restore: the newest rows gone, trek.log as it was.
	db := openPlainDB(t, c.dbPath)
	_, err := db.Exec(`DELETE FROM audit_log WHERE id >= ?`, s.cut)
	require.NoError(t, err)
	if s.sequence {
		_, err = db.Exec(`UPDATE sqlite_sequence SET seq = ? WHERE name = 'audit_log'`, s.cut-1)
		require.NoError(t, err)
	}
	var end int64
	require.NoError(t, db.QueryRow(`SELECT COALESCE(MAX(chain_seq), 0) FROM audit_log`).Scan(&end))
	require.NoError(t, db.Close())
	if s.quiet {
		keepAnchorsPast(t, cfg, end)
	}
	if s.before > 0 {
		a := openAuditor(t, cfg)
		recordN(t, a, s.before, "after the restore")
		require.NoError(t, a.Close())
	}

	// The acknowledgement, as an operator makes it.
	a := openAuditor(t, cfg)
	restored, err := a.Verify(ctx)
	require.NoError(t, err)
	require.NotNil(t, restored.Problem, "%s: the rows lost are reported", s)
	require.True(t, restored.Problem.Acknowledgeable, "%s: %+v", s, restored.Problem)
	shown, err := a.Unacknowledged(ctx)
	require.NoError(t, err, s)
	require.Positive(t, shown.Anchors, "%s: there is something to acknowledge", s)
	ack, err := a.Acknowledge(ctx, "restored travel.db from the backup", shown.Digest)
	require.NoError(t, err, s)
	rep, err := a.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.Intact, "%s: acknowledged, yet %+v", s, rep.Problem)
	require.Equal(t, []Acknowledgement{ack}, rep.Acknowledgements)
	require.NoError(t, a.Close())

	// The rows and the acknowledgement as the library wrote them.
	db = openPlainDB(t, c.dbPath)
	written := readTamperRows(t, db)
	acks := readAckTexts(t, db)
	require.Len(t, acks, 1)
	require.NoError(t, db.Close())

	e := &tamperEditor{t: t, db: openPlainDB(t, c.dbPath)}
	e.db.SetMaxOpenConns(1)
	edit(e)
	edited := readTamperRows(t, e.db)
	ackRows := readAckTexts(t, e.db)
	_, err = e.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	require.NoError(t, err)
	require.NoError(t, e.db.Close())
	edits := s.String() + ", then:\n" + strings.Join(e.done, ";\n")

	changed, why := tamperedWith(written, edited)
	kept := false
	for _, r := range ackRows {
		kept = kept || r == acks[0]
	}
	if !kept {
		why = strings.TrimPrefix(why+"; the acknowledgement is not there as it was written", "; ")
	}

	// Events recorded since: new rows that the key chains onto what the
	// edits left, taking the ids and positions of rows deleted at the end.
	final := edited
	if s.after > 0 {
		a, err := Open(cfg)
		if err != nil {
			require.ErrorIs(t, err, ErrChainKey, edits)
			require.True(t, changed, "Open refused rows the library wrote (%v) after:\n%s", err, edits)
		} else {
			var failed error
			for i := range s.after {
				if failed = a.Record(ctx, Event{Action: UserLogin, Resource: fmt.Sprintf("after the edits %d", i)}); failed != nil {
					break
				}
			}
			closed := a.Close()
			if failed == nil {
				require.NoError(t, closed)
			}
			require.True(t, failed == nil || changed, "Record failed after rows the library wrote (%v), after:\n%s", failed, edits)
		}
		final = readTamperRows(t, openPlainDB(t, c.dbPath))
	}

	ro := cfg
	ro.ReadOnly = true
	a = openAuditor(t, ro)
	vctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	rep, err = a.Verify(vctx)
	require.NoError(t, vctx.Err(), "Verify did not finish in 20 s after:\n%s", edits)
	require.NoError(t, err, "an edit that keeps the schema is no reason not to check, after:\n%s", edits)

	tampered = changed || !kept
	if tampered {
		require.False(t, rep.Intact, "unreported (%s) after:\n%s", why, edits)
		require.NotNil(t, rep.Problem, "after:\n%s", edits)
	} else {
		require.True(t, rep.Intact, "false alarm: %+v, after:\n%s", rep.Problem, edits)
		require.Nil(t, rep.Problem)
	}
	if kept {
		assert.Equal(t, []Acknowledgement{ack}, rep.Acknowledgements, "after:\n%s", edits)
		assert.Equal(t, ack.Anchors, rep.AcknowledgedAnchors, "after:\n%s", edits)
		assert.Equal(t, len(ackRows)-1, rep.RejectedAcknowledgements, "every other row is rejected, after:\n%s", edits)
	} else {
		assert.Empty(t, rep.Acknowledgements, "after:\n%s", edits)
		assert.Zero(t, rep.AcknowledgedAnchors, "after:\n%s", edits)
		assert.Equal(t, len(ackRows), rep.RejectedAcknowledgements, "every row is rejected, after:\n%s", edits)
		if !changed {
			// The report comes back: the rows lost in the restore.
			assert.Equal(t, TamperMissing, rep.Problem.Kind, "after:\n%s", edits)
			assert.True(t, rep.Problem.Acknowledgeable, "after:\n%s", edits)
			if s.after == 0 {
				assert.Equal(t, restored.Problem, rep.Problem, "as before the acknowledgement, after:\n%s", edits)
			}
		}
	}
	if rep.Problem != nil {
		// The rows the library wrote: those of the acknowledgement's
		// moment, and those recorded since at ids the edits left free.
		lib := append([]tamperRow(nil), written...)
		taken := map[int64]bool{}
		for _, r := range append(written, edited...) {
			taken[r.id] = true
		}
		for _, r := range final {
			if !taken[r.id] {
				lib = append(lib, r)
			}
		}
		checkAttribution(t, lib, final, rep.Problem, edits)
	}
	return tampered
}

// FuzzAcknowledgeTamper restores the template's travel.db as from a
// backup, acknowledges the rows lost, then edits it by hand, audit_log as
// FuzzTamper does and audit_chain_acks too, and checks Verify's report
// against what the edits did (see the properties above). An input is the
// restore (decodeAckRestore), the edits of audit_chain_acks (applyAckOps),
// then those of audit_log (applyTamperOps).
func FuzzAcknowledgeTamper(f *testing.F) {
	// With the restore of cutAt9 (rows 9 to 14 lost, sqlite_sequence set
	// back, two events recorded since as rows 9 and 10), rows by place:
	// 0-3 are chained ids 1-4, 4 is TREK's id 5, 5-7 are chained ids 6-8
	// (positions 5 to 7, as the backup held them), 8-9 the new rows 9
	// and 10 (positions 8 and 9); 0x80 is TREK's row 5.
	const cutAt9 = restoreSequence | 2
	seed := func(cut int, flags byte, rest ...byte) []byte { return append([]byte{byte(cut - 1), flags}, rest...) }
	const noAckEdit, oneAckEdit, twoAckEdits = 0, 2, 3
	seeds := [][]byte{
		// Every row lost, nothing recorded since, nothing changed.
		{},
		// Nothing changed.
		seed(9, cutAt9, noAckEdit),
		// Events recorded since.
		seed(9, cutAt9|restoreAfter2, noAckEdit),
		// Only the newest row lost, one event recorded in its place.
		seed(13, restoreSequence|1, noAckEdit),
		// Ids not given again: the new rows are 15 to 17.
		seed(9, 3, noAckEdit),
		// TREK's rows changed and added.
		seed(9, cutAt9, noAckEdit, opUpdate, 0x80, colDetails, valText, 1, 'x', opInsert, 0, 0, 0, 0),
		// user_id cleared.
		seed(9, cutAt9, noAckEdit, opUpdate, 1, colUserID, valNull),
		// A new row, at a position whose lost head is acknowledged, changed.
		seed(9, cutAt9, noAckEdit, opUpdate, 8, colDetails, valText, 1, 'x'),
		// A row deleted from the middle.
		seed(9, cutAt9, noAckEdit, opDelete, 6),
		// The newest row deleted.
		seed(9, cutAt9, noAckEdit, opDelete, 9),
		// The chain cut back past the last row the acknowledgement recorded.
		seed(9, cutAt9, noAckEdit, opTruncate, 6),
		// The same, and chained over.
		seed(9, cutAt9|restoreAfter2, noAckEdit, opTruncate, 7),
		// A quiet instance: only the acknowledgement's record finds the
		// newest row gone, chained over or not.
		seed(9, restoreSequence|restoreQuiet, noAckEdit, opDelete, 7),
		seed(9, restoreSequence|restoreQuiet|restoreAfter1, noAckEdit, opDelete, 7),
		// The newest row's chain value removed, and chained over.
		seed(9, restoreQuiet|restoreAfter1, noAckEdit, opUnchain, 7),
		// A new row given the id of a lost row (15 to 9).
		seed(9, 3, noAckEdit, opMoveID, 8, idNear, 0xfa),
		// The acknowledgement's reason changed.
		seed(9, cutAt9, oneAckEdit, ackOpSet, 0, 2, ackValAppend, 1, 'x'),
		// Values set to themselves, in both tables.
		seed(9, cutAt9, oneAckEdit, ackOpSet, 0, 2, ackValSame, opUpdate, 3, colIP, valSame),
		// The reason recast as a BLOB: read back the same.
		seed(9, cutAt9, oneAckEdit, ackOpSet, 0, 2, ackValBlob),
		// The acknowledgement deleted.
		seed(9, cutAt9, oneAckEdit, ackOpDelete, 0),
		// Copied under another id, beside the original.
		seed(9, cutAt9, oneAckEdit, ackOpCopy, 0, 5),
		// Given another id.
		seed(9, cutAt9, oneAckEdit, ackOpMove, 0, 0),
		// Copied under another id, and the original deleted.
		seed(9, cutAt9, twoAckEdits, ackOpCopy, 0, 1, ackOpDelete, 0),
		// Stretched over the newest row, which is then deleted.
		seed(9, cutAt9, oneAckEdit, ackOpSet, 0, 4, ackValPlus, 1, opDelete, 9),
		// A character of the tag replaced.
		seed(9, cutAt9, oneAckEdit, ackOpSet, 0, 9, ackValChar, 3, 'e'),
		// The acknowledgement deleted, with TREK's rows changed.
		seed(9, cutAt9|restoreAfter1, oneAckEdit, ackOpDelete, 0, opDelete, 0x80),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	tmpl := newTamperTemplate(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		r := &tamperBytes{in}
		s := decodeAckRestore(r)
		checkAckProperties(t, tmpl, s, func(e *tamperEditor) {
			applyAckOps(e, r)
			applyTamperOps(e, r.b)
		})
	})
}

// TestAcknowledgeTamperPropertyCases runs the property check on edits
// picked by hand, made after the acknowledgement, and checks that the
// oracle calls each what it is.
func TestAcknowledgeTamperPropertyCases(t *testing.T) {
	// Rows 9 to 14 lost (positions 8 to 12), two events recorded since as
	// rows 9 and 10 at positions 8 and 9: the acknowledgement lists the
	// five heads lost and records row 10, position 9, as the chain's end.
	restore := ackRestore{cut: 9, sequence: true, before: 2}
	// A quiet instance: trek.log holds only the heads of the rows lost, and
	// nothing was recorded since: the acknowledgement records row 8,
	// position 7, and is all that finds rows cut off the end.
	quiet := ackRestore{cut: 9, sequence: true, quiet: true}
	chainedOver := restore
	chainedOver.after = 2
	quietChainedOver := quiet
	quietChainedOver.after = 1
	noSequence := restore
	noSequence.sequence = false // the new rows are 15 and 16
	const ackCols = `id, created_at, reason, head_id, head_seq, head_mac, supersedes, digest, anchors, tag`

	cases := []struct {
		name     string
		restore  ackRestore
		sql      []string
		tampered bool
	}{
		{"nothing changed", restore, nil, false},
		{"nothing changed, on a quiet instance", quiet, nil, false},
		{"events recorded since", chainedOver, nil, false},
		{"TREK's own rows changed, deleted and added", restore, []string{
			`UPDATE audit_log SET details = '{"title":"x"}' WHERE id = 5`,
			`INSERT INTO audit_log (action, ip) VALUES ('user.login', '10.0.0.9')`,
			`DELETE FROM audit_log WHERE id = 5`,
		}, false},
		{"TREK's own rows changed, on a quiet instance", quiet, []string{`UPDATE audit_log SET ip = '10.9.9.9' WHERE id = 5`}, false},
		{"user_id cleared", restore, []string{`UPDATE audit_log SET user_id = NULL WHERE id IN (1, 2)`}, false},
		{"values set to themselves", restore, []string{
			`UPDATE audit_log SET details = details WHERE id = 9`,
			`UPDATE audit_chain_acks SET reason = reason, anchors = anchors, tag = tag`,
		}, false},
		{"the acknowledgement recast as BLOBs, read back the same", restore, []string{
			`UPDATE audit_chain_acks SET reason = CAST(reason AS BLOB), head_id = CAST(head_id AS BLOB), anchors = CAST(anchors AS BLOB)`,
		}, false},
		{"the acknowledgement copied under another id", restore, []string{
			`INSERT INTO audit_chain_acks (` + ackCols + `) SELECT id + 1, ` + strings.TrimPrefix(ackCols, "id, ") + ` FROM audit_chain_acks`,
		}, false},
		{"the acknowledgement deleted and put back as it was", restore, []string{
			`CREATE TABLE kept AS SELECT * FROM audit_chain_acks`,
			`DELETE FROM audit_chain_acks`,
			`INSERT INTO audit_chain_acks SELECT * FROM kept`,
		}, false},

		{"a new row at an acknowledged position changed", restore, []string{`UPDATE audit_log SET details = '{"x":1}' WHERE id = 9`}, true},
		{"the newest row changed", restore, []string{`UPDATE audit_log SET resource = 'edited' WHERE id = 10`}, true},
		{"a row the backup held changed", restore, []string{`UPDATE audit_log SET ip = '10.9.9.9' WHERE id = 3`}, true},
		{"a row deleted from the middle", restore, []string{`DELETE FROM audit_log WHERE id = 7`}, true},
		{"the newest row deleted", restore, []string{`DELETE FROM audit_log WHERE id = 10`}, true},
		{"the newest row deleted, on a quiet instance", quiet, []string{`DELETE FROM audit_log WHERE id = 8`}, true},
		{"the chain cut back past the recorded last row", restore, []string{`DELETE FROM audit_log WHERE id >= 7`}, true},
		{"the chain cut back past the recorded last row, on a quiet instance", quiet, []string{`DELETE FROM audit_log WHERE id >= 4`}, true},
		{"the newest rows deleted and chained over", chainedOver, []string{`DELETE FROM audit_log WHERE id >= 9`}, true},
		{"the newest row deleted and chained over, on a quiet instance", quietChainedOver, []string{`DELETE FROM audit_log WHERE id = 8`}, true},
		{"the newest row's chain value removed, and chained over", quietChainedOver, []string{
			`UPDATE audit_log SET chain_seq = NULL, chain_mac = NULL WHERE id = 8`,
		}, true},
		{"a new row given the id of a lost row", noSequence, []string{`UPDATE audit_log SET id = 9 WHERE id = 15`}, true},
		{"every chained row deleted", restore, []string{`DELETE FROM audit_log WHERE chain_seq IS NOT NULL`}, true},

		{"the acknowledgement's reason changed", restore, []string{`UPDATE audit_chain_acks SET reason = 'routine maintenance'`}, true},
		{"the acknowledgement deleted", restore, []string{`DELETE FROM audit_chain_acks`}, true},
		{"the acknowledgement deleted, on a quiet instance", quiet, []string{`DELETE FROM audit_chain_acks`}, true},
		{"the acknowledgement given another id", restore, []string{`UPDATE audit_chain_acks SET id = id + 1`}, true},
		{"the acknowledgement copied under another id, the original deleted", restore, []string{
			`INSERT INTO audit_chain_acks (` + ackCols + `) SELECT id + 1, ` + strings.TrimPrefix(ackCols, "id, ") + ` FROM audit_chain_acks`,
			`DELETE FROM audit_chain_acks WHERE id = 1`,
		}, true},
		{"the acknowledgement stretched over the newest row, deleted", restore, []string{
			`UPDATE audit_chain_acks SET head_seq = head_seq - 1, head_id = head_id - 1,
				head_mac = (SELECT chain_mac FROM audit_log WHERE id = 9)`,
			`DELETE FROM audit_log WHERE id = 10`,
		}, true},
		{"the acknowledgement deleted, and events recorded since", chainedOver, []string{`DELETE FROM audit_chain_acks`}, true},
		{"the acknowledgement's head_id a BLOB spelling the same number otherwise", restore, []string{
			`UPDATE audit_chain_acks SET head_id = CAST('0' || head_id AS BLOB)`,
		}, true},
		{"the acknowledgement's head_seq a BLOB with a plus sign", restore, []string{
			`UPDATE audit_chain_acks SET head_seq = CAST('+' || head_seq AS BLOB)`,
		}, true},
	}
	tmpl := newTamperTemplate(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tampered := checkAckProperties(t, tmpl, tc.restore, func(e *tamperEditor) {
				for _, q := range tc.sql {
					_, err := e.db.Exec(q)
					require.NoError(t, err, q)
					e.done = append(e.done, q)
				}
			})
			assert.Equal(t, tc.tampered, tampered, "the oracle")
		})
	}
}
