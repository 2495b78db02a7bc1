package audit

import (
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pruneDay0 is the day the first event of a pruning test is recorded.
var pruneDay0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// pruneDay is the time of the event recorded on day i (1, 2, ...).
func pruneDay(i int) time.Time { return pruneDay0.AddDate(0, 0, i-1) }

// recordDays opens cfg with a clock set to the days first to last in
// turn, records one event on each, and leaves the clock on the day after
// last. Each event is its own batch, so trek.log holds a chain head of
// every row.
func recordDays(t *testing.T, a *Auditor, first, last int) {
	t.Helper()
	for i := first; i <= last; i++ {
		a.now = func() time.Time { return pruneDay(i) }
		require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin, Resource: fmt.Sprintf("day %d", i)}))
	}
	a.now = func() time.Time { return pruneDay(last + 1) }
}

// prunedAuditor records ten events, a day apart, and prunes those of the
// first five days. It returns the config, the Auditor, a handle of the
// test's own on the database and the pruning.
func prunedAuditor(t *testing.T) (Config, *Auditor, *sql.DB, Pruning) {
	t.Helper()
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	recordDays(t, a, 1, 10)
	p, err := a.Prune(t.Context(), pruneDay(6), "alice: entries are kept for five days")
	require.NoError(t, err)
	return cfg, a, openPlainDB(t, cfg.DBPath), p
}

