package audit

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordN records n events whose resource names label and their number.
func recordN(t *testing.T, a *Auditor, n int, label string) {
	t.Helper()
	for i := range n {
		require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin, Resource: fmt.Sprintf("%s %d", label, i)}))
	}
}

// restoredDatabase plays a restore from a backup: five events, a backup
// of travel.db, five more, then the backup put back in place. trek.log
// keeps the chain heads of all ten. It returns the Auditor opened on the
// restored file and a handle of the test's own on it.
func restoredDatabase(t *testing.T) (Config, *Auditor, *sql.DB) {
	t.Helper()
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	recordN(t, a, 5, "before the backup")
	backup := filepath.Join(t.TempDir(), "backup.db")
	_, err := openPlainDB(t, cfg.DBPath).Exec(`VACUUM INTO ?`, backup)
	require.NoError(t, err)
	recordN(t, a, 5, "lost in the restore")
	require.NoError(t, a.Close())

	for _, suffix := range []string{"", "-wal", "-shm"} {
		require.NoError(t, os.RemoveAll(cfg.DBPath+suffix))
	}
	b, err := os.ReadFile(backup)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfg.DBPath, b, 0o640))
	return cfg, openAuditor(t, cfg), openPlainDB(t, cfg.DBPath)
}

// acknowledge does what an operator does: looks at what there is to
// acknowledge, then acknowledges that.
func acknowledge(t *testing.T, a *Auditor, reason string) (Acknowledgement, error) {
	t.Helper()
	pending, err := a.Unacknowledged(t.Context())
	if err != nil {
		return Acknowledgement{}, err
	}
	return a.Acknowledge(t.Context(), reason, pending.Digest)
}

func verifyNow(t *testing.T, a *Auditor) VerifyReport {
	t.Helper()
	rep, err := a.Verify(t.Context())
	require.NoError(t, err)
	return rep
}

func countAcks(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM audit_chain_acks`).Scan(&n))
	return n
}

// TestAcknowledgeARestoredDatabase: after a restore, Verify reports the
// lost rows, rightly. Once acknowledged, it reports the chain intact and
// shows the acknowledgement, while every chain head written afterwards is
// checked as before: rows deleted later are still found.
func TestAcknowledgeARestoredDatabase(t *testing.T) {
	_, a, db := restoredDatabase(t)

	rep := verifyNow(t, a)
	require.NotNil(t, rep.Problem)
	assert.Equal(t, TamperMissing, rep.Problem.Kind)
	assert.Zero(t, rep.Problem.ID, "the newest rows are gone")
	assert.True(t, rep.Problem.Acknowledgeable, "found through trek.log's chain heads")

	recordN(t, a, 2, "after the restore") // chain positions 6 and 7 again, other rows
	rep = verifyNow(t, a)
	require.False(t, rep.Intact, "the heads of the lost rows 6 and 7 name other rows")

	ack, err := acknowledge(t, a, "restored travel.db from the backup taken after event 5")
	require.NoError(t, err)
	assert.Positive(t, ack.ID)
	assert.Equal(t, 5, ack.Anchors, "the heads of the five lost rows")
	assert.EqualValues(t, 7, ack.HeadSeq)
	assert.EqualValues(t, 7, ack.HeadID)
	assert.Equal(t, "6-7", ack.DifferingAt, "the lost rows 6 and 7, where new ones stand")
	assert.Equal(t, "8-10", ack.PastEndAt)
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`, ack.CreatedAt)

	rep = verifyNow(t, a)
	assert.True(t, rep.Intact, "%+v", rep.Problem)
	assert.Equal(t, 5, rep.AcknowledgedAnchors)
	assert.Equal(t, 12, rep.Anchors, "ten heads before the restore, two after")
	assert.Equal(t, []Acknowledgement{ack}, rep.Acknowledgements)
	assert.Zero(t, rep.RejectedAcknowledgements)

	recordN(t, a, 5, "later") // positions 8 to 12: their new heads match, the lost ones are acknowledged
	rep = verifyNow(t, a)
	assert.True(t, rep.Intact, "%+v", rep.Problem)
	assert.EqualValues(t, 12, rep.HeadSeq)

	pending, err := a.Unacknowledged(t.Context())
	require.NoError(t, err)
	assert.Zero(t, pending, "every head matches: nothing to acknowledge")
	_, err = a.Acknowledge(t.Context(), "nothing new", "")
	require.ErrorIs(t, err, ErrAcknowledge)
	assert.Contains(t, err.Error(), "there is nothing to acknowledge")
	assert.Equal(t, 1, countAcks(t, db), "and nothing written")

	// A deletion after the acknowledgement is found as before.
	_, err = db.Exec(`DELETE FROM audit_log WHERE chain_seq = 12`)
	require.NoError(t, err)
	rep = verifyNow(t, a)
	require.NotNil(t, rep.Problem)
	assert.Equal(t, TamperMissing, rep.Problem.Kind)
	assert.Equal(t, 5, rep.AcknowledgedAnchors)
}

