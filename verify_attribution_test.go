package audit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestVerifyVouchesOnlyForRowsTheKeyChained: when the row holding a chain
// position stands after a row holding a later one, Verify calls a row
// "given another id" only when the key chained its very fields at that
// position under the id it names. A row made up in a deleted row's place,
// or moved and changed, is reported changed without being passed off as
// the key's row, and a row that stands at its own id and position is not
// blamed for another row's move. trek.log's heads are kept in some cases
// and gone in others (rotated away, or no log shipped), since some of the
// rules lean on them.
func TestVerifyVouchesOnlyForRowsTheKeyChained(t *testing.T) {
	// madeUp: row 5 deleted, and a row of other text added at id 100
	// with its chain position and chain value.
	madeUp := func(t *testing.T, f *chainFixture, mac5 string) {
		f.exec(t, `DELETE FROM audit_log WHERE id = 5`)
		f.exec(t, `INSERT INTO audit_log (id, created_at, user_id, action, resource, details, ip, actor_id, chain_seq, chain_mac)
			VALUES (100, '2026-01-01 00:00:00', 1, 'user.login', NULL, NULL, '10.0.0.1', 1, 5, ?)`, mac5)
	}
	// junk: row 5 deleted, and a row with a chain value of no one's
	// making added at id 100, claiming its chain position.
	junk := func(t *testing.T, f *chainFixture, _ string) {
		f.exec(t, `DELETE FROM audit_log WHERE id = 5`)
		f.exec(t, `INSERT INTO audit_log (id, created_at, user_id, action, ip, actor_id, chain_seq, chain_mac)
			VALUES (100, '2026-01-01 00:00:00', 1, 'user.login', '10.0.0.1', 1, 5, ?)`, strings.Repeat("ab", 32))
	}
	// movedAndNextChanged: row 5 given id 100, row 6 changed in place.
	movedAndNextChanged := func(t *testing.T, f *chainFixture, _ string) {
		f.exec(t, `UPDATE audit_log SET id = 100 WHERE id = 5`)
		f.exec(t, `UPDATE audit_log SET details = '{"title":"harmless"}' WHERE id = 6`)
	}
	// movedBackAndChanged: row 5 given id 0, and changed.
	movedBackAndChanged := func(t *testing.T, f *chainFixture, _ string) {
		f.exec(t, `UPDATE audit_log SET id = 0, details = '{"title":"harmless"}' WHERE id = 5`)
	}
	cases := []struct {
		name string
		// tamper changes the table; mac5 is row 5's chain value, read
		// before anything was changed.
		tamper  func(t *testing.T, f *chainFixture, mac5 string)
		noLog   bool // trek.log removed before Verify
		kind    TamperKind
		id, seq int64  // the row reported, and the position expected there
		detail  string // in the report's detail
		// vouched: the detail may call the row given another id.
		vouched bool
	}{
		{
			// Row 6 verifies after the forged row's chain value, which is
			// row 5's; its fields are the forger's, at any id.
			name:   "a row made up with a deleted row's position and chain value",
			tamper: madeUp,
			kind:   TamperChanged, id: 100, seq: 5,
			detail: "the chain value the key gave the row there (row 6 verifies after it), but not that row's fields at any id it could have had",
		},
		{
			name:   "a row made up with a deleted row's position and chain value, trek.log gone",
			tamper: madeUp,
			noLog:  true,
			kind:   TamperChanged, id: 100, seq: 5,
			detail: "or replaced by this one",
		},
		{
			name: "a row given a later id and changed",
			tamper: func(t *testing.T, f *chainFixture, _ string) {
				f.exec(t, `UPDATE audit_log SET id = 100, details = '{"title":"harmless"}' WHERE id = 5`)
			},
			kind: TamperChanged, id: 100, seq: 5,
			detail: "that row was changed and moved to this id, or replaced by this one",
		},
		{
			// Row 6 does not verify after the made-up row, but trek.log
			// recorded it at its own id with its chain value: the row at
			// position 5, standing after it, is the one out of place.
			name:   "a junk row at a deleted row's position",
			tamper: junk,
			kind:   TamperChanged, id: 100, seq: 5,
			detail: "yet stands after row 6, which trek.log recorded there with this id and chain value (a head does not cover its fields",
		},
		{
			// Without trek.log nothing tells which of rows 6 and 100 is out
			// of place: row 6 is named, as the older rules name it, but not
			// as moved.
			name:   "a junk row at a deleted row's position, trek.log gone",
			tamper: junk,
			noLog:  true,
			kind:   TamperChanged, id: 6, seq: 5,
			detail: "the row claims chain position 6, which does not follow 4",
		},
		{
			// Row 6, changed in place, no longer verifies after row 5's
			// chain value, but row 5's fields still verify as row 5: the
			// moved row is named, not row 6.
			name:   "a row given a later id and the next one changed",
			tamper: movedAndNextChanged,
			kind:   TamperChanged, id: 100, seq: 5,
			detail: "it was given another id (it was row 5)", vouched: true,
		},
		{
			name:   "a row given a later id and the next one changed, trek.log gone",
			tamper: movedAndNextChanged,
			noLog:  true,
			kind:   TamperChanged, id: 100, seq: 5,
			detail: "it was given another id (it was row 5)", vouched: true,
		},
		{
			// trek.log recorded position 5 as row 5 with the chain value
			// row 0 holds, but row 0's fields are not row 5's.
			name:   "a row given an earlier id and changed",
			tamper: movedBackAndChanged,
			kind:   TamperChanged, id: 0, seq: 5,
			detail: "trek.log recorded row 5 at chain position 5 with the chain value this row holds, but the row does not verify as row 5",
		},
		{
			// Row 6 verifies after row 0's chain value, which says nothing
			// of row 0's id or fields: row 0 is not called moved.
			name:   "a row given an earlier id and changed, trek.log gone",
			tamper: movedBackAndChanged,
			noLog:  true,
			kind:   TamperInserted, id: 0, seq: 1,
			detail: "the key did not chain it",
		},
		{
			// Found by the rows around it, not by trek.log's head.
			name: "a row given an earlier id, trek.log gone",
			tamper: func(t *testing.T, f *chainFixture, _ string) {
				f.exec(t, `UPDATE audit_log SET id = 0 WHERE id = 5`)
			},
			noLog: true,
			kind:  TamperChanged, id: 0, seq: 5,
			detail: "it was given another id (it was row 5)", vouched: true,
		},
		{
			name: "two distant rows swapped",
			tamper: func(t *testing.T, f *chainFixture, _ string) {
				f.exec(t, `UPDATE audit_log SET id = 1000 WHERE id = 5`)
				f.exec(t, `UPDATE audit_log SET id = 5 WHERE id = 12`)
				f.exec(t, `UPDATE audit_log SET id = 12 WHERE id = 1000`)
			},
			noLog: true,
			kind:  TamperChanged, id: 5, seq: 12,
			detail: "it was given another id (it was row 12)", vouched: true,
		},
		{
			// A copy of row 6 under an id of its own, before the row it
			// was copied from: inserted, not row 6 moved.
			name: "a row copied to an earlier id",
			tamper: func(t *testing.T, f *chainFixture, _ string) {
				f.exec(t, `INSERT INTO audit_log (id, created_at, user_id, action, resource, details, ip, actor_id, actor_username, actor_email, chain_seq, chain_mac)
					SELECT 0, created_at, user_id, action, resource, details, ip, actor_id, actor_username, actor_email, chain_seq, chain_mac FROM audit_log WHERE id = 6`)
			},
			kind: TamperInserted, id: 0, seq: 1,
			detail: "the key did not chain it",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newChainFixture(t, 20)
			var mac5 string
			require.NoError(t, f.raw.QueryRow(`SELECT chain_mac FROM audit_log WHERE id = 5`).Scan(&mac5))
			tc.tamper(t, f, mac5)
			a := f.a
			if tc.noLog {
				require.NoError(t, f.a.Close())
				logPath := filepath.Join(f.dir, "logs", "trek.log")
				require.NoError(t, os.Remove(logPath))
				a = openAuditor(t, Config{DBPath: f.dbPath, LogPath: logPath, ReadOnly: true})
			}
			rep := verifyNow(t, a)
			assert.False(t, rep.Intact)
			require.NotNil(t, rep.Problem)
			p := rep.Problem
			assert.Equal(t, tc.kind, p.Kind, p.Detail)
			assert.Equal(t, tc.id, p.ID, p.Detail)
			assert.Equal(t, tc.seq, p.Seq, p.Detail)
			assert.Contains(t, p.Detail, tc.detail)
			if !tc.vouched {
				assert.NotContains(t, p.Detail, "given another id", "the key chained no such row there")
			}
			assert.False(t, p.KeyMismatch)
			assert.False(t, p.Acknowledgeable)
		})
	}
}