func countPrunings(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM audit_prunes`).Scan(&n))
	return n
}

// rowIDs are the ids audit_log holds, in order.
func rowIDs(t *testing.T, db *sql.DB) []int64 {
	t.Helper()
	return queryIDs(t, db, `SELECT id FROM audit_log ORDER BY id`)
}

// TestPruneDeletesTheOldestRowsAndVerifyStartsAfterThem: the rows of
// the first five days go, the record says where the chain starts, and
// Verify finds it intact from there, with the heads of the deleted rows
// in trek.log passed over, after a restart and with new rows too.
func TestPruneDeletesTheOldestRowsAndVerifyStartsAfterThem(t *testing.T) {
	cfg, a, db, p := prunedAuditor(t)

	assert.Equal(t, int64(1), p.ID)
	assert.Equal(t, int64(5), p.Rows)
	assert.Equal(t, "alice: entries are kept for five days", p.Reason)
	assert.Equal(t, "2025-03-06T12:00:00Z", p.Before)
	assert.Equal(t, "2025-03-01 12:00:00", p.Oldest)
	assert.Equal(t, "2025-03-05 12:00:00", p.Newest)
	assert.Equal(t, int64(6), p.FirstID)
	assert.Equal(t, int64(6), p.FirstSeq)
	assert.Equal(t, "2025-03-11T12:00:00Z", p.CreatedAt, "stamped by the Auditor's clock")
	assert.Equal(t, []int64{6, 7, 8, 9, 10}, rowIDs(t, db))
	assert.Equal(t, int64(5), countRows(t, db))
	page, err := a.List(t.Context(), Query{})
	require.NoError(t, err)
	assert.Equal(t, int64(5), page.Total, "the admin list's total, from the counts the triggers keep")
	perAction, err := a.List(t.Context(), Query{Action: string(UserLogin)})
	require.NoError(t, err)
	assert.Equal(t, int64(5), perAction.Total, "and per action")

	check := func(a *Auditor, checked int64) {
		t.Helper()
		rep := verifyNow(t, a)
		require.Nil(t, rep.Problem)
		assert.True(t, rep.Intact)
		assert.Equal(t, checked, rep.Checked)
		assert.Equal(t, int64(6), rep.StartSeq)
		assert.Equal(t, 5, rep.PrunedAnchors, "the heads of rows 1 to 5")
		assert.Equal(t, int(checked)+5, rep.Anchors)
		assert.Equal(t, []Pruning{p}, rep.Prunings)
		assert.Zero(t, rep.RejectedPrunings)
	}
	check(a, 5)
	recordDays(t, a, 11, 12)
	check(a, 7)

	require.NoError(t, a.Close())
	a = openAuditor(t, cfg)
	check(a, 7)
	ro := cfg
	ro.ReadOnly = true
	check(openAuditor(t, ro), 7)
}

// TestRowsDeletedByHandStayReported is why Prune exists: the same rows
// deleted with SQL leave a report no one can settle.
func TestRowsDeletedByHandStayReported(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	recordDays(t, a, 1, 10)
	_, err := openPlainDB(t, cfg.DBPath).Exec(`DELETE FROM audit_log WHERE id <= 5`)
	require.NoError(t, err)

	rep := verifyNow(t, a)
	require.NotNil(t, rep.Problem)
	assert.Equal(t, TamperMissing, rep.Problem.Kind)
	assert.Equal(t, "chain positions 1 to 5 are gone", rep.Problem.Detail)
	_, err = a.Unacknowledged(t.Context())
	assert.ErrorIs(t, err, ErrAcknowledge, "acknowledging does not settle it either")
	_, err = a.Prune(t.Context(), pruneDay(8), "bob: tidying up after the deletion")
	assert.ErrorIs(t, err, ErrPrune, "nor does pruning what is left")
	assert.Equal(t, []int64{6, 7, 8, 9, 10}, rowIDs(t, openPlainDB(t, cfg.DBPath)), "which deletes nothing")
}

// TestTamperingAfterAPruningIsReported: the record accounts for the rows
// it names and nothing else. Every change below is reported, at the row
// or position it concerns.
func TestTamperingAfterAPruningIsReported(t *testing.T) {
	otherKey := newPruneSigner([]byte("another key, 32 bytes long......"))
	cases := []struct {
		name     string
		tamper   func(t *testing.T, a *Auditor, db *sql.DB)
		kind     TamperKind
		id, seq  int64
		detail   string
		rejected int
	}{
		{"the first row kept deleted", func(t *testing.T, a *Auditor, db *sql.DB) {
			execSQL(t, db, `DELETE FROM audit_log WHERE id = 6`)
		}, TamperMissing, 7, 6, "chain positions 6 to 6 are gone (the rows before position 6 were deleted by pruning 1, which left row 6 first)", 0},
		{"the first three rows kept deleted", func(t *testing.T, a *Auditor, db *sql.DB) {
			execSQL(t, db, `DELETE FROM audit_log WHERE id <= 8`)
		}, TamperMissing, 9, 6, "chain positions 6 to 8 are gone", 0},
		{"the record deleted", func(t *testing.T, a *Auditor, db *sql.DB) {
			execSQL(t, db, `DELETE FROM audit_prunes`)
		}, TamperMissing, 6, 1, "chain positions 1 to 5 are gone", 0},
		{"the record's reason changed", func(t *testing.T, a *Auditor, db *sql.DB) {
			execSQL(t, db, `UPDATE audit_prunes SET reason = 'routine'`)
		}, TamperMissing, 6, 1, "chain positions 1 to 5 are gone", 1},
		{"the record moved to a later position", func(t *testing.T, a *Auditor, db *sql.DB) {
			execSQL(t, db, `UPDATE audit_prunes SET first_seq = 8, first_id = 8`)
			execSQL(t, db, `DELETE FROM audit_log WHERE id < 8`)
		}, TamperMissing, 8, 1, "chain positions 1 to 7 are gone", 1},
		{"the record's chain value replaced by the next row's", func(t *testing.T, a *Auditor, db *sql.DB) {
			execSQL(t, db, `UPDATE audit_prunes SET prev_mac = (SELECT chain_mac FROM audit_log WHERE id = 6), first_seq = 7, first_id = 7`)
			execSQL(t, db, `DELETE FROM audit_log WHERE id = 6`)
		}, TamperMissing, 7, 1, "chain positions 1 to 6 are gone", 1},
		{"the record given another id", func(t *testing.T, a *Auditor, db *sql.DB) {
			execSQL(t, db, `UPDATE audit_prunes SET id = 2`)
		}, TamperMissing, 6, 1, "chain positions 1 to 5 are gone", 1},
		{"the record's number spelled another way", func(t *testing.T, a *Auditor, db *sql.DB) {
			execSQL(t, db, `UPDATE audit_prunes SET first_seq = CAST('06' AS BLOB)`)
		}, TamperMissing, 6, 1, "chain positions 1 to 5 are gone", 1},
		{"a record made under another key", func(t *testing.T, a *Auditor, db *sql.DB) {
			execSQL(t, db, `DELETE FROM audit_prunes`)
			forged := Pruning{ID: 1, CreatedAt: "2025-03-11T12:00:00Z", Reason: "x", Before: "2025-03-06T12:00:00Z", Rows: 5,
				Oldest: "2025-03-01 12:00:00", Newest: "2025-03-05 12:00:00", FirstID: 6, FirstSeq: 6}
			var prev string
			require.NoError(t, db.QueryRow(`SELECT chain_mac FROM audit_log WHERE id = 6`).Scan(&prev))
			forged.prevMac = prev
			f := pruneFieldsOf(&forged)
			execSQL(t, db, `INSERT INTO audit_prunes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, f.id, f.createdAt, f.reason, f.before,
				f.rows, f.oldest, f.newest, f.firstID, f.firstSeq, f.prevMac, hex.EncodeToString(otherKey.tag(&f)))
		}, TamperMissing, 6, 1, "chain positions 1 to 5 are gone", 1},
		{"the first row kept changed", func(t *testing.T, a *Auditor, db *sql.DB) {
			execSQL(t, db, `UPDATE audit_log SET resource = 'day 99' WHERE id = 6`)
		}, TamperChanged, 6, 6, "the row's fields or chain value were altered (the rows before position 6 were deleted by pruning 1", 0},
		{"a row in the middle deleted", func(t *testing.T, a *Auditor, db *sql.DB) {
			execSQL(t, db, `DELETE FROM audit_log WHERE id = 8`)
		}, TamperMissing, 9, 8, "chain positions 8 to 8 are gone", 0},
		{"the newest rows deleted", func(t *testing.T, a *Auditor, db *sql.DB) {
			execSQL(t, db, `DELETE FROM audit_log WHERE id >= 9`)
		}, TamperMissing, 0, 9, "trek.log recorded chain position 10 (row 10), the table ends at 8", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, a, db, _ := prunedAuditor(t)
			tc.tamper(t, a, db)
			rep := verifyNow(t, a)
			require.NotNil(t, rep.Problem, "not reported")
			assert.False(t, rep.Intact)
			assert.Equal(t, tc.kind, rep.Problem.Kind)
			assert.Equal(t, tc.id, rep.Problem.ID)
			assert.Equal(t, tc.seq, rep.Problem.Seq)
			assert.Contains(t, rep.Problem.Detail, tc.detail)
			assert.Equal(t, tc.rejected, rep.RejectedPrunings)
		})
	}
}