// TestAcknowledgementsCannotBeForged: someone who can write the database
// but does not hold the key can neither make an acknowledgement nor
// stretch one to cover what they did. A row changed in any field, or made
// up, acknowledges nothing and is counted.
func TestAcknowledgementsCannotBeForged(t *testing.T) {
	cases := []struct {
		name string
		sql  string
	}{
		{"reason changed", `UPDATE audit_chain_acks SET reason = 'routine maintenance'`},
		{"head changed", `UPDATE audit_chain_acks SET head_seq = head_seq + 1`},
		{"created_at changed", `UPDATE audit_chain_acks SET created_at = '2020-01-01T00:00:00Z'`},
		{"a head added to the list", `UPDATE audit_chain_acks SET anchors = anchors ||
			(SELECT chain_seq || ' ' || id || ' ' || substr(chain_mac, 1, 32) || char(10) FROM audit_log WHERE chain_seq = 7)`},
		{"a head taken off the list", `UPDATE audit_chain_acks SET anchors = substr(anchors, instr(anchors, char(10)) + 1)`},
		{"the tag of another text", `UPDATE audit_chain_acks SET tag = lower(hex(randomblob(32)))`},
		{"text where a number goes", `UPDATE audit_chain_acks SET head_id = 'seven'`},
		{"head_mac changed", `UPDATE audit_chain_acks SET head_mac = (SELECT chain_mac FROM audit_log WHERE chain_seq = 6)`},
		{"renumbered", `UPDATE audit_chain_acks SET id = id + 1000`},
		{"supersedes changed", `UPDATE audit_chain_acks SET supersedes = '1'`},
		{"digest changed", `UPDATE audit_chain_acks SET digest = '7-0011223344556677'`},
		{"a row made up", `DELETE FROM audit_chain_acks; INSERT INTO audit_chain_acks (id, created_at, reason, head_id, head_seq, head_mac, supersedes, digest, anchors, tag)
			SELECT 1, '2026-11-26T12:00:00Z', 'restore', 7, 7, (SELECT chain_mac FROM audit_log WHERE chain_seq = 7), '', '',
				(SELECT group_concat(chain_seq || ' ' || id || ' ' || substr(chain_mac, 1, 32), char(10)) FROM audit_log WHERE chain_seq > 5),
				lower(hex(randomblob(32)))`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, a, db := restoredDatabase(t)
			recordN(t, a, 2, "after the restore")
			_, err := acknowledge(t, a, "restored from backup")
			require.NoError(t, err)
			require.True(t, verifyNow(t, a).Intact)

			_, err = db.Exec(tc.sql)
			require.NoError(t, err)
			// What the forger hides: the newest row, whose head trek.log holds.
			_, err = db.Exec(`DELETE FROM audit_log WHERE chain_seq = 7`)
			require.NoError(t, err)

			rep := verifyNow(t, a)
			assert.False(t, rep.Intact)
			assert.Equal(t, 1, rep.RejectedAcknowledgements)
			assert.Empty(t, rep.Acknowledgements)
			assert.Zero(t, rep.AcknowledgedAnchors)
		})
	}
}

