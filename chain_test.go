package audit

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chainFixture is an Auditor with n recorded events (ids 1..n) and a plain
// handle on the same file for tampering with it behind the library's back.
type chainFixture struct {
	a      *Auditor
	raw    *sql.DB
	dir    string
	dbPath string
}

func newChainFixture(t *testing.T, n int) *chainFixture {
	t.Helper()
	dir := t.TempDir()
	f := &chainFixture{dir: dir, dbPath: filepath.Join(dir, "travel.db")}
	var err error
	f.a, err = Open(Config{DBPath: f.dbPath, LogPath: filepath.Join(dir, "logs", "trek.log")})
	require.NoError(t, err)
	t.Cleanup(func() { f.a.Close() })
	for i := range n {
		require.NoError(t, f.a.Record(context.Background(), Event{
			Action: TripCreate, Actor: Actor{UserID: int64(i%3 + 1), Email: fmt.Sprintf("u%d@example.com", i%3+1)},
			Details: map[string]any{"title": fmt.Sprintf("trip %d", i)}, IP: "203.0.113.9",
		}))
	}
	f.raw, err = sql.Open("sqlite3", "file:"+f.dbPath+"?_busy_timeout=5000")
	require.NoError(t, err)
	t.Cleanup(func() { f.raw.Close() })
	return f
}

func (f *chainFixture) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	_, err := f.raw.Exec(q, args...)
	require.NoError(t, err, q)
}

func TestVerifyIntact(t *testing.T) {
	f := newChainFixture(t, 20)
	// TREK's own code keeps inserting rows without chain values, and TREK
	// deleting a user sets user_id to NULL: neither is tampering.
	f.exec(t, `INSERT INTO audit_log (user_id, action, resource, details, ip) VALUES (NULL, 'user.passkey_register', NULL, NULL, '10.0.0.1')`)
	require.NoError(t, f.a.Record(context.Background(), Event{Action: UserLogin, Actor: Actor{UserID: 9, Email: "x@example.com"}}))
	f.exec(t, `UPDATE audit_log SET user_id = NULL WHERE user_id = 9`)

	rep, err := f.a.Verify(context.Background())
	require.NoError(t, err)
	assert.True(t, rep.Intact, "%+v", rep.Problem)
	assert.Nil(t, rep.Problem)
	assert.EqualValues(t, 21, rep.Checked)
	assert.EqualValues(t, 1, rep.Unchained)
	assert.EqualValues(t, 22, rep.HeadID)
	assert.EqualValues(t, 21, rep.HeadSeq)
	assert.Positive(t, rep.Anchors)
}

func TestVerifyFindsTampering(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(t *testing.T, f *chainFixture)
		kind   TamperKind
		id     int64
	}{
		{"details changed", func(t *testing.T, f *chainFixture) {
			f.exec(t, `UPDATE audit_log SET details = '{"title":"harmless"}' WHERE id = 7`)
		}, TamperChanged, 7},
		{"ip changed", func(t *testing.T, f *chainFixture) {
			f.exec(t, `UPDATE audit_log SET ip = '198.51.100.1' WHERE id = 12`)
		}, TamperChanged, 12},
		{"actor moved to another user", func(t *testing.T, f *chainFixture) {
			f.exec(t, `UPDATE audit_log SET user_id = 2 WHERE id = 4`) // row 4's actor is user 1
		}, TamperChanged, 4},
		{"chain value overwritten", func(t *testing.T, f *chainFixture) {
			f.exec(t, `UPDATE audit_log SET chain_mac = ? WHERE id = 3`, strings.Repeat("ab", 32))
		}, TamperChanged, 3},
		{"row deleted from the middle", func(t *testing.T, f *chainFixture) {
			f.exec(t, `DELETE FROM audit_log WHERE id = 9`)
		}, TamperMissing, 10},
		{"chain value removed to pass as TREK's", func(t *testing.T, f *chainFixture) {
			f.exec(t, `UPDATE audit_log SET chain_seq = NULL, chain_mac = NULL WHERE id = 5`)
		}, TamperMissing, 6},
		// Ids are covered, so a forged link can only take the id of a
		// row the chain does not cover: here one of TREK's own, between
		// two chained rows.
		{"forged row inserted", func(t *testing.T, f *chainFixture) {
			f.exec(t, `INSERT INTO audit_log (action) VALUES ('user.login')`) // id 21, TREK's own
			require.NoError(t, f.a.Record(context.Background(), Event{Action: UserLogin}))
			f.exec(t, `UPDATE audit_log SET chain_seq = 21, chain_mac = ? WHERE id = 21`, strings.Repeat("cd", 32))
		}, TamperInserted, 21},
		{"forged row with a far chain position", func(t *testing.T, f *chainFixture) {
			f.exec(t, `INSERT INTO audit_log (action) VALUES ('user.login')`)
			require.NoError(t, f.a.Record(context.Background(), Event{Action: UserLogin}))
			f.exec(t, `UPDATE audit_log SET chain_seq = 500, chain_mac = ? WHERE id = 21`, strings.Repeat("cd", 32))
		}, TamperInserted, 21},
		{"two rows swapped", func(t *testing.T, f *chainFixture) {
			f.exec(t, `UPDATE audit_log SET id = 1000 WHERE id = 5`)
			f.exec(t, `UPDATE audit_log SET id = 5 WHERE id = 6`)
			f.exec(t, `UPDATE audit_log SET id = 6 WHERE id = 1000`)
		}, TamperChanged, 5},
		{"rows renumbered to make room for a forged one", func(t *testing.T, f *chainFixture) {
			f.exec(t, `UPDATE audit_log SET id = id - 100 WHERE id <= 5`)
			f.exec(t, `INSERT INTO audit_log (id, created_at, action, details)
				SELECT 5, created_at, 'admin.user_role_change', '{"role":"admin"}' FROM audit_log WHERE id = 6`)
		}, TamperChanged, -99},
		{"anonymous row given actor 0", func(t *testing.T, f *chainFixture) {
			require.NoError(t, f.a.Record(context.Background(), Event{Action: UserLoginFailed}))
			f.exec(t, `UPDATE audit_log SET actor_id = 0, user_id = 0 WHERE id = 21`)
		}, TamperChanged, 21},
		{"anonymous row given user 0", func(t *testing.T, f *chainFixture) {
			require.NoError(t, f.a.Record(context.Background(), Event{Action: UserLoginFailed}))
			f.exec(t, `UPDATE audit_log SET user_id = 0 WHERE id = 21`)
		}, TamperChanged, 21},
		{"newest rows cut off", func(t *testing.T, f *chainFixture) {
			f.exec(t, `DELETE FROM audit_log WHERE id > 17`)
		}, TamperMissing, 0},
		{"newest rows cut off, then the chain went on", func(t *testing.T, f *chainFixture) {
			// The next event chains onto row 17, so the chain adds up
			// again; only the anchor of row 20's position tells.
			f.exec(t, `DELETE FROM audit_log WHERE id > 17`)
			require.NoError(t, f.a.Record(context.Background(), Event{Action: UserLogin}))
		}, TamperMissing, 21},
		{"newest rows cut off, with ids of 19 digits", func(t *testing.T, f *chainFixture) {
			// A row without a chain value (allowed: TREK's own) moves
			// the ids to 10^18; the anchors of the rows after it must
			// still be read.
			f.exec(t, `INSERT INTO audit_log (id, action) VALUES (1000000000000000000, 'user.login')`)
			for range 3 {
				require.NoError(t, f.a.Record(context.Background(), Event{Action: UserLogin}))
			}
			f.exec(t, `DELETE FROM audit_log WHERE id > 1000000000000000001`)
		}, TamperMissing, 0},
		{"newest row cut off, then the chain went on", func(t *testing.T, f *chainFixture) {
			f.exec(t, `DELETE FROM audit_log WHERE id = 20`)
			require.NoError(t, f.a.Record(context.Background(), Event{Action: UserLogin}))
		}, TamperMissing, 21},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newChainFixture(t, 20)
			tc.tamper(t, f)
			rep, err := f.a.Verify(context.Background())
			require.NoError(t, err)
			assert.False(t, rep.Intact)
			require.NotNil(t, rep.Problem)
			assert.Equal(t, tc.kind, rep.Problem.Kind, rep.Problem.Detail)
			assert.Equal(t, tc.id, rep.Problem.ID, rep.Problem.Detail)
		})
	}
}