func execSQL(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	_, err := db.Exec(q, args...)
	require.NoError(t, err)
}

// TestPruneRefuses: where Prune refuses, it deletes and writes nothing,
// and says why.
func TestPruneRefuses(t *testing.T) {
	cases := []struct {
		name    string
		prepare func(t *testing.T, cfg Config, a *Auditor, db *sql.DB) *Auditor
		before  time.Time
		reason  string
		wantIs  error
		wantMsg string
	}{
		{"a row changed", func(t *testing.T, cfg Config, a *Auditor, db *sql.DB) *Auditor {
			execSQL(t, db, `UPDATE audit_log SET resource = 'day 99' WHERE id = 2`)
			return a
		}, pruneDay(6), "alice", ErrPrune, "the chain does not verify, and deleting rows could take the evidence with them: changed at row 2"},
		{"the newest rows deleted", func(t *testing.T, cfg Config, a *Auditor, db *sql.DB) *Auditor {
			execSQL(t, db, `DELETE FROM audit_log WHERE id = 10`)
			return a
		}, pruneDay(6), "alice", ErrPrune, "the newest rows were deleted"},
		{"no reason", nil, pruneDay(6), " ", ErrPrune, "a reason is required"},
		{"a reason of two lines", nil, pruneDay(6), "alice\n[INFO] forged", ErrPrune, "control character"},
		{"no time", nil, time.Time{}, "alice", ErrPrune, "no time given"},
		{"a time in the future", nil, pruneDay(12), "alice", ErrPrune, "2025-03-12T12:00:00Z is in the future"},
		{"a time before the year 1", nil, time.Date(0, 6, 1, 0, 0, 0, 0, time.UTC), "alice", ErrPrune, "before the year 1"},
		{"read-only", func(t *testing.T, cfg Config, a *Auditor, db *sql.DB) *Auditor {
			cfg.ReadOnly = true
			return openAuditor(t, cfg)
		}, pruneDay(6), "alice", ErrReadOnly, "cannot prune"},
		{"closed", func(t *testing.T, cfg Config, a *Auditor, db *sql.DB) *Auditor {
			require.NoError(t, a.Close())
			return a
		}, pruneDay(6), "alice", ErrClosed, "Prune"},
		{"audit_prunes made a view", func(t *testing.T, cfg Config, a *Auditor, db *sql.DB) *Auditor {
			execSQL(t, db, `ALTER TABLE audit_prunes RENAME TO p`)
			execSQL(t, db, `CREATE VIEW audit_prunes AS SELECT * FROM p`)
			return a
		}, pruneDay(6), "alice", ErrVerify, "audit_prunes is not the library's table (a view)"},
		{"a row that will not go", func(t *testing.T, cfg Config, a *Auditor, db *sql.DB) *Auditor {
			// The deletion fails part way: nothing is deleted, and no
			// record written.
			execSQL(t, db, `CREATE TRIGGER keep_3 BEFORE DELETE ON audit_log WHEN OLD.id = 3 BEGIN SELECT RAISE(ABORT, 'row 3 stays'); END`)
			return a
		}, pruneDay(6), "alice", ErrStore, "row 3 stays"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			a := openAuditor(t, cfg)
			recordDays(t, a, 1, 10)
			db := openPlainDB(t, cfg.DBPath)
			if tc.prepare != nil {
				a = tc.prepare(t, cfg, a, db)
			}
			a.now = func() time.Time { return pruneDay(11) }
			rows := rowIDs(t, db)
			p, err := a.Prune(t.Context(), tc.before, tc.reason)
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.wantIs)
			assert.Contains(t, err.Error(), tc.wantMsg)
			assert.Zero(t, p)
			assert.Equal(t, rows, rowIDs(t, db), "rows deleted")
			var n int
			if db.QueryRow(`SELECT COUNT(*) FROM audit_prunes`).Scan(&n) == nil {
				assert.Zero(t, n, "a record written")
			}
		})
	}
}