// TestAcknowledgeRefuses: a reason must be given and be one line of text;
// a read-only Auditor writes nothing; and only chain heads can be
// acknowledged, never a chain that does not verify. Each refusal writes
// nothing.
func TestAcknowledgeRefuses(t *testing.T) {
	cases := []struct {
		name, reason, tamper string
		readOnly             bool
		wantIs               error
		wantMsg              string
	}{
		{name: "no reason", reason: "", wantIs: ErrAcknowledge, wantMsg: "a reason is required"},
		{name: "blank reason", reason: " \u00a0 ", wantIs: ErrAcknowledge, wantMsg: "a reason is required"},
		{name: "reason too long", reason: strings.Repeat("x", maxAckReason+1), wantIs: ErrAcknowledge, wantMsg: "1001 bytes long, more than 1000"},
		{name: "line break", reason: "restored\n[INFO] forged", wantIs: ErrAcknowledge, wantMsg: "control character"},
		{name: "escape", reason: "restored \x1b[2J", wantIs: ErrAcknowledge, wantMsg: "control character"},
		{name: "invalid UTF-8", reason: "restored \xff", wantIs: ErrAcknowledge, wantMsg: "not valid UTF-8"},
		{name: "read-only", reason: "restored", readOnly: true, wantIs: ErrReadOnly},
		{name: "a row changed", reason: "restored", tamper: `UPDATE audit_log SET resource = 'edited' WHERE chain_seq = 3`,
			wantIs: ErrAcknowledge, wantMsg: "the chain itself does not verify: changed at row 3"},
		{name: "a row deleted between others", reason: "restored", tamper: `DELETE FROM audit_log WHERE chain_seq = 2`,
			wantIs: ErrAcknowledge, wantMsg: "missing at row 3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, a, db := restoredDatabase(t)
			if tc.tamper != "" {
				_, err := db.Exec(tc.tamper)
				require.NoError(t, err)
			}
			if tc.readOnly {
				ro := cfg
				ro.ReadOnly = true
				a = openAuditor(t, ro)
			}
			ack, err := acknowledge(t, a, tc.reason)
			require.ErrorIs(t, err, tc.wantIs)
			assert.Contains(t, err.Error(), tc.wantMsg)
			assert.Zero(t, ack)
			assert.Zero(t, countAcks(t, db))
		})
	}
}

// keepAnchorsPast rewrites trek.log with only the chain heads past seq, as
// if the older ones had rotated out.
func keepAnchorsPast(t *testing.T, cfg Config, seq int64) {
	t.Helper()
	var kept []byte
	for _, line := range logLines(t, cfg.LogPath) {
		if _, s, _, _, ok := parseAnchorLine([]byte(line)); ok && s > seq {
			kept = append(kept, line+"\n"...)
		}
	}
	require.NoError(t, os.WriteFile(cfg.LogPath, kept, 0o640))
}

// TestAcknowledgementChecksTheChainsEnd: on a quiet instance restored from
// an old backup, trek.log may hold no head but those of the lost rows.
// Once they are acknowledged, the acknowledgement's own record of the
// chain's last row is what finds rows deleted back past it, or deleted
// and then chained over. That too can be acknowledged (audit_log rebuilt
// by TREK, or a second restore, look the same), by a new acknowledgement
// that supersedes the first; without it, the report comes back. Rows
// chained over are reported missing, as a head in trek.log of a row now
// gone reports them: the rows at those positions verify, so the ones the
// record names were deleted, not changed.
func TestAcknowledgementChecksTheChainsEnd(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(t *testing.T, a *Auditor, db *sql.DB)
		kind   TamperKind
		detail string
	}{
		{"rows deleted back past it", func(t *testing.T, a *Auditor, db *sql.DB) {
			_, err := db.Exec(`DELETE FROM audit_log WHERE chain_seq > 3`)
			require.NoError(t, err)
		}, TamperMissing, "acknowledgement 1 recorded the chain's last row at chain position 5, the table ends at 3"},
		{"rows deleted and chained over", func(t *testing.T, a *Auditor, db *sql.DB) {
			_, err := db.Exec(`DELETE FROM audit_log WHERE chain_seq > 3`)
			require.NoError(t, err)
			recordN(t, a, 2, "chained over") // rows 6 and 7 at positions 4 and 5, with heads of their own
		}, TamperMissing, "acknowledgement 1 recorded chain position 5 as row 5, the table has row 7 there"},
		{"audit_log rebuilt by TREK", func(t *testing.T, a *Auditor, db *sql.DB) {
			_, err := db.Exec(`UPDATE audit_log SET chain_seq = NULL, chain_mac = NULL`)
			require.NoError(t, err)
		}, TamperMissing, "acknowledgement 1 recorded the chain's last row at chain position 5, the table ends at 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, a, db := restoredDatabase(t)
			keepAnchorsPast(t, cfg, 5)
			first, err := acknowledge(t, a, "restored from backup")
			require.NoError(t, err)
			require.EqualValues(t, 5, first.HeadSeq)
			require.True(t, verifyNow(t, a).Intact)

			tc.tamper(t, a, db)
			rep := verifyNow(t, a)
			require.NotNil(t, rep.Problem)
			assert.Equal(t, tc.kind, rep.Problem.Kind)
			assert.Contains(t, rep.Problem.Detail, tc.detail)
			assert.True(t, rep.Problem.Acknowledgeable)

			second, err := acknowledge(t, a, "audit_log was rebuilt")
			require.NoError(t, err)
			assert.Equal(t, []int64{first.ID}, second.Supersedes)
			rep = verifyNow(t, a)
			assert.True(t, rep.Intact, "%+v", rep.Problem)
			assert.Len(t, rep.Acknowledgements, 2)

			_, err = db.Exec(`DELETE FROM audit_chain_acks WHERE id = ?`, second.ID)
			require.NoError(t, err)
			rep = verifyNow(t, a)
			require.NotNil(t, rep.Problem, "without the second, the first's record is checked again")
			assert.Contains(t, rep.Problem.Detail, tc.detail)
		})
	}
}