// TestIDSearchIsBoundedByWhatItHashes: trying the ids a row might have had
// hashes the whole row at every try, so a row planted with megabytes of
// details gets fewer tries, and the search stops when the context is done:
// one such row used to keep Verify hashing it thousands of times, past its
// deadline. A row of ordinary size still gets every try.
func TestIDSearchIsBoundedByWhatItHashes(t *testing.T) {
	v := &verifier{chain: newChainer([]byte("a chain key of thirty-two bytes!"))}
	prev := make([]byte, 32)
	row := func(details int) *chainRow {
		r := &chainRow{}
		r.seq, r.id, r.createdAt, r.action = 5, 100, "2026-04-20 10:11:53", "user.login"
		r.details = nullStr{s: strings.Repeat("x", details), valid: true}
		r.mac = r.macBuf[:]
		return r
	}

	_, found, tried, whole := v.verifiesWithIDIn(t.Context(), prev, row(100), 1, 100)
	assert.False(t, found)
	assert.True(t, whole)
	assert.Equal(t, uint64(99), tried, "a small row is tried at every id")

	big := row(4 << 20)
	_, found, tried, whole = v.verifiesWithIDIn(t.Context(), prev, big, 1, 1<<40)
	assert.False(t, found)
	assert.False(t, whole)
	assert.LessOrEqual(t, tried*uint64(len(big.details.s)), uint64(idSearchBytes), "what the tries hash stays within the budget")
	assert.Positive(t, tried)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, found, tried, whole = v.verifiesWithIDIn(ctx, prev, row(100), 1, 1<<40)
	assert.False(t, found)
	assert.False(t, whole)
	assert.Less(t, tried, uint64(2*idsLooked), "a done context stops the search")
}