// TestPruneKeepsTheNewestTwoChainedRows: Open checks the key against a
// row and the one before it, so two stay whatever the time given; after
// a restart with trek.log gone, the key is still confirmed by them.
func TestPruneKeepsTheNewestTwoChainedRows(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	recordDays(t, a, 1, 10)
	p, err := a.Prune(t.Context(), pruneDay(11), "alice: everything")
	require.NoError(t, err)
	assert.Equal(t, int64(8), p.Rows)
	assert.Equal(t, int64(9), p.FirstSeq)

	db := openPlainDB(t, cfg.DBPath)
	assert.Equal(t, []int64{9, 10}, rowIDs(t, db))
	again, err := a.Prune(t.Context(), pruneDay(11), "alice: everything, again")
	require.NoError(t, err)
	assert.Zero(t, again, "nothing more to delete")
	assert.Equal(t, 1, countPrunings(t, db), "and nothing written")

	require.NoError(t, a.Close())
	require.NoError(t, os.RemoveAll(filepath.Dir(cfg.LogPath)))
	a = openAuditor(t, cfg)
	rep := verifyNow(t, a)
	assert.True(t, rep.Intact)
	assert.Equal(t, int64(2), rep.Checked)
	assert.Equal(t, int64(9), rep.StartSeq)
}

// TestPruneWithTREKsOwnRows: rows TREK's code inserted without a chain
// value go with the others when they are older, and stay when newer; the
// chain starts at its first chained row kept.
func TestPruneWithTREKsOwnRows(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	db := openPlainDB(t, cfg.DBPath)
	insertTrekRow(t, db, nil, "user.login", nil, nil, nil) // row 1, stamped now: after every day below
	execSQL(t, db, `UPDATE audit_log SET created_at = '2025-02-01 00:00:00' WHERE id = 1`)
	recordDays(t, a, 1, 3) // rows 2 to 4
	insertTrekRow(t, db, nil, "user.login", nil, nil, nil)
	execSQL(t, db, `UPDATE audit_log SET created_at = '2025-03-03 18:00:00' WHERE id = 5`)
	recordDays(t, a, 4, 6) // rows 6 to 8

	p, err := a.Prune(t.Context(), pruneDay(3), "alice")
	require.NoError(t, err)
	assert.Equal(t, int64(3), p.Rows, "TREK's row 1, and rows 2 and 3")
	assert.Equal(t, int64(4), p.FirstID)
	assert.Equal(t, int64(3), p.FirstSeq)
	assert.Equal(t, "2025-02-01 00:00:00", p.Oldest)
	assert.Equal(t, []int64{4, 5, 6, 7, 8}, rowIDs(t, db))
	rep := verifyNow(t, a)
	assert.True(t, rep.Intact)
	assert.Equal(t, int64(1), rep.Unchained)
	assert.Equal(t, int64(3), rep.StartSeq)
}

// TestPruningTREKsRowsAloneAfterAPruning: a pruning can leave one of
// TREK's own rows before the chain's first row. The next one then deletes
// no chained row, and the first row kept follows the chain value the
// record before it kept, which it keeps in its own record in turn.
func TestPruningTREKsRowsAloneAfterAPruning(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	db := openPlainDB(t, cfg.DBPath)
	recordDays(t, a, 1, 3) // rows 1 to 3
	insertTrekRow(t, db, nil, "user.login", nil, nil, nil)
	execSQL(t, db, `UPDATE audit_log SET created_at = '2025-03-03 18:00:00' WHERE id = 4`)
	recordDays(t, a, 4, 6) // rows 5 to 7

	first, err := a.Prune(t.Context(), time.Date(2025, 3, 3, 15, 0, 0, 0, time.UTC), "alice: three days")
	require.NoError(t, err)
	assert.Equal(t, int64(3), first.Rows)
	assert.Equal(t, []int64{4, 5, 6, 7}, rowIDs(t, db), "TREK's row 4 is recorded after the time given")

	second, err := a.Prune(t.Context(), pruneDay(4), "alice: and TREK's row")
	require.NoError(t, err)
	assert.Equal(t, int64(1), second.Rows)
	assert.Equal(t, "2025-03-03 18:00:00", second.Oldest)
	assert.Equal(t, []int64{5, 6, 7}, rowIDs(t, db))
	assert.Equal(t, first.FirstID, second.FirstID)
	assert.Equal(t, first.FirstSeq, second.FirstSeq)
	assert.Equal(t, first.prevMac, second.prevMac, "the chain value the first record kept")

	rep := verifyNow(t, a)
	assert.True(t, rep.Intact, "%+v", rep.Problem)
	assert.Equal(t, int64(4), rep.StartSeq)
	assert.Equal(t, []Pruning{first, second}, rep.Prunings)
	execSQL(t, db, `DELETE FROM audit_prunes WHERE id = 1`)
	assert.True(t, verifyNow(t, a).Intact, "either record accounts for the rows the first deleted")
}