// TestASecondRestoreIsRowsMissingWhicheverRecordNamesThem: travel.db
// restored from a backup, acknowledged, then audit_log restored from the
// same backup again (the table alone, so the acknowledgement stays): the
// next event takes the id and chain position of a row lost the second
// time, with another chain value. trek.log's head of that row reports
// rows missing; once trek.log is gone (rotated away, on a quiet instance),
// the acknowledgement's record of the chain's last row names the same row,
// and must report the same.
func TestASecondRestoreIsRowsMissingWhicheverRecordNamesThem(t *testing.T) {
	cfg, a, db := restoredDatabase(t)           // rows 6 to 10 lost
	recordN(t, a, 1, "after the first restore") // row 6 again
	_, err := acknowledge(t, a, "restored from the nightly backup")
	require.NoError(t, err)
	require.True(t, verifyNow(t, a).Intact)
	require.NoError(t, a.Close())

	// audit_log as the backup holds it: rows 1 to 5, ids given from 6 on.
	_, err = db.Exec(`DELETE FROM audit_log WHERE id > 5`)
	require.NoError(t, err)
	_, err = db.Exec(`UPDATE sqlite_sequence SET seq = 5 WHERE name = 'audit_log'`)
	require.NoError(t, err)
	a = openAuditor(t, cfg)
	recordN(t, a, 1, "after the second restore") // row 6 a third time
	withLog := verifyNow(t, a)
	require.NoError(t, a.Close())

	require.NoError(t, os.Remove(cfg.LogPath))
	ro := cfg
	ro.ReadOnly = true
	withoutLog := verifyNow(t, openAuditor(t, ro))

	for _, rep := range []VerifyReport{withLog, withoutLog} {
		assertAcknowledgeableLoss(t, rep, 6, 6)
	}
	assert.Contains(t, withLog.Problem.Detail, "trek.log recorded row 6 at chain position 6 with another chain value")
	assert.Contains(t, withoutLog.Problem.Detail, "acknowledgement 1 recorded row 6 at chain position 6 with another chain value")
	assert.Contains(t, withoutLog.Problem.Detail, "travel.db restored")
}

// TestAcknowledgementCopiedCountsOnce: the tag covers the row's id, so a
// copy under another id acknowledges nothing and is counted.
func TestAcknowledgementCopiedCountsOnce(t *testing.T) {
	_, a, db := restoredDatabase(t)
	ack, err := acknowledge(t, a, "restored from backup")
	require.NoError(t, err)
	_, err = db.Exec(`INSERT INTO audit_chain_acks (id, created_at, reason, head_id, head_seq, head_mac, supersedes, digest, anchors, tag)
		SELECT 1000, created_at, reason, head_id, head_seq, head_mac, supersedes, digest, anchors, tag FROM audit_chain_acks`)
	require.NoError(t, err)
	rep := verifyNow(t, a)
	assert.True(t, rep.Intact)
	assert.Equal(t, []Acknowledgement{ack}, rep.Acknowledgements)
	assert.Equal(t, 1, rep.RejectedAcknowledgements)
}