// TestVerifyNamesTheRowThatWasMoved: a row given another id, or another
// chain position, by hand is reported as that row changed, not as its
// neighbour changed nor as positions gone, whichever way it was moved and
// wherever it stands in the chain. A row given another id is named with
// the id the key chained it under, since its fields verify there.
func TestVerifyNamesTheRowThatWasMoved(t *testing.T) {
	cases := []struct {
		name, sql string
		id        int64 // the row reported changed
		seq       int64 // its chain position
		detail    string
	}{
		{"a row given a later id", `UPDATE audit_log SET id = 100 WHERE id = 5`, 100, 5, "given another id (it was row 5)"},
		{"the first row given a later id", `UPDATE audit_log SET id = 100 WHERE id = 1`, 100, 1, "given another id (it was row 1)"},
		{"two rows given later ids", `UPDATE audit_log SET id = id + 100 WHERE id IN (5, 6)`, 105, 5, "given another id (it was row 5)"},
		{"a row given an earlier id", `UPDATE audit_log SET id = 0 WHERE id = 5`, 0, 5, "given another id (it was row 5)"},
		{"the last row given an earlier id", `UPDATE audit_log SET id = 0 WHERE id = 20`, 0, 20, "given another id (it was row 20)"},
		{"a row given the next row's position", `UPDATE audit_log SET chain_seq = 6 WHERE id = 5`, 5, 5, "its chain position was changed"},
		{"a row given the row before's position", `UPDATE audit_log SET chain_seq = 4 WHERE id = 5`, 5, 5, "its chain position was changed"},
		{"a row given a far position", `UPDATE audit_log SET chain_seq = 500 WHERE id = 5`, 5, 5, "its chain position was changed"},
		{"the first row given another position", `UPDATE audit_log SET chain_seq = 2 WHERE id = 1`, 1, 1, "its chain position was changed"},
		{"the last row given a position past the end", `UPDATE audit_log SET chain_seq = 21 WHERE id = 20`, 20, 20, "its chain position was changed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newChainFixture(t, 20)
			f.exec(t, tc.sql)
			rep := verifyNow(t, f.a)
			assert.False(t, rep.Intact)
			require.NotNil(t, rep.Problem)
			assert.Equal(t, TamperChanged, rep.Problem.Kind, rep.Problem.Detail)
			assert.Equal(t, tc.id, rep.Problem.ID, rep.Problem.Detail)
			assert.Equal(t, tc.seq, rep.Problem.Seq, rep.Problem.Detail)
			assert.Contains(t, rep.Problem.Detail, tc.detail)
			assert.False(t, rep.Problem.KeyMismatch)
		})
	}
}