// TestARecordOfRowsWithLongTimesReadsBack: a row written by hand can
// hold a created_at of any length. Kept whole as the oldest or newest
// row's time, it would make the record too large for Verify to read;
// the record keeps its first 64 characters.
func TestARecordOfRowsWithLongTimesReadsBack(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	db := openPlainDB(t, cfg.DBPath)
	insertTrekRow(t, db, nil, "user.login", nil, nil, nil)
	long := "2025-01-01 00:00:00" + strings.Repeat("é", 5000)
	execSQL(t, db, `UPDATE audit_log SET created_at = ? WHERE id = 1`, long)
	recordDays(t, a, 1, 4)

	p, err := a.Prune(t.Context(), pruneDay(3), "alice")
	require.NoError(t, err)
	assert.Equal(t, int64(3), p.Rows)
	assert.Equal(t, string([]rune(long)[:maxPruneTime]), p.Oldest)
	rep := verifyNow(t, a)
	assert.True(t, rep.Intact, "%+v", rep.Problem)
	assert.Zero(t, rep.RejectedPrunings)
	assert.Equal(t, []Pruning{p}, rep.Prunings)
}

// TestPrunePlanShowsWhatPruneDeletes, and writes nothing, read-only too.
func TestPrunePlanShowsWhatPruneDeletes(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	recordDays(t, a, 1, 10)
	db := openPlainDB(t, cfg.DBPath)
	ro := cfg
	ro.ReadOnly = true
	r := openAuditor(t, ro)
	r.now = a.now

	plan, err := r.PrunePlan(t.Context(), pruneDay(4).Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 10, len(rowIDs(t, db)))
	assert.Zero(t, countPrunings(t, db))
	assert.Zero(t, plan.ID)
	assert.Empty(t, plan.Reason)

	p, err := a.Prune(t.Context(), pruneDay(4).Add(time.Hour), "alice")
	require.NoError(t, err)
	plan.ID, plan.Reason, plan.CreatedAt = p.ID, p.Reason, p.CreatedAt
	assert.Equal(t, p.Rows, int64(4))
	assert.Equal(t, pruneFieldsOf(&p), pruneFieldsOf(&plan))

	_, err = r.PrunePlan(t.Context(), pruneDay(12))
	assert.ErrorIs(t, err, ErrPrune)
}

// TestPruningsOneAfterAnother: each pruning starts the chain further on;
// the walk starts from the one that accounts for the table's first row,
// and the heads of every row deleted are passed over.
func TestPruningsOneAfterAnother(t *testing.T) {
	_, a, db, first := prunedAuditor(t)
	recordDays(t, a, 11, 12)
	second, err := a.Prune(t.Context(), pruneDay(9), "alice: and three more")
	require.NoError(t, err)
	assert.Equal(t, int64(2), second.ID)
	assert.Equal(t, int64(3), second.Rows)
	assert.Equal(t, int64(9), second.FirstSeq)
	assert.Equal(t, []int64{9, 10, 11, 12}, rowIDs(t, db))

	rep := verifyNow(t, a)
	assert.True(t, rep.Intact)
	assert.Equal(t, int64(9), rep.StartSeq)
	assert.Equal(t, 8, rep.PrunedAnchors)
	assert.Equal(t, []Pruning{first, second}, rep.Prunings)

	// With the second record gone, the first accounts for positions 1 to
	// 5 only: 6 to 8 are reported gone.
	execSQL(t, db, `DELETE FROM audit_prunes WHERE id = 2`)
	rep = verifyNow(t, a)
	require.NotNil(t, rep.Problem)
	assert.Equal(t, "chain positions 6 to 8 are gone (the rows before position 6 were deleted by pruning 1, which left row 6 first)", rep.Problem.Detail)
}