// TestOnlyTheLibrarysAcknowledgementTable: Verify reads every row of
// audit_chain_acks, so anything else by that name (an endless view, a
// virtual table over one, a generated column that makes gigabytes, an
// extra column) is refused: by Open, and, put there while the Auditor
// runs, by Verify and Acknowledge at once rather than after reading for
// good.
func TestOnlyTheLibrarysAcknowledgementTable(t *testing.T) {
	const endless = `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n)`
	cases := []struct{ name, sql, found string }{
		{"an endless view", `CREATE VIEW audit_chain_acks AS ` + endless + ` SELECT i AS id, '' AS created_at, '' AS reason,
			0 AS head_id, 0 AS head_seq, '' AS head_mac, '' AS supersedes, '' AS digest, '' AS anchors, '' AS tag FROM n`, "a view"},
		{"a virtual table over an endless view", `CREATE VIEW endless AS ` + endless + ` SELECT i AS docid, '' AS anchors FROM n;
			CREATE VIRTUAL TABLE audit_chain_acks USING fts4(content="endless", anchors)`, "a virtual"},
		{"a generated column", `CREATE TABLE audit_chain_acks (id INTEGER PRIMARY KEY, created_at TEXT, reason TEXT, head_id INTEGER,
			head_seq INTEGER, head_mac TEXT, supersedes TEXT, digest TEXT, anchors TEXT GENERATED ALWAYS AS (printf('%.*c', 900000000, 'x')) VIRTUAL, tag TEXT);
			INSERT INTO audit_chain_acks (id) VALUES (1)`, "anchors TEXT hidden or generated"},
		{"an extra column", `CREATE TABLE audit_chain_acks (id INTEGER PRIMARY KEY, created_at TEXT, reason TEXT, head_id INTEGER,
			head_seq INTEGER, head_mac TEXT, supersedes TEXT, digest TEXT, anchors TEXT, tag TEXT, fits INTEGER DEFAULT 1)`, "fits INTEGER"},
		{"no primary key", `CREATE TABLE audit_chain_acks (id INTEGER, created_at TEXT, reason TEXT, head_id INTEGER,
			head_seq INTEGER, head_mac TEXT, supersedes TEXT, digest TEXT, anchors TEXT, tag TEXT)`, "columns id INTEGER, created_at"},
		{"a trigger that drops what is written", `CREATE TABLE audit_chain_acks (id INTEGER PRIMARY KEY, created_at TEXT NOT NULL,
			reason TEXT NOT NULL, head_id INTEGER NOT NULL, head_seq INTEGER NOT NULL, head_mac TEXT NOT NULL, supersedes TEXT NOT NULL,
			digest TEXT NOT NULL, anchors TEXT NOT NULL, tag TEXT NOT NULL);
			CREATE TRIGGER swallow BEFORE INSERT ON audit_chain_acks BEGIN SELECT RAISE(IGNORE); END`, "triggers swallow"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, a, db := restoredDatabase(t)
			_, err := db.Exec(`DROP TABLE audit_chain_acks; ` + tc.sql)
			require.NoError(t, err)

			_, err = a.Verify(t.Context())
			require.ErrorIs(t, err, ErrVerify)
			assert.Contains(t, err.Error(), "audit_chain_acks is not the library's table (")
			assert.Contains(t, err.Error(), tc.found)
			_, err = acknowledge(t, a, "restored")
			require.ErrorIs(t, err, ErrVerify)

			require.NoError(t, a.Close())
			_, err = Open(cfg)
			require.ErrorIs(t, err, ErrStore)
			assert.Contains(t, err.Error(), "table audit_chain_acks")
			assert.Contains(t, err.Error(), "something else by that name is in the way")
		})
	}
}

// TestAnOversizedAcknowledgementIsRejected: a row larger than any
// Acknowledge writes is rejected by its size (readAcks asks SQLite for
// the size alone), and Verify goes on.
func TestAnOversizedAcknowledgementIsRejected(t *testing.T) {
	_, a, db := restoredDatabase(t)
	ack, err := acknowledge(t, a, "restored from backup")
	require.NoError(t, err)
	_, err = db.Exec(`INSERT INTO audit_chain_acks (id, created_at, reason, head_id, head_seq, head_mac, supersedes, digest, anchors, tag)
		VALUES (2, '', '', 0, 0, '', '', '', CAST(zeroblob(?) AS TEXT), '')`, maxAckRow)
	require.NoError(t, err)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rep := verifyNow(t, a)
	runtime.ReadMemStats(&after)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(maxAckRow/4), "the row's text is not read")
	assert.True(t, rep.Intact)
	assert.Equal(t, []Acknowledgement{ack}, rep.Acknowledgements)
	assert.Equal(t, 1, rep.RejectedAcknowledgements)
}

// TestAcknowledgeWritesNoRecordTooLargeToReadBack: a record past the
// size readAcks reads back would be rejected unread, the operator's own
// acknowledgement reported as a forgery; insertAck refuses it instead,
// and writes nothing.
func TestAcknowledgeWritesNoRecordTooLargeToReadBack(t *testing.T) {
	_, a, db := restoredDatabase(t)
	p, err := a.pending(t.Context(), -1)
	require.NoError(t, err)
	ack := p.ack
	list := strings.Repeat("0", maxAckRow)
	err = insertAck(t.Context(), p.db, newAckSigner(p.key), &ack, list)
	require.ErrorIs(t, err, errAckTooLarge)
	assert.Contains(t, err.Error(), "more than one acknowledgement holds")
	assert.Zero(t, countAcks(t, db))

	ack = p.ack
	require.NoError(t, insertAck(t.Context(), p.db, newAckSigner(p.key), &ack, p.list), "the list as it is fits")
	assert.Equal(t, 1, countAcks(t, db))
}