// TestVerifyAfterARestoreReportsTheLostRowsMissing: after travel.db is
// restored from a backup and TREK records again, the new rows take the
// lost rows' ids and chain positions with other chain values. trek.log's
// heads of the lost rows then name rows that are gone, as the README
// says: rows missing, which an acknowledgement can cover.
func TestVerifyAfterARestoreReportsTheLostRowsMissing(t *testing.T) {
	_, a, _ := restoredDatabase(t)        // rows 6 to 10 lost
	recordN(t, a, 1, "after the restore") // row 6 again, at chain position 6

	rep := verifyNow(t, a)
	assert.False(t, rep.Intact)
	assertAcknowledgeableLoss(t, rep, 6, 6)
	assert.Contains(t, rep.Problem.Detail, "trek.log recorded row 6 at chain position 6 with another chain value")
	assert.Contains(t, rep.Problem.Detail, "travel.db restored")
}

// TestVerifyCountsFoldersNamedLikeLogFiles: a folder in place of trek.log,
// or named like one of its rotated files, holds no chain heads; Verify
// counts it with the entries it skipped, so that no one is told the
// chain's end was checked against a log that is not there.
func TestVerifyCountsFoldersNamedLikeLogFiles(t *testing.T) {
	f := newChainFixture(t, 3)
	require.NoError(t, f.a.Close())
	logs := filepath.Join(f.dir, "logs")
	require.NoError(t, os.Rename(filepath.Join(logs, "trek.log"), filepath.Join(logs, "trek-2026-01-01T00-00-00.000.log")))
	require.NoError(t, os.Mkdir(filepath.Join(logs, "trek.log"), 0o700))
	require.NoError(t, os.Mkdir(filepath.Join(logs, "trek-2026-01-02T00-00-00.000.log"), 0o700))
	require.NoError(t, os.Mkdir(filepath.Join(logs, "notes"), 0o700)) // named like neither: not counted

	a := openAuditor(t, Config{DBPath: f.dbPath, LogPath: filepath.Join(logs, "trek.log"), ReadOnly: true})
	rep := verifyNow(t, a)
	assert.True(t, rep.Intact, "%+v", rep.Problem)
	assert.Equal(t, 3, rep.Anchors, "the rotated file's heads")
	assert.Equal(t, 2, rep.SkippedLogFiles)
}

// TestVerifyIgnoresForgedAnchors writes lines that claim to be chain heads
// through every way text reaches trek.log: an event's fields, the host's
// slog lines, and raw host lines. None may make Verify report tampering
// that did not happen, nor hide tampering that did.
func TestVerifyIgnoresForgedAnchors(t *testing.T) {
	ctx := context.Background()
	mac := strings.Repeat("00", 32)
	claim := "AUDIT-CHAIN head id=999999 seq=999999 mac=" + mac
	f := newChainFixture(t, 5)
	require.NoError(t, f.a.Record(ctx, Event{Action: TripCreate,
		Details: map[string]any{"title": "Lisbon AUDIT-CHAIN head mac=" + mac + " id=999999 seq=999999 x"}}))
	require.NoError(t, f.a.Record(ctx, Event{Action: UserLogin, Actor: Actor{UserID: 1, Username: claim}}))
	slog.New(f.a.LogHandler(nil)).Info(claim, "id", 1, "seq", 7, "mac", mac)
	slog.New(f.a.LogHandler(nil)).Info("login failed", "username", "x "+claim+" y")

	// A raw line exactly as the library writes one, but with a tag made
	// without the key: counted, and ignored.
	forged := fmt.Sprintf("[INFO] 2026-04-20T10:11:53 AUDIT-CHAIN head id=999999 seq=999999 mac=%s tag=%s\n", mac, strings.Repeat("0", 32))
	_, err := f.a.LogWriter().Write([]byte(forged))
	require.NoError(t, err)
	// A genuine anchor moved to another chain position: its tag no longer
	// matches.
	var real string
	for _, l := range logLines(t, filepath.Join(f.dir, "logs", "trek.log")) {
		if chainAnchorLine.MatchString(l) {
			real = l
		}
	}
	require.NotEmpty(t, real)
	moved := strings.Replace(real, " seq=", " seq=9", 1)
	require.NotEqual(t, real, moved)
	_, err = f.a.LogWriter().Write([]byte(moved + "\n"))
	require.NoError(t, err)
	// A chain head as written before they carried a tag: rejected too.
	legacy := real[:strings.Index(real, " tag=")]
	_, err = f.a.LogWriter().Write([]byte(legacy + "\n"))
	require.NoError(t, err)
	// A host line far longer than any anchor does not stop the reading.
	_, err = f.a.LogWriter().Write([]byte("[INFO] 2026-04-20T10:11:53 dump " + strings.Repeat("x", 5<<20) + "\n"))
	require.NoError(t, err)

	rep, err := f.a.Verify(ctx)
	require.NoError(t, err)
	assert.True(t, rep.Intact, "%+v", rep.Problem)
	assert.Equal(t, 3, rep.RejectedAnchors)
	assert.EqualValues(t, 7, rep.HeadSeq)

	// The genuine anchors still count: cutting the newest row off is found.
	f.exec(t, `DELETE FROM audit_log WHERE id = 7`)
	rep, err = f.a.Verify(ctx)
	require.NoError(t, err)
	require.NotNil(t, rep.Problem)
	assert.Equal(t, TamperMissing, rep.Problem.Kind, rep.Problem.Detail)
}

func TestVerifyNeedsTheAnchorsForATruncatedTail(t *testing.T) {
	f := newChainFixture(t, 10)
	f.exec(t, `DELETE FROM audit_log WHERE id > 8`)
	// Without trek.log the table alone looks whole: that is what the
	// anchors are for.
	require.NoError(t, os.RemoveAll(filepath.Join(f.dir, "logs")))
	rep, err := f.a.Verify(context.Background())
	require.NoError(t, err)
	assert.True(t, rep.Intact)
	assert.EqualValues(t, 8, rep.Checked)
}