// TestRowsBroughtBackAfterAPruning: audit_log alone restored from a
// backup made before the pruning holds the rows it deleted again; they
// verify as before, and the heads of them in trek.log match again.
func TestRowsBroughtBackAfterAPruning(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	recordDays(t, a, 1, 10)
	db := openPlainDB(t, cfg.DBPath)
	execSQL(t, db, `CREATE TABLE backup AS SELECT * FROM audit_log`)
	_, err := a.Prune(t.Context(), pruneDay(6), "alice")
	require.NoError(t, err)
	execSQL(t, db, `DELETE FROM audit_log`)
	execSQL(t, db, `INSERT INTO audit_log SELECT * FROM backup`)

	rep := verifyNow(t, a)
	assert.True(t, rep.Intact)
	assert.Equal(t, int64(10), rep.Checked)
	assert.Equal(t, int64(1), rep.StartSeq)
	assert.Zero(t, rep.PrunedAnchors)
	assert.Len(t, rep.Prunings, 1, "the record is still shown")
}

// TestPruneOnAnAcknowledgedRestore: after a restore is acknowledged, the
// chain is intact and can be pruned; the acknowledged heads of positions
// before the new start are passed over either way.
func TestPruneOnAnAcknowledgedRestore(t *testing.T) {
	_, a, db := restoredDatabase(t)
	_, err := a.Prune(t.Context(), time.Now(), "alice")
	assert.ErrorIs(t, err, ErrPrune, "a restore not yet acknowledged")
	recordN(t, a, 3, "after the restore") // rows 6 to 8, at positions 6 to 8, over the lost rows' heads
	_, err = acknowledge(t, a, "alice: restored the backup of Monday")
	require.NoError(t, err)
	require.True(t, verifyNow(t, a).Intact)

	// Every row was recorded this second: let the clock move on.
	a.now = func() time.Time { return time.Now().Add(time.Hour) }
	p, err := a.Prune(t.Context(), time.Now().Add(time.Minute), "alice: all but the newest")
	require.NoError(t, err)
	assert.Equal(t, int64(6), p.Rows)
	assert.Equal(t, int64(7), p.FirstSeq)
	rep := verifyNow(t, a)
	assert.True(t, rep.Intact)
	assert.Equal(t, 6, rep.PrunedAnchors, "the heads of positions 1 to 6 not acknowledged")
	assert.Equal(t, []int64{7, 8}, rowIDs(t, db))
}

// TestPrunedRecordsNeedTheirTable: a read-only open of a database whose
// audit_prunes is gone, or is not the library's table, is refused, as it
// is for audit_chain_acks.
func TestPrunedRecordsNeedTheirTable(t *testing.T) {
	for _, tc := range []struct {
		name, sql, want string
	}{
		{"dropped", `DROP TABLE audit_prunes`, "table audit_prunes is missing"},
		{"a column added", `ALTER TABLE audit_prunes ADD COLUMN note TEXT`, "table audit_prunes as the library makes it (found: columns"},
		{"a trigger on it", `CREATE TRIGGER hide AFTER INSERT ON audit_prunes BEGIN DELETE FROM audit_prunes; END`, "found: triggers hide"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			a := openAuditor(t, cfg)
			recordN(t, a, 2, "x")
			require.NoError(t, a.Close())
			execSQL(t, openPlainDB(t, cfg.DBPath), tc.sql)
			cfg.ReadOnly = true
			_, err := Open(cfg)
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrStore))
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestPlanPruneChecksTheRowsItDeletesAgain: Prune walks the chain in one
// transaction and deletes in another. A row changed between the two could
// make it delete rows it must keep (rows recorded after before, given an
// older created_at) or leave a record whose chain value the first row
// kept does not follow. So the second transaction, under the write lock,
// walks the chained rows it deletes again, and checks that the first row
// kept follows them; any change refuses.
func TestPlanPruneChecksTheRowsItDeletesAgain(t *testing.T) {
	backdated := pruneDay(2).Format(sqliteTimeLayout)
	cases := []struct {
		name, change, want string
	}{
		{"nothing changed", ``, ""},
		{"rows recorded after before given an older created_at", `UPDATE audit_log SET created_at = '` + backdated + `' WHERE id IN (6, 7, 8)`,
			"row 6 (chain position 6) no longer verifies after the row before it"},
		{"a row it deletes changed", `UPDATE audit_log SET resource = 'day 99' WHERE id = 3`,
			"row 3 (chain position 3) no longer verifies after the row before it"},
		{"a row it deletes gone", `DELETE FROM audit_log WHERE id = 3`,
			"row 4 (chain position 4) no longer verifies after the row before it"},
		{"the last row deleted given another chain value", `UPDATE audit_log SET chain_mac = (SELECT chain_mac FROM audit_log WHERE id = 4) WHERE id = 5`,
			"row 5 (chain position 5) no longer verifies after the row before it"},
		{"the first row kept changed", `UPDATE audit_log SET resource = 'day 99' WHERE id = 6`,
			"row 6 (chain position 6) no longer follows the rows it would delete"},
		{"the last row deleted gone", `DELETE FROM audit_log WHERE id = 5`,
			"row 6 (chain position 6) no longer follows the rows it would delete"},
		{"the last row deleted moved past the first kept", `UPDATE audit_log SET id = 100 WHERE id = 5`,
			"row 6 (chain position 6) no longer follows the rows it would delete"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			a := openAuditor(t, cfg)
			recordDays(t, a, 1, 10)
			if tc.change != "" {
				execSQL(t, openPlainDB(t, cfg.DBPath), tc.change)
			}
			conn, err := a.store.(*sqliteStore).db.Conn(t.Context())
			require.NoError(t, err)
			defer conn.Close()
			p, cut, err := planPrune(t.Context(), conn, a.store.(*sqliteStore).chain.key, pruneDay(6))
			if tc.want == "" {
				require.NoError(t, err)
				assert.Equal(t, int64(6), cut)
				assert.Equal(t, int64(5), p.Rows)
				return
			}
			require.ErrorIs(t, err, ErrPrune)
			assert.Contains(t, err.Error(), "the chain changed since it was checked: "+tc.want)
		})
	}
}