// TestStartingANewChainAsTheREADMESays follows the README's steps for a
// key lost for good, on a database that holds an acknowledgement: the new
// chain verifies, and nothing of the old key's is left to be rejected.
func TestStartingANewChainAsTheREADMESays(t *testing.T) {
	cfg, a, db := restoredDatabase(t)
	_, err := acknowledge(t, a, "restored from backup")
	require.NoError(t, err)
	require.NoError(t, a.Close())

	keyFile := filepath.Join(filepath.Dir(cfg.DBPath), ".audit_key")
	require.NoError(t, os.Remove(keyFile)) // lost for good
	_, err = Open(cfg)
	require.ErrorIs(t, err, ErrChainKey, "a missing key is not replaced behind the operator's back")
	require.NoError(t, os.Rename(filepath.Dir(cfg.LogPath), filepath.Dir(cfg.LogPath)+".old")) // moved aside
	_, err = db.Exec(`UPDATE audit_log SET chain_seq = NULL, chain_mac = NULL WHERE chain_seq IS NOT NULL;
		DELETE FROM audit_chain_acks`)
	require.NoError(t, err)

	a = openAuditor(t, cfg)
	recordN(t, a, 3, "under the new key")
	rep := verifyNow(t, a)
	assert.True(t, rep.Intact, "%+v", rep.Problem)
	assert.EqualValues(t, 3, rep.Checked)
	assert.EqualValues(t, 5, rep.Unchained, "the old rows, listed but no longer chained")
	assert.Zero(t, rep.RejectedAcknowledgements)
	assert.Zero(t, rep.RejectedAnchors)
}

// TestSupersedingNamesAnAcknowledgementByItsTag: an id is given again once
// the newest rows of audit_chain_acks are deleted, so a superseding
// acknowledgement names the ones it supersedes by tag too. Put back after
// its ids went to others, it supersedes none of them: here, the record of
// the chain's last row that finds the rows deleted at the end.
func TestSupersedingNamesAnAcknowledgementByItsTag(t *testing.T) {
	cfg, a, db := restoredDatabase(t)
	keepAnchorsPast(t, cfg, 5) // a quiet instance: only the lost rows' heads are left
	oldHeads, err := os.ReadFile(cfg.LogPath)
	require.NoError(t, err)
	first, err := acknowledge(t, a, "restored from backup") // id 1: the chain ended at 5
	require.NoError(t, err)
	_, err = db.Exec(`DELETE FROM audit_log WHERE chain_seq > 3`)
	require.NoError(t, err)
	second, err := acknowledge(t, a, "second restore") // id 2: supersedes 1, the chain ended at 3
	require.NoError(t, err)
	require.Equal(t, []int64{first.ID}, second.Supersedes)
	_, err = db.Exec(`CREATE TABLE kept AS SELECT * FROM audit_chain_acks WHERE id = 2`) // an attacker's copy
	require.NoError(t, err)
	recordN(t, a, 3, "after the second restore") // positions 4 to 6

	_, err = db.Exec(`DELETE FROM audit_chain_acks`)
	require.NoError(t, err)
	third, err := acknowledge(t, a, "acknowledged again") // id 1 again: the chain ends at 6
	require.NoError(t, err)
	require.Equal(t, first.ID, third.ID)
	require.EqualValues(t, 6, third.HeadSeq)
	_, err = db.Exec(`INSERT INTO audit_chain_acks SELECT * FROM kept`)
	require.NoError(t, err)
	require.True(t, verifyNow(t, a).Intact)

	// The heads of positions 4 to 6 rotate out; then rows 5 and 6 go.
	require.NoError(t, os.WriteFile(cfg.LogPath, oldHeads, 0o640))
	_, err = db.Exec(`DELETE FROM audit_log WHERE chain_seq > 4`)
	require.NoError(t, err)
	rep := verifyNow(t, a)
	require.NotNil(t, rep.Problem, "the third's record of the chain's last row is still checked")
	assert.Contains(t, rep.Problem.Detail, "acknowledgement 1 recorded the chain's last row at chain position 6")
}