func TestChainKeyFile(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DBPath: filepath.Join(dir, "data", "travel.db"), LogPath: filepath.Join(dir, "trek.log")}
	a, err := Open(cfg)
	require.NoError(t, err)
	require.NoError(t, a.Record(context.Background(), Event{Action: UserLogin}))
	require.NoError(t, a.Close())

	keyPath := filepath.Join(dir, "data", ".audit_key")
	st, err := os.Stat(keyPath)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	key, err := os.ReadFile(keyPath)
	require.NoError(t, err)
	assert.Len(t, strings.TrimSpace(string(key)), 64)

	// Reopening reuses the key, so the chain goes on verifying.
	a, err = Open(cfg)
	require.NoError(t, err)
	require.NoError(t, a.Record(context.Background(), Event{Action: UserLogin}))
	rep, err := a.Verify(context.Background())
	require.NoError(t, err)
	assert.True(t, rep.Intact)
	assert.EqualValues(t, 2, rep.Checked)
	require.NoError(t, a.Close())

	// Another key does not verify rows it did not chain: a server given
	// it does not start (it would chain on under it), and verify, which
	// opens read-only, says so.
	cfg.ChainKey = []byte("another key, 16 bytes or more")
	_, err = Open(cfg)
	require.ErrorIs(t, err, ErrChainKey)
	assert.Contains(t, err.Error(), "AUDIT_CHAIN_KEY (Config.ChainKey) is not the one that chained audit_log")
	// changedFirstRow verifies read-only under cfg's key, expecting the
	// first row reported changed.
	changedFirstRow := func(cfg Config) *Tamper {
		cfg.ReadOnly = true
		a, err := Open(cfg)
		require.NoError(t, err)
		defer a.Close()
		rep, err := a.Verify(context.Background())
		require.NoError(t, err)
		require.NotNil(t, rep.Problem)
		assert.Equal(t, TamperChanged, rep.Problem.Kind)
		return rep.Problem
	}
	p := changedFirstRow(cfg)
	assert.True(t, p.KeyMismatch, "the first two rows fail alike")
	assert.Contains(t, p.Detail, "most likely the key is not the one the rows were written with")

	// With the right key, a changed first row leaves the second
	// verifying against its stored value: tampering, not the key.
	raw := openPlainDB(t, cfg.DBPath)
	_, err = raw.Exec(`UPDATE audit_log SET resource = 'forged' WHERE id = (SELECT MIN(id) FROM audit_log WHERE chain_seq IS NOT NULL)`)
	require.NoError(t, err)
	right := cfg
	right.ChainKey = nil // the key file
	assert.False(t, changedFirstRow(right).KeyMismatch)

	cfg.ChainKey = []byte("short")
	_, err = Open(cfg)
	assert.ErrorIs(t, err, ErrChainKey)
}

// TestRowsRewrittenFromTheStartAreNotAWrongKey: rows rewritten from the
// chain's first on, every pair of them failing as a wrong key's do, for
// further than the pairs Verify tries after them, with no chain head read:
// the newest rows still verify under the key, which a wrong key's never
// do, so it is tampering, not the key.
func TestRowsRewrittenFromTheStartAreNotAWrongKey(t *testing.T) {
	f := newChainFixture(t, 2*keyPairsLooked+20)
	require.NoError(t, f.a.Close())
	require.NoError(t, os.RemoveAll(filepath.Join(f.dir, "logs")))
	f.exec(t, `UPDATE audit_log SET chain_mac = ? WHERE chain_seq = 1 OR (chain_seq % 2 = 0 AND chain_seq <= ?)`,
		strings.Repeat("ab", 32), 2*keyPairsLooked+4)
	a, err := Open(Config{DBPath: f.dbPath, LogPath: filepath.Join(f.dir, "logs", "trek.log"), ReadOnly: true})
	require.NoError(t, err)
	defer a.Close()
	rep, err := a.Verify(t.Context())
	require.NoError(t, err)
	require.NotNil(t, rep.Problem)
	assert.Equal(t, TamperChanged, rep.Problem.Kind)
	assert.False(t, rep.Problem.KeyMismatch, rep.Problem.Detail)
	assert.Equal(t, int64(1), rep.Problem.Seq)
}

// TestMissingKeyIsNotMadeAgain: a key file that goes missing (a restore
// without it, a server started from another folder, AUDIT_CHAIN_KEY left
// out of a redeploy, or someone who may delete it but not read it) must
// not get a new key for a database whose rows were chained under the old
// one: every row before it would stop verifying, and whoever removed the
// key could start the chain over.
func TestMissingKeyIsNotMadeAgain(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DBPath: filepath.Join(dir, "travel.db"), LogPath: filepath.Join(dir, "logs", "trek.log")}
	keyPath := filepath.Join(dir, ".audit_key")
	a := openAuditor(t, cfg)
	require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin}))
	require.NoError(t, a.Close())
	key, err := os.ReadFile(keyPath)
	require.NoError(t, err)
	require.NoError(t, os.Remove(keyPath))

	_, err = Open(cfg)
	require.ErrorIs(t, err, ErrChainKey)
	assert.Contains(t, err.Error(), keyPath+" is missing, but audit_log holds rows chained under a key (the newest is row 1)")
	assert.NoFileExists(t, keyPath, "no key is made")

	// A key file that is not the one that chained the rows is refused.
	require.NoError(t, os.WriteFile(keyPath, []byte(strings.Repeat("ab", 32)+"\n"), 0o600))
	_, err = Open(cfg)
	require.ErrorIs(t, err, ErrChainKey)
	assert.Contains(t, err.Error(), "the key in "+keyPath+" is not the one that chained audit_log")

	// The key restored, recording goes on and the chain verifies.
	require.NoError(t, os.WriteFile(keyPath, key, 0o600))
	a = openAuditor(t, cfg)
	require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin}))
	rep, err := a.Verify(t.Context())
	require.NoError(t, err)
	assert.True(t, rep.Intact, "%+v", rep.Problem)
	assert.EqualValues(t, 2, rep.Checked)
}