// TestPrunedChainUnderAnotherKey: under a key other than the rows', the
// record of the pruning is rejected like everything else the key did not
// make, and Verify names the key, as it does for a chain from position 1,
// rather than report the positions before the record's start gone. With
// the right key, the same positions gone (the record deleted) are
// reported as such.
func TestPrunedChainUnderAnotherKey(t *testing.T) {
	cfg, a, db, _ := prunedAuditor(t)
	require.NoError(t, a.Close())
	require.NoError(t, os.RemoveAll(filepath.Dir(cfg.LogPath))) // no head the right key made is left to say otherwise
	ro := cfg
	ro.ReadOnly, ro.ChainKey = true, []byte("another key, 32 bytes long......")
	rep := verifyNow(t, openAuditor(t, ro))
	require.NotNil(t, rep.Problem)
	assert.True(t, rep.Problem.KeyMismatch, rep.Problem.Detail)
	assert.Contains(t, rep.Problem.Detail, "the chain starts at position 6, and neither the 1 records of prunings nor any pair of chained rows from row 6 verifies under the key")
	assert.Equal(t, 1, rep.RejectedPrunings)

	ro.ChainKey = nil
	execSQL(t, db, `UPDATE audit_prunes SET reason = 'routine'`)
	rep = verifyNow(t, openAuditor(t, ro))
	require.NotNil(t, rep.Problem)
	assert.False(t, rep.Problem.KeyMismatch, "the rows verify under the key: the record was changed")
	assert.Equal(t, "chain positions 1 to 5 are gone", rep.Problem.Detail)
	assert.Equal(t, 1, rep.RejectedPrunings)

	execSQL(t, db, `DELETE FROM audit_prunes`)
	rep = verifyNow(t, openAuditor(t, ro))
	require.NotNil(t, rep.Problem)
	assert.False(t, rep.Problem.KeyMismatch)
	assert.Equal(t, "chain positions 1 to 5 are gone", rep.Problem.Detail)
}

// TestAPruningProvesTheKey: rows made up at the chain's first positions,
// more than the pairs Verify tries, fail as a wrong key's would; but a
// record of a pruning verifies only under the rows' own key, so they are
// reported as tampering, not as a wrong key.
func TestAPruningProvesTheKey(t *testing.T) {
	cfg, a, db, _ := prunedAuditor(t)
	require.NoError(t, a.Close())
	require.NoError(t, os.RemoveAll(filepath.Dir(cfg.LogPath)))
	for i := range keyPairsLooked + 6 {
		execSQL(t, db, `INSERT INTO audit_log (id, created_at, action, chain_seq, chain_mac) VALUES (?, '2025-01-01 00:00:00', 'user.login', ?, ?)`,
			-1000+i, i+1, strings.Repeat("ab", 32))
	}
	ro := cfg
	ro.ReadOnly = true
	rep := verifyNow(t, openAuditor(t, ro))
	require.NotNil(t, rep.Problem)
	assert.False(t, rep.Problem.KeyMismatch, rep.Problem.Detail)
	assert.Equal(t, int64(-1000), rep.Problem.ID)
	assert.Len(t, rep.Prunings, 1)
}