// TestAForgedAcknowledgementCostsOnePass: the tag is checked over the text
// as stored, before anything parses it, so a forged row within the size
// cut costs about its size to read, not many times that.
func TestAForgedAcknowledgementCostsOnePass(t *testing.T) {
	_, a, db := restoredDatabase(t)
	const size = 4 << 20
	_, err := db.Exec(`INSERT INTO audit_chain_acks (id, created_at, reason, head_id, head_seq, head_mac, supersedes, digest, anchors, tag)
		VALUES (1, '', '', 0, 0, '', substr(replace(hex(zeroblob(?)), '00', '1:00000000000000000000000000000000,'), 1, ?), '', '', '')`, size/8, size)
	require.NoError(t, err)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rep := verifyNow(t, a)
	runtime.ReadMemStats(&after)
	assert.Equal(t, 1, rep.RejectedAcknowledgements)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(4*size), "reading a %d-byte row", size)
}

// TestAcknowledgeRecordsOnlyWhatWasShown: Verify stops at the first
// problem, so what Acknowledge records is shown first, by kind and
// position, with a digest, and recorded only while it is still that.
// Rows recorded meanwhile change nothing; a refusal does not give the new
// digest, so that a person looks again.
func TestAcknowledgeRecordsOnlyWhatWasShown(t *testing.T) {
	cfg, a, db := restoredDatabase(t)
	recordN(t, a, 5, "after the restore") // positions 6 to 10 again
	ro := cfg
	ro.ReadOnly = true
	shown, err := openAuditor(t, ro).Unacknowledged(t.Context())
	require.NoError(t, err, "a read-only Auditor shows it too")
	assert.Zero(t, shown.ID)
	assert.Equal(t, 5, shown.Anchors)
	assert.Equal(t, 5, shown.Differing, "positions 6 to 10 hold the new rows")
	assert.Equal(t, "6-10", shown.DifferingAt)
	assert.Zero(t, shown.PastEnd)
	assert.Zero(t, shown.Doubled)
	assert.Regexp(t, `^10-[0-9a-f]{16}$`, shown.Digest, "the last row shown, and the hash")

	recordN(t, a, 2, "while the operator reads") // positions 11 and 12
	again, err := a.Unacknowledged(t.Context())
	require.NoError(t, err)
	assert.NotEqual(t, shown.Digest, again.Digest, "shown afresh, the last row is another")

	// Rows deleted after it was shown: the heads of the new rows 9 to 12
	// would be acknowledged too, with the lost ones at the same positions.
	_, err = db.Exec(`DELETE FROM audit_log WHERE chain_seq > 8`)
	require.NoError(t, err)
	_, refused := a.Acknowledge(t.Context(), "restored from backup", shown.Digest)
	require.ErrorIs(t, refused, ErrAcknowledge)
	assert.Contains(t, refused.Error(), "changed since it was shown; now: 9 chain heads, at positions holding other rows 6-8, "+
		"past the chain's last row (position 8) 9-12, positions named by heads of more than one history 9-10, "+
		"and the chain's last row as it was shown is gone or changed")
	now, err := a.Unacknowledged(t.Context())
	require.NoError(t, err)
	assert.NotContains(t, refused.Error(), strings.SplitN(now.Digest, "-", 2)[1], "the new digest is not given")
	assert.Zero(t, countAcks(t, db))

	assert.Equal(t, 9, now.Anchors)
	assert.Equal(t, "6-8", now.DifferingAt)
	assert.Equal(t, "9-12", now.PastEndAt)
	assert.Equal(t, 2, now.Doubled)
	assert.Equal(t, "9-10", now.DoubledAt, "positions 9 and 10 were written twice, and both are gone")
	ack, err := a.Acknowledge(t.Context(), "restored, then rows 9 to 12 deleted", now.Digest)
	require.NoError(t, err)
	assert.Equal(t, now.Digest, ack.Digest)
	rep := verifyNow(t, a)
	require.True(t, rep.Intact)
	assert.Equal(t, now.Digest, rep.Acknowledgements[0].Digest, "the digest reads back")
	assert.Equal(t, "9-10", rep.Acknowledgements[0].DoubledAt)
}

// TestRowsRecordedWhileShownChangeNothing: TREK goes on recording while a
// person reads what there is to acknowledge; that is no reason to refuse,
// and the acknowledgement records the chain's last row as it is when
// written.
func TestRowsRecordedWhileShownChangeNothing(t *testing.T) {
	_, a, _ := restoredDatabase(t)
	shown, err := a.Unacknowledged(t.Context())
	require.NoError(t, err)
	recordN(t, a, 3, "while the operator reads")
	ack, err := a.Acknowledge(t.Context(), "restored from backup", shown.Digest)
	require.NoError(t, err)
	assert.EqualValues(t, 8, ack.HeadSeq, "the last row when written")
	assert.Equal(t, shown.Digest, ack.Digest)
	assert.True(t, verifyNow(t, a).Intact)
}