// TestKeyCheckIsNotFooledByRowsAtTheEnd: the key is checked against the
// newest chained rows and the chain heads at the end of trek.log. Rows
// altered or forged at the end of the table must not stop the server from
// starting with its own key (anyone able to write the database could
// otherwise keep TREK down); verify reports them. Only with trek.log gone
// too is there nothing left to tell the key is right.
func TestKeyCheckIsNotFooledByRowsAtTheEnd(t *testing.T) {
	cases := []struct {
		name   string
		rows   int
		tamper func(t *testing.T, f *chainFixture)
		id     int64 // the row verify reports
	}{
		{"the newest row altered", 5, func(t *testing.T, f *chainFixture) {
			f.exec(t, `UPDATE audit_log SET details = '{"title":"harmless"}' WHERE id = 5`)
		}, 5},
		{"the only row altered", 1, func(t *testing.T, f *chainFixture) {
			f.exec(t, `UPDATE audit_log SET details = '{"title":"harmless"}' WHERE id = 1`)
		}, 1},
		{"four forged rows appended", 5, func(t *testing.T, f *chainFixture) {
			for seq := 6; seq <= 9; seq++ {
				f.exec(t, `INSERT INTO audit_log (action, chain_seq, chain_mac) VALUES ('user.login', ?, ?)`, seq, strings.Repeat("cd", 32))
			}
		}, 6},
		{"forged rows after much host logging and a rotation", 5, func(t *testing.T, f *chainFixture) {
			// The chain heads are in the rotated file now, behind
			// megabytes of the host's lines.
			log := filepath.Join(f.dir, "logs", "trek.log")
			a := openAuditor(t, Config{DBPath: f.dbPath, LogPath: log, LogMaxSizeMB: 1})
			h := slog.New(a.LogHandler(nil))
			for range 12_000 {
				h.Info("request served", "path", "/api/trips/"+strings.Repeat("x", 80), "status", 200)
			}
			require.NoError(t, a.Close())
			rotated, err := filepath.Glob(filepath.Join(f.dir, "logs", "trek-*.log"))
			require.NoError(t, err)
			require.NotEmpty(t, rotated, "trek.log was rotated")
			for seq := 6; seq <= 9; seq++ {
				f.exec(t, `INSERT INTO audit_log (action, chain_seq, chain_mac) VALUES ('user.login', ?, ?)`, seq, strings.Repeat("cd", 32))
			}
		}, 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newChainFixture(t, tc.rows)
			require.NoError(t, f.a.Close())
			tc.tamper(t, f)
			a := openAuditor(t, Config{DBPath: f.dbPath, LogPath: filepath.Join(f.dir, "logs", "trek.log")})
			rep, err := a.Verify(t.Context())
			require.NoError(t, err)
			require.NotNil(t, rep.Problem)
			assert.EqualValues(t, tc.id, rep.Problem.ID, rep.Problem.Detail)
		})
	}
	t.Run("forged rows, and a rotated file that cannot be read", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root reads every file")
		}
		f := newChainFixture(t, 5)
		require.NoError(t, f.a.Close())
		logs := filepath.Join(f.dir, "logs")
		// A copy left beside trek.log by another user, say.
		require.NoError(t, os.WriteFile(filepath.Join(logs, "trek-2026-01-01T00-00-00.000.log"), []byte("old\n"), 0))
		for seq := 6; seq <= 9; seq++ {
			f.exec(t, `INSERT INTO audit_log (action, chain_seq, chain_mac) VALUES ('user.login', ?, ?)`, seq, strings.Repeat("cd", 32))
		}
		a, err := Open(Config{DBPath: f.dbPath, LogPath: filepath.Join(logs, "trek.log")})
		require.NoError(t, err, "trek.log's chain heads confirm the key")
		require.NoError(t, a.Close())
	})
	t.Run("the only row altered, trek.log gone", func(t *testing.T) {
		f := newChainFixture(t, 1)
		require.NoError(t, f.a.Close())
		f.exec(t, `UPDATE audit_log SET details = '{"title":"harmless"}' WHERE id = 1`)
		require.NoError(t, os.RemoveAll(filepath.Join(f.dir, "logs")))
		_, err := Open(Config{DBPath: f.dbPath, LogPath: filepath.Join(f.dir, "logs", "trek.log")})
		require.ErrorIs(t, err, ErrChainKey)
		assert.Contains(t, err.Error(), "or the newest rows were altered")
	})
}

// TestForgedRowsAtTheEndDoNotLetAnyKeyIn: rows appended with positions
// that do not follow one another leave none of the newest rows to check.
// The key is then checked on the newest row further back that can be (a
// row right after its predecessor, or the chain's first): the right key
// opens, another is refused, trek.log or not.
func TestForgedRowsAtTheEndDoNotLetAnyKeyIn(t *testing.T) {
	for _, genuine := range []int{1, 6} { // 1: only the chain's first row can be checked
		for _, gap := range []int{4, 100} { // forged rows: as many as the tail read, and more
			for _, logKept := range []bool{true, false} {
				t.Run(fmt.Sprintf("%d rows, %d forged, trek.log kept %v", genuine, gap, logKept), func(t *testing.T) {
					forgedAtTheEnd(t, genuine, gap, logKept)
				})
			}
		}
	}
}