// TestARecordConfirmsTheKeyAtOpen: where neither the newest rows (forged
// past what Open looks back over) nor trek.log (gone) confirm the key, a
// record of a pruning does, which only the key makes: TREK starts, and
// Verify reports the forged rows. Another key is still refused, and so is
// the right one once the record is gone too.
func TestARecordConfirmsTheKeyAtOpen(t *testing.T) {
	cfg, a, db, _ := prunedAuditor(t)
	require.NoError(t, a.Close())
	require.NoError(t, os.RemoveAll(filepath.Dir(cfg.LogPath)))
	execSQL(t, db, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO audit_log (action, chain_seq, chain_mac) SELECT 'user.login', 100 * i, ? FROM n`,
		olderRowsChecked+chainTailLen, strings.Repeat("00", 32))

	b, err := Open(cfg)
	require.NoError(t, err, "the record of the pruning confirms the key")
	rep := verifyNow(t, b)
	require.NoError(t, b.Close())
	require.NotNil(t, rep.Problem)
	assert.False(t, rep.Problem.KeyMismatch, rep.Problem.Detail)
	assert.Equal(t, int64(11), rep.Problem.ID, "the first forged row")

	wrong := cfg
	wrong.ChainKey = []byte("another key, 32 bytes long......")
	_, err = Open(wrong)
	require.ErrorIs(t, err, ErrChainKey)
	execSQL(t, db, `DELETE FROM audit_prunes`)
	_, err = Open(cfg)
	require.ErrorIs(t, err, ErrChainKey, "nothing left to confirm the key")
	assert.Contains(t, err.Error(), "and no acknowledgement or record of a pruning either")
}

// TestPruningsOfTwoHistories: audit_log restored alone from a backup,
// then pruned again, leaves two records of the same position, one for
// each history; the table's first row is told by which it follows.
func TestPruningsOfTwoHistories(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	recordDays(t, a, 1, 3)
	db := openPlainDB(t, cfg.DBPath)
	execSQL(t, db, `CREATE TABLE backup AS SELECT * FROM audit_log`)
	recordDays(t, a, 4, 8) // history A: positions 4 to 8
	execSQL(t, db, `CREATE TABLE history_a AS SELECT * FROM audit_log`)
	a.now = func() time.Time { return pruneDay(20) }
	first, err := a.Prune(t.Context(), pruneDay(5), "alice: history A")
	require.NoError(t, err)
	require.Equal(t, int64(5), first.FirstSeq)

	// audit_log alone back to three rows; history B at positions 4 to 8,
	// recorded later, with other ids.
	execSQL(t, db, `DELETE FROM audit_log`)
	execSQL(t, db, `INSERT INTO audit_log SELECT * FROM backup`)
	require.NoError(t, a.Close())
	a = openAuditor(t, cfg)
	recordDays(t, a, 9, 13)
	_, err = acknowledge(t, a, "alice: restored audit_log from the backup")
	require.NoError(t, err)
	second, err := a.Prune(t.Context(), pruneDay(10), "alice: history B")
	require.NoError(t, err)
	require.Equal(t, int64(5), second.FirstSeq)
	require.NotEqual(t, first.FirstID, second.FirstID)
	rep := verifyNow(t, a)
	require.Nil(t, rep.Problem)
	assert.Len(t, rep.Prunings, 2)

	// The table as history A left it: the first record accounts for it.
	execSQL(t, db, `DELETE FROM audit_log`)
	execSQL(t, db, `INSERT INTO audit_log SELECT * FROM history_a WHERE id >= 5`)
	rep = verifyNow(t, a)
	require.NotNil(t, rep.Problem, "history B's newest heads in trek.log no longer match")
	assert.Equal(t, TamperMissing, rep.Problem.Kind)
	assert.True(t, rep.Problem.Acknowledgeable, "rows of the table all verify: %s", rep.Problem.Detail)
	assert.Equal(t, int64(5), rep.StartSeq)
}

// TestPruneWaitsForTREKsWriter: while another writer holds the database
// past the busy timeout, Prune fails with ErrStore, deletes nothing, and
// succeeds once the writer is done.
func TestPruneWaitsForTREKsWriter(t *testing.T) {
	cfg := testConfig(t)
	cfg.BusyTimeout = 50 * time.Millisecond
	a := openAuditor(t, cfg)
	recordDays(t, a, 1, 10)
	db := openPlainDB(t, cfg.DBPath)
	conn, err := db.Conn(t.Context())
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(t.Context(), `BEGIN IMMEDIATE`)
	require.NoError(t, err)

	_, err = a.Prune(t.Context(), pruneDay(6), "alice")
	require.ErrorIs(t, err, ErrStore)
	assert.NotErrorIs(t, err, ErrPrune)
	_, err = conn.ExecContext(t.Context(), `ROLLBACK`)
	require.NoError(t, err)
	assert.Len(t, rowIDs(t, db), 10)
	assert.Zero(t, countPrunings(t, db))

	p, err := a.Prune(t.Context(), pruneDay(6), "alice")
	require.NoError(t, err)
	assert.Equal(t, int64(5), p.Rows)
}