// TestTheDigestNamesEverythingRecorded: the digest changes with the row
// shown, the heads and the acknowledgements superseded, each alone.
func TestTheDigestNamesEverythingRecorded(t *testing.T) {
	row := anchor{seq: 5, id: 5, mac: [32]byte{1}}
	const supersedes, heads = "1:" + "0123456789abcdef0123456789abcdef", "6 6 00112233445566778899aabbccddeeff\n"
	base := ackDigest(row, supersedes, heads)
	assert.Regexp(t, `^5-[0-9a-f]{16}$`, base)
	other := row
	other.mac[0] = 2
	for name, d := range map[string]string{
		"another row shown":   ackDigest(other, supersedes, heads),
		"another id":          ackDigest(anchor{seq: 5, id: 6, mac: row.mac}, supersedes, heads),
		"no supersedes":       ackDigest(row, "", heads),
		"another head":        ackDigest(row, supersedes, "7 7 00112233445566778899aabbccddeeff\n"),
		"fields run into one": ackDigest(row, supersedes+"6", heads[1:]),
	} {
		assert.NotEqual(t, base, d, name)
	}
}

// TestAHugeIDLeavesIDsToTake: a row written by hand with the largest id
// does not leave Acknowledge without one.
func TestAHugeIDLeavesIDsToTake(t *testing.T) {
	_, a, db := restoredDatabase(t)
	_, err := db.Exec(`INSERT INTO audit_chain_acks VALUES (9223372036854775807, '', '', 0, 0, '', '', '', '', '')`)
	require.NoError(t, err)
	ack, err := acknowledge(t, a, "restored from backup")
	require.NoError(t, err)
	assert.EqualValues(t, 1, ack.ID)
	rep := verifyNow(t, a)
	assert.True(t, rep.Intact)
	assert.Equal(t, 1, rep.RejectedAcknowledgements)
}

// TestDoubledPositionsCountEarlierAcknowledgements: a position whose lost
// head an earlier acknowledgement lists, and whose new row is gone too,
// is named by heads of two histories; so it is shown, and so Verify reads
// it back.
func TestDoubledPositionsCountEarlierAcknowledgements(t *testing.T) {
	_, a, db := restoredDatabase(t)
	recordN(t, a, 5, "after the restore") // positions 6 to 10 again
	first, err := acknowledge(t, a, "restored from backup")
	require.NoError(t, err)
	require.Equal(t, "6-10", first.DifferingAt)
	require.Zero(t, first.Doubled)

	_, err = db.Exec(`DELETE FROM audit_log WHERE chain_seq > 8`)
	require.NoError(t, err)
	shown, err := a.Unacknowledged(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "9-10", shown.PastEndAt)
	assert.Equal(t, "9-10", shown.DoubledAt, "the first lists the lost heads there")
	_, err = a.Acknowledge(t.Context(), "rows 9 and 10 deleted", shown.Digest)
	require.NoError(t, err)
	rep := verifyNow(t, a)
	require.True(t, rep.Intact)
	require.Len(t, rep.Acknowledgements, 2)
	assert.Empty(t, rep.Acknowledgements[0].DoubledAt)
	assert.Equal(t, "9-10", rep.Acknowledgements[1].DoubledAt, "read back as shown")
}

// TestIDsFollowTheOrderAcknowledgementsAreMadeIn: Verify counts positions
// of more than one history with the heads of the acknowledgements before
// each, by id; an id freed by a deleted row is not given to a later one,
// which would then be read back before those made before it.
func TestIDsFollowTheOrderAcknowledgementsAreMadeIn(t *testing.T) {
	_, a, db := restoredDatabase(t)
	recordN(t, a, 5, "after the restore")
	first, err := acknowledge(t, a, "restored from backup")
	require.NoError(t, err)
	_, err = db.Exec(`DELETE FROM audit_log WHERE chain_seq > 8`)
	require.NoError(t, err)
	second, err := acknowledge(t, a, "rows 9 and 10 deleted")
	require.NoError(t, err)
	require.Equal(t, "9-10", second.DoubledAt)

	_, err = db.Exec(`DELETE FROM audit_chain_acks WHERE id = ?`, first.ID)
	require.NoError(t, err)
	third, err := acknowledge(t, a, "acknowledged again")
	require.NoError(t, err)
	assert.Greater(t, third.ID, second.ID)
	assert.Equal(t, "9-10", third.DoubledAt)
	rep := verifyNow(t, a)
	require.True(t, rep.Intact)
	require.Len(t, rep.Acknowledgements, 2)
	assert.Equal(t, "9-10", rep.Acknowledgements[1].DoubledAt, "read back as shown")
}