// forgedAtTheEnd is one case of TestForgedRowsAtTheEndDoNotLetAnyKeyIn:
// genuine events, then gap forged rows.
func forgedAtTheEnd(t *testing.T, genuine, gap int, logKept bool) {
	dir := t.TempDir()
	cfg := Config{DBPath: filepath.Join(dir, "travel.db"), LogPath: filepath.Join(dir, "logs", "trek.log"),
		ChainKey: []byte("the key that chained the rows")}
	a := openAuditor(t, cfg)
	for range genuine {
		require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin, IP: "192.0.2.1"}))
	}
	require.NoError(t, a.Close())
	wrong := cfg
	wrong.ChainKey = []byte("some other key, 16 bytes or more")
	_, err := Open(wrong)
	require.ErrorIs(t, err, ErrChainKey, "refused before the forgery")

	raw := openPlainDB(t, cfg.DBPath)
	for i := range gap {
		_, err := raw.Exec(`INSERT INTO audit_log (action, chain_seq, chain_mac) VALUES ('user.login', ?, ?)`,
			100*(i+1), strings.Repeat("00", 32))
		require.NoError(t, err)
	}
	if !logKept {
		require.NoError(t, os.RemoveAll(filepath.Join(dir, "logs")))
	}
	_, err = Open(wrong)
	require.ErrorIs(t, err, ErrChainKey, "refused after it")
	right, err := Open(cfg)
	require.NoError(t, err, "the right key verifies the newest row that can be checked")
	require.NoError(t, right.Close())
}

