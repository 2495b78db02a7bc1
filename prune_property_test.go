package audit

import (
	"database/sql"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readTamperRecord reads the one record a pruned template holds, as
// readPrunings does: each column as text.
func readTamperRecord(t testing.TB, db *sql.DB) []sql.NullString {
	t.Helper()
	all := readTableTexts(t, db, "audit_prunes", recordColumns)
	require.Len(t, all, 1)
	return all[0]
}

// checkRecord counts the rows of audit_prunes in the copy at dbPath, and
// those of them that are not the template's record as Prune wrote it:
// whatever else is there, no one without the key made.
func (tmpl *tamperTemplate) checkRecord(t testing.TB, dbPath string) (records, rejected int) {
	t.Helper()
	all := readTableTexts(t, openPlainDB(t, dbPath), "audit_prunes", recordColumns)
	rejected = len(all)
	if slices.ContainsFunc(all, func(r []sql.NullString) bool { return slices.Equal(r, tmpl.record) }) {
		rejected--
	}
	return len(all), rejected
}

// The edits of the record of the pruning FuzzTamperPruned decodes from
// the first byte of its input, and the bytes each reads; the rest are
// FuzzTamper's edits of audit_log.
const (
	recKeep      = iota
	recDelete    // the record deleted
	recSet       // column, value: one column of it set
	recCopy      // copied whole under id 2
	recMadeUp    // first position, row: a record made up, with the chain value of that row
	recMoveStart // delta: its first_id and first_seq moved by a signed byte
	recKinds
)

// recordColumns are audit_prunes' columns, in the order recSet names them.
var recordColumns = []string{"id", "created_at", "reason", "before_time", "rows", "oldest", "newest", "first_id", "first_seq", "prev_mac", "tag"}

// applyRecordEdit decodes the first edit of r into an edit of audit_prunes.
func applyRecordEdit(e *tamperEditor, r *tamperBytes) {
	switch r.next() % recKinds {
	case recDelete:
		e.exec(`DELETE FROM audit_prunes`)
	case recSet:
		col := recordColumns[int(r.next())%len(recordColumns)]
		switch v := r.next() % 6; v {
		case 0:
			e.exec(`UPDATE audit_prunes SET ` + col + ` = NULL`)
		case 1:
			e.exec(`UPDATE audit_prunes SET `+col+` = ?`, int64(int8(r.next())))
		case 2:
			e.exec(`UPDATE audit_prunes SET `+col+` = ?`, r.text())
		case 3:
			e.exec(`UPDATE audit_prunes SET ` + col + ` = CAST(` + col + ` AS BLOB)`)
		case 4:
			e.exec(`UPDATE audit_prunes SET ` + col + ` = CAST(` + col + ` AS TEXT)`)
		case 5:
			e.exec(`UPDATE audit_prunes SET `+col+` = `+col+` || ?`, r.text())
		}
	case recCopy:
		e.exec(`INSERT INTO audit_prunes SELECT 2, created_at, reason, before_time, rows, oldest, newest, first_id, first_seq, prev_mac, tag
			FROM audit_prunes WHERE id = 1`)
	case recMadeUp:
		seq, row := int64(r.next()%16), r.next()
		ids := e.ids(false)
		e.exec(`INSERT INTO audit_prunes VALUES (9, '2026-01-01T00:00:00Z', 'made up', '2026-01-01T00:00:00Z', 1, '', '', ?, ?,
			COALESCE((SELECT chain_mac FROM audit_log WHERE id = ?), ''), ?)`, seq+1, seq, ids[int(row)%len(ids)], r.text())
	case recMoveStart:
		d := int64(int8(r.next()))
		e.exec(`UPDATE audit_prunes SET first_id = first_id + ?, first_seq = first_seq + ?`, d, d)
	}
}

// FuzzTamperPruned is FuzzTamper on a table Prune has pruned, with the
// record of the pruning edited too: the chain, starting at position 7,
// verifies exactly when FuzzTamper's oracle says it does and the record
// is as Prune wrote it (or no chained row is left); every other row of
// audit_prunes is rejected. Rows by place: 0-5 are chained ids 8-13
// (positions 7 to 12), 6 is TREK's id 14.
func FuzzTamperPruned(f *testing.F) {
	seeds := [][]byte{
		{recKeep},                // nothing changed
		{recKeep, opDelete, 0},   // the first row kept deleted
		{recKeep, opTruncate, 3}, // the newest rows deleted
		{recKeep, opUpdate, 0, colDetails, valText, 1, 'x'},
		{recKeep, opMoveID, 6, idNegative, 0}, // TREK's row moved before the chain's first
		{recKeep, opInsert, 0, 0, 0, 0, 0},    // TREK's row added
		{recKeep, opShiftSeq, 0, 0xff},        // the first row moved to position 6
		{recDelete},
		{recSet, 2, 2, 1, 'x'}, // the reason changed
		{recSet, 8, 3},         // first_seq cast to a BLOB
		{recSet, 8, 4},         // first_seq cast to TEXT: reads the same
		{recSet, 0, 1, 2},      // another id
		{recCopy},              // a copy under another id
		{recMadeUp, 7, 0, 4, 'a', 'b', 'c', 'd'},
		{recMoveStart, 1, opDelete, 0}, // the record moved on past a deleted row
		{recMoveStart, 0xff},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	tmpl := buildTamperTemplate(f, true)
	f.Fuzz(func(t *testing.T, in []byte) {
		checkTamperProperties(t, tmpl, func(e *tamperEditor) {
			r := &tamperBytes{in}
			applyRecordEdit(e, r)
			applyTamperOps(e, r.b)
		})
	})
}

// TestTamperPrunedTemplate: the pruned template is what the fuzz target
// says it is, and its oracle calls the record's edits what they are.
func TestTamperPrunedTemplate(t *testing.T) {
	tmpl := buildTamperTemplate(t, true)
	require.Equal(t, int64(7), tmpl.startSeq)
	var ids []int64
	for _, r := range tmpl.rows {
		ids = append(ids, r.id)
	}
	require.Equal(t, []int64{8, 9, 10, 11, 12, 13, 14}, ids)
	for _, tc := range []struct {
		in       []byte
		tampered bool
	}{
		{[]byte{recKeep}, false},
		{[]byte{recSet, 8, 4}, false},
		{[]byte{recDelete}, true},
		{[]byte{recCopy}, false},
		{[]byte{recSet, 2, 2, 1, 'x'}, true},
	} {
		t.Run(fmt.Sprint(tc.in), func(t *testing.T) {
			got := checkTamperProperties(t, tmpl, func(e *tamperEditor) {
				r := &tamperBytes{tc.in}
				applyRecordEdit(e, r)
				applyTamperOps(e, r.b)
			})
			assert.Equal(t, tc.tampered, got)
		})
	}
}

// FuzzPruneRow reads a row of audit_prunes as anyone who can write the
// database could have left it. Reading must never panic, and a row that
// reads as a record must say what the key signed: the only signed row
// here is good, so any accepted row carries good's values, whatever its
// spelling of the numbers.
func FuzzPruneRow(f *testing.F) {
	s := newPruneSigner([]byte("fuzzing key, 32 bytes long......"))
	good := Pruning{ID: 2, CreatedAt: "2026-11-27T12:00:00Z", Reason: "kept for a year", Before: "2025-11-27T00:00:00Z",
		Rows: 40, Oldest: "2024-01-01 00:00:00", Newest: "2025-11-26 23:59:59", FirstID: 41, FirstSeq: 38, prevMac: strings.Repeat("ab", 32)}
	signed := pruneFieldsOf(&good)
	good.tag = hex.EncodeToString(s.tag(&signed))
	row := func(p Pruning, tag string) []string {
		return []string{fmt.Sprint(p.ID), p.CreatedAt, p.Reason, p.Before, fmt.Sprint(p.Rows), p.Oldest, p.Newest,
			fmt.Sprint(p.FirstID), fmt.Sprint(p.FirstSeq), p.prevMac, tag}
	}
	add := func(r []string) { f.Add(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10]) }
	add(row(good, good.tag))
	spelled := row(good, good.tag)
	spelled[7], spelled[8] = "041", "+38"
	add(spelled)
	add(row(good, strings.ToUpper(good.tag)))
	upper := row(good, good.tag)
	upper[9] = strings.ToUpper(upper[9])
	add(upper)
	first := good
	first.FirstSeq, first.prevMac = 1, ""
	add(row(first, good.tag))
	add([]string{"x", "", "", "", "", "", "", "", "", "", ""})
	f.Fuzz(func(t *testing.T, id, createdAt, reason, before, rows, oldest, newest, firstID, firstSeq, prevMac, tag string) {
		var in [11]sql.NullString
		for i, v := range []string{id, createdAt, reason, before, rows, oldest, newest, firstID, firstSeq, prevMac, tag} {
			in[i] = sql.NullString{String: v, Valid: true}
		}
		p, prev, ok := s.parse(in)
		if !ok {
			return
		}
		require.Equal(t, good, p)
		require.Equal(t, strings.Repeat("ab", 32), hex.EncodeToString(prev[:]))
	})
}