// TestForgedRowsPastTheBoundLeaveOnlyTrekLog: past olderRowsChecked forged
// rows, Open stops looking back for a row to check the key on (the README
// says so: "up to 65,536 of them"). The chain heads in trek.log then
// confirm the right key; without them, even the right key is refused,
// saying the rows may have been altered, rather than read the whole table
// at every start.
func TestForgedRowsPastTheBoundLeaveOnlyTrekLog(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DBPath: filepath.Join(dir, "travel.db"), LogPath: filepath.Join(dir, "logs", "trek.log"),
		ChainKey: []byte("the key that chained the rows")}
	a := openAuditor(t, cfg)
	for range 3 {
		require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin, IP: "192.0.2.1"}))
	}
	require.NoError(t, a.Close())
	_, err := openPlainDB(t, cfg.DBPath).Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO audit_log (action, chain_seq, chain_mac) SELECT 'user.login', 100 * i, ? FROM n`,
		olderRowsChecked+chainTailLen, strings.Repeat("00", 32))
	require.NoError(t, err)

	right, err := Open(cfg)
	require.NoError(t, err, "trek.log's chain heads confirm the key")
	assert.EqualValues(t, 3+olderRowsChecked+chainTailLen, countRows(t, openPlainDB(t, cfg.DBPath)))
	require.NoError(t, right.Close())
	wrong := cfg
	wrong.ChainKey = []byte("some other key, 16 bytes or more")
	_, err = Open(wrong)
	require.ErrorIs(t, err, ErrChainKey)

	require.NoError(t, os.RemoveAll(filepath.Join(dir, "logs")))
	_, err = Open(cfg)
	require.ErrorIs(t, err, ErrChainKey, "no row within the bound, and no chain head, to confirm the key")
	assert.Contains(t, err.Error(), "or the newest rows were altered")
}

// TestChainKeyFromEnvReadsTheKeyFile: the key file holds hex, and an
// operator moving the key into AUDIT_CHAIN_KEY copies that text; it must
// give the same key, or the chain stops verifying and new rows are chained
// under another key.
func TestChainKeyFromEnvReadsTheKeyFile(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DBPath: filepath.Join(dir, "travel.db"), LogPath: filepath.Join(dir, "trek.log")}
	a, err := Open(cfg)
	require.NoError(t, err)
	require.NoError(t, a.Record(context.Background(), Event{Action: UserLogin}))
	require.NoError(t, a.Close())
	file, err := os.ReadFile(filepath.Join(dir, ".audit_key"))
	require.NoError(t, err)
	require.NoError(t, os.Remove(filepath.Join(dir, ".audit_key")))

	for _, tc := range []struct{ name, value string }{
		{"as the file holds it", string(file)},
		{"as $(cat) gives it", strings.TrimSpace(string(file))},
		{"in capitals", strings.ToUpper(strings.TrimSpace(string(file)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AUDIT_CHAIN_KEY", tc.value)
			env := ConfigFromEnv()
			env.DBPath, env.LogPath = cfg.DBPath, cfg.LogPath
			a, err := Open(env)
			require.NoError(t, err)
			defer a.Close()
			rep, err := a.Verify(context.Background())
			require.NoError(t, err)
			assert.True(t, rep.Intact, "%+v", rep.Problem)
			assert.EqualValues(t, 1, rep.Checked)
		})
	}

	t.Run("other text is the key as it is", func(t *testing.T) {
		t.Setenv("AUDIT_CHAIN_KEY", "correct horse battery staple")
		assert.Equal(t, []byte("correct horse battery staple"), ConfigFromEnv().ChainKey)
	})
	t.Run("too few hex digits", func(t *testing.T) {
		t.Setenv("AUDIT_CHAIN_KEY", "00112233445566778899")
		env := ConfigFromEnv()
		env.DBPath, env.LogPath = cfg.DBPath, cfg.LogPath
		_, err := Open(env)
		require.ErrorIs(t, err, ErrChainKey)
		assert.Contains(t, err.Error(), "32 hex digits")
	})
}

// SQLite keeps text in an INTEGER column. A row with such a value must
// neither stop Verify ("could not check" would hide real tampering) nor,
// on a chained row, pass: the library never writes one.
func TestVerifyNonIntegerColumns(t *testing.T) {
	cases := []struct {
		name, sql string
		changed   int64 // the row reported as changed; 0: intact
	}{
		{"unchained row with a text user_id", `INSERT INTO audit_log (id, user_id, action) VALUES (0, 'x', 'user.login')`, 0},
		{"chained row's user_id made text", `UPDATE audit_log SET user_id = 'x' WHERE id = 3`, 3},
		{"chained row's actor_id made text", `UPDATE audit_log SET actor_id = 'mallory' WHERE id = 3`, 3},
		{"chained row's chain_seq made text", `UPDATE audit_log SET chain_seq = 'x' WHERE id = 3`, 3},
		{"chained row's chain_seq made real", `UPDATE audit_log SET chain_seq = 3.5 WHERE id = 3`, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newChainFixture(t, 5)
			f.exec(t, c.sql)
			rep, err := f.a.Verify(t.Context())
			require.NoError(t, err, "a value is no reason to give up checking")
			rows, changed := 5, c.changed
			if changed == 0 {
				assert.True(t, rep.Intact, "%+v", rep.Problem)
				assert.EqualValues(t, 1, rep.Unchained)
				// Tampering elsewhere is still found.
				f.exec(t, `UPDATE audit_log SET details = '{"title":"Rome"}' WHERE id = 4`)
				rep, err = f.a.Verify(t.Context())
				require.NoError(t, err)
				rows, changed = 6, 4
			}
			require.NotNil(t, rep.Problem)
			assert.Equal(t, TamperChanged, rep.Problem.Kind)
			assert.Equal(t, changed, rep.Problem.ID)

			// The admin list still reads every row.
			page, err := f.a.List(t.Context(), Query{Limit: 10})
			require.NoError(t, err)
			assert.Len(t, page.Entries, rows)
		})
	}
}

// TestVerifyCountsUserIDsClearedWhileTheUserExists: TREK's foreign key
// clears user_id when the user is deleted, which is no tampering; cleared
// while the user exists, it hides the rows from the admin list's user
// filter. An id given again to a new account looks the same, so Verify
// counts such actors rather than calling it tampering.
func TestVerifyCountsUserIDsClearedWhileTheUserExists(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DBPath: filepath.Join(dir, "travel.db"), LogPath: filepath.Join(dir, "logs", "trek.log")}
	trek := createTrekDB(t, cfg.DBPath, map[int64]string{7: "alice", 8: "bob"})
	a := openAuditor(t, cfg)
	for _, id := range []int64{8, 7, 8, 7} {
		require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin, Actor: Actor{UserID: id}}))
	}
	_, err := trek.Exec(`DELETE FROM users WHERE id = 8`) // user_id of rows 1 and 3 set to NULL
	require.NoError(t, err)
	rep, err := a.Verify(t.Context())
	require.NoError(t, err)
	require.True(t, rep.Intact, "a deleted user's rows: %+v", rep.Problem)
	assert.Zero(t, rep.ClearedUserIDs)

	_, err = trek.Exec(`UPDATE audit_log SET user_id = NULL WHERE actor_id = 7`)
	require.NoError(t, err)
	page, err := a.List(t.Context(), Query{UserID: 7})
	require.NoError(t, err)
	require.Empty(t, page.Entries, "the rows no longer show under user 7")
	rep, err = a.Verify(t.Context())
	require.NoError(t, err)
	assert.True(t, rep.Intact, "%+v", rep.Problem)
	assert.Equal(t, 1, rep.ClearedUserIDs, "user 7")

	// Bob's id given to a new account: the same picture.
	_, err = trek.Exec(`INSERT INTO users (id, username, email) VALUES (8, 'carol', 'carol@example.com')`)
	require.NoError(t, err)
	rep, err = a.Verify(t.Context())
	require.NoError(t, err)
	assert.True(t, rep.Intact, "%+v", rep.Problem)
	assert.Equal(t, 2, rep.ClearedUserIDs)
}

// TestVerifyWalksOnlyAStoredAuditLog: Open refuses an audit_log that is
// not the library's table, but one can be swapped in while TREK runs.
// Verify then says so at once, rather than read an endless view until its
// context ends or a generated column a gigabyte a row.
func TestVerifyWalksOnlyAStoredAuditLog(t *testing.T) {
	const endless = `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n)`
	const cols = `'2026-01-01 00:00:00' AS created_at, NULL AS user_id, 'user.login' AS action, NULL AS resource, NULL AS details,
		NULL AS ip, NULL AS actor_username, NULL AS actor_email, NULL AS actor_id, NULL AS chain_seq, NULL AS chain_mac`
	cases := []struct{ name, sql, found string }{
		{"an endless view", `CREATE VIEW audit_log AS ` + endless + ` SELECT i AS id, ` + cols + ` FROM n`, "(a view)"},
		{"a virtual table over an endless view", `CREATE VIEW endless AS ` + endless + ` SELECT i AS docid, i AS id, ` + cols + ` FROM n;
			CREATE VIRTUAL TABLE audit_log USING fts4(content="endless", id, created_at, user_id, action, resource, details, ip,
				actor_username, actor_email, actor_id, chain_seq, chain_mac)`, "(a virtual)"},
		{"a generated column", `CREATE TABLE audit_log (id INTEGER PRIMARY KEY, created_at TEXT, user_id INTEGER, action TEXT,
			resource TEXT, details TEXT GENERATED ALWAYS AS (printf('%.*c', 900000000, 'x')) VIRTUAL, ip TEXT, actor_username TEXT,
			actor_email TEXT, actor_id INTEGER, chain_seq INTEGER, chain_mac TEXT);
			INSERT INTO audit_log (id, created_at, action, chain_seq, chain_mac) SELECT id, created_at, action, chain_seq, chain_mac FROM audit_log_kept`,
			"(generated or hidden columns details)"},
		{"an id that is not the row id", `CREATE TABLE audit_log (id INTEGER PRIMARY KEY DESC, created_at TEXT, user_id INTEGER, action TEXT,
			resource TEXT, details TEXT, ip TEXT, actor_username TEXT, actor_email TEXT, actor_id INTEGER, chain_seq INTEGER, chain_mac TEXT);
			INSERT INTO audit_log (id, created_at, action, chain_seq, chain_mac) SELECT id, created_at, action, chain_seq, chain_mac FROM audit_log_kept;
			INSERT INTO audit_log (id, created_at, action) VALUES (NULL, '2026-01-01 00:00:00', 'user.login')`,
			"(an id that is not the row id (a primary key of its own))"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newChainFixture(t, 3)
			f.exec(t, `ALTER TABLE audit_log RENAME TO audit_log_kept; `+tc.sql)
			// A deadline, so that walking the view fails the test rather
			// than hang it: the error would then be the deadline's.
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()

			_, err := f.a.Verify(ctx)
			require.ErrorIs(t, err, ErrVerify)
			assert.Contains(t, err.Error(), "audit_log is not a table Verify can walk "+tc.found)
			_, err = f.a.Unacknowledged(ctx)
			require.ErrorIs(t, err, ErrVerify)
			assert.Contains(t, err.Error(), "audit_log is not a table Verify can walk "+tc.found)
		})
	}
}

// TestVerifyReportsOneMomentOfTheDatabase: Verify reads the table in one
// read transaction, so what is committed while it walks (here a user
// deleted, which TREK's foreign key answers by clearing user_id) does not
// make one part of the report disagree with another.
func TestVerifyReportsOneMomentOfTheDatabase(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DBPath: filepath.Join(dir, "travel.db"), LogPath: filepath.Join(dir, "logs", "trek.log")}
	trek := createTrekDB(t, cfg.DBPath, map[int64]string{7: "alice"})
	a := openAuditor(t, cfg)
	require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin, Actor: Actor{UserID: 7}}))
	_, err := trek.Exec(`UPDATE audit_log SET user_id = NULL WHERE actor_id = 7`)
	require.NoError(t, err)

	var calls int
	rep, err := a.VerifyProgress(t.Context(), func(done, total int64) {
		calls++
		assert.Equal(t, int64(1), done)
		assert.Equal(t, int64(1), total)
		// The walk is over; who the actors are is read next.
		_, err := trek.Exec(`DELETE FROM users WHERE id = 7`)
		require.NoError(t, err)
	})
	require.NoError(t, err)
	require.Equal(t, 1, calls, "progress reported once, at the end of the walk")
	assert.True(t, rep.Intact, "%+v", rep.Problem)
	assert.Equal(t, 1, rep.ClearedUserIDs, "user 7 existed when the walk read the row whose user_id was cleared")

	rep, err = a.Verify(t.Context())
	require.NoError(t, err)
	assert.Zero(t, rep.ClearedUserIDs, "user 7 is gone now")
}

// TestVerifyFindsValuesRecastAsBlobs: the chain covers a value's bytes,
// and a BLOB holding the same bytes reads back the same through
// database/sql; but the admin list's filters and its user_id column
// compare types, so a row recast so would vanish from them while it still
// verified; and a chain_seq recast so would no longer be found by its
// position. Each of those columns must hold the type the library writes
// there.
func TestVerifyFindsValuesRecastAsBlobs(t *testing.T) {
	for _, col := range []string{"created_at", "user_id", "action", "resource", "ip", "chain_seq"} {
		t.Run(col, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{DBPath: filepath.Join(dir, "travel.db"), LogPath: filepath.Join(dir, "logs", "trek.log")}
			createTrekDB(t, cfg.DBPath, map[int64]string{7: "mallory"})
			a := openAuditor(t, cfg)
			ctx := WithActor(t.Context(), Actor{UserID: 7, Username: "mallory", Email: "mallory@example.com"})
			for range 3 {
				require.NoError(t, a.Record(ctx, Event{Action: TripCreate, Resource: "trip:1", IP: "203.0.113.66",
					Details: map[string]any{"title": "Lisbon"}}))
			}
			raw := openPlainDB(t, cfg.DBPath)
			_, err := raw.Exec(`UPDATE audit_log SET ` + col + ` = CAST(` + col + ` AS BLOB) WHERE id = 2`)
			require.NoError(t, err)
			var typ string
			require.NoError(t, raw.QueryRow(`SELECT typeof(`+col+`) FROM audit_log WHERE id = 2`).Scan(&typ))
			require.Equal(t, "blob", typ)

			rep, err := a.Verify(t.Context())
			require.NoError(t, err)
			require.False(t, rep.Intact, "a %s recast as a BLOB", col)
			require.NotNil(t, rep.Problem)
			assert.EqualValues(t, 2, rep.Problem.ID)
			assert.Equal(t, TamperChanged, rep.Problem.Kind)
			assert.Contains(t, rep.Problem.Detail, "stored as a type the library never writes there")
		})
	}
}
