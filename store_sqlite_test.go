package audit

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tableColumn is one row of PRAGMA table_info.
type tableColumn struct {
	CID     int
	Name    string
	Type    string
	NotNull bool
	Default sql.NullString
	PK      int
}

// auditSchema is what TREK relies on in audit_log: its columns, the
// created_at index and the foreign key to users.
type auditSchema struct {
	Columns     []tableColumn
	IndexSQL    sql.NullString
	IndexCols   []string
	ForeignKeys []string
}

func readAuditSchema(t *testing.T, db *sql.DB) auditSchema {
	t.Helper()
	var s auditSchema
	rows, err := db.Query(`SELECT cid, name, type, "notnull", dflt_value, pk FROM pragma_table_info('audit_log') ORDER BY cid`)
	require.NoError(t, err)
	for rows.Next() {
		var c tableColumn
		require.NoError(t, rows.Scan(&c.CID, &c.Name, &c.Type, &c.NotNull, &c.Default, &c.PK))
		s.Columns = append(s.Columns, c)
	}
	require.NoError(t, rows.Err())
	rows.Close()

	err = db.QueryRow(`SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'idx_audit_log_created'
		AND tbl_name = 'audit_log'`).Scan(&s.IndexSQL)
	if err != sql.ErrNoRows {
		require.NoError(t, err)
	}
	rows, err = db.Query(`SELECT name || CASE desc WHEN 1 THEN ' DESC' ELSE ' ASC' END
		FROM pragma_index_xinfo('idx_audit_log_created') WHERE key = 1 ORDER BY seqno`)
	require.NoError(t, err)
	for rows.Next() {
		var c string
		require.NoError(t, rows.Scan(&c))
		s.IndexCols = append(s.IndexCols, c)
	}
	require.NoError(t, rows.Err())
	rows.Close()

	rows, err = db.Query(`SELECT "from" || ' -> ' || "table" || '(' || "to" || ') ON DELETE ' || on_delete
		FROM pragma_foreign_key_list('audit_log') ORDER BY id, seq`)
	require.NoError(t, err)
	for rows.Next() {
		var fk string
		require.NoError(t, rows.Scan(&fk))
		s.ForeignKeys = append(s.ForeignKeys, fk)
	}
	require.NoError(t, rows.Err())
	rows.Close()
	return s
}

// assertTREKSchemaKept checks that after is before plus, at most, nullable
// columns without defaults at the end.
func assertTREKSchemaKept(t *testing.T, before, after auditSchema) {
	t.Helper()
	require.GreaterOrEqual(t, len(after.Columns), len(before.Columns))
	assert.Equal(t, before.Columns, after.Columns[:len(before.Columns)], "TREK's columns")
	for _, c := range after.Columns[len(before.Columns):] {
		assert.False(t, c.NotNull, "added column %s must be nullable", c.Name)
		assert.False(t, c.Default.Valid, "added column %s has a default", c.Name)
		assert.Zero(t, c.PK, "added column %s", c.Name)
	}
	assert.Equal(t, before.IndexSQL, after.IndexSQL, "idx_audit_log_created")
	assert.Equal(t, []string{"created_at DESC"}, after.IndexCols)
	assert.Equal(t, before.ForeignKeys, after.ForeignKeys)
	assert.Equal(t, []string{"user_id -> users(id) ON DELETE SET NULL"}, after.ForeignKeys)
}

func hasTable(t *testing.T, db *sql.DB, name string) bool {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, name).Scan(&n))
	return n > 0
}

func TestWorksWithTheDatabaseTREKMade(t *testing.T) {
	for _, mode := range []string{"DBPath", "Config.DB"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			dbPath := filepath.Join(dir, "travel.db")
			host := createTrekDB(t, dbPath, map[int64]string{1: "alice", 2: "bob", 3: "carol"})
			var fk int
			require.NoError(t, host.QueryRow(`PRAGMA foreign_keys`).Scan(&fk))
			require.Equal(t, 1, fk, "TREK runs with foreign keys on")
			schemaBefore := readAuditSchema(t, host)

			// TREK's rows from before the library.
			loginID := insertTrekRow(t, host, 1, "user.login", nil, nil, "203.0.113.1")
			notJSONID := insertTrekRow(t, host, 2, "trip.update", "trip:12", "{not json", "203.0.113.2")
			carolTrekID := insertTrekRow(t, host, 3, "trip.create", "trip:13", `{"title":"Oslo"}`, "203.0.113.3")
			futureID := insertTrekRow(t, host, 1, "future.audit_key", nil, `{"x":1}`, nil)

			cfg := Config{LogPath: filepath.Join(dir, "logs", "trek.log"), ChainKeyFile: filepath.Join(dir, ".audit_key")}
			if mode == "DBPath" {
				cfg.DBPath = dbPath
			} else {
				cfg.DB = host
			}
			a := openAuditor(t, cfg)
			ctx := t.Context()

			// The library's rows and TREK's, interleaved after Open.
			require.NoError(t, a.Record(ctx, Event{Action: UserPasswordChange, Actor: Actor{UserID: 3}, IP: "203.0.113.3"}))
			carolLibID := readRows(t, host)[4].ID
			backupID := insertTrekRow(t, host, 2, "backup.create", "backup-1.zip", nil, "203.0.113.2")
			require.NoError(t, a.Record(ctx, Event{Action: TripCreate, Resource: "trip:14",
				Actor: Actor{UserID: 1, Username: "alice", Email: "alice@example.com"}, Details: map[string]any{"title": "Lisbon"}}))
			failedID := insertTrekRow(t, host, nil, "user.login_failed", nil, `{"email":"x@example.com"}`, "198.51.100.7")
			require.NoError(t, a.Record(ctx, Event{Action: UserLogin, Actor: Actor{UserID: 2}}))

			// carol deletes her account: TREK's foreign key empties user_id.
			_, err := host.Exec(`DELETE FROM users WHERE id = 3`)
			require.NoError(t, err)

			page, err := a.List(ctx, Query{Limit: 500})
			require.NoError(t, err)
			assert.EqualValues(t, 9, page.Total, "total counts TREK's rows too")
			require.Len(t, page.Entries, 9)
			byID := map[int64]Entry{}
			for i, e := range page.Entries {
				if i > 0 {
					assert.Less(t, e.ID, page.Entries[i-1].ID, "newest first")
				}
				assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`, e.CreatedAt, "entry %d", e.ID)
				byID[e.ID] = e
			}
			for _, id := range []int64{loginID, notJSONID, carolTrekID, futureID, carolLibID, backupID, failedID} {
				assert.Contains(t, byID, id)
			}

			login := byID[loginID]
			assert.Equal(t, ptr(int64(1)), login.UserID)
			assert.Equal(t, ptr("alice"), login.Username, "from users")
			assert.Equal(t, ptr("alice@example.com"), login.UserEmail)
			assert.Nil(t, login.Details, "NULL details")
			assert.Nil(t, login.Resource)
			assert.Equal(t, ptr("203.0.113.1"), login.IP)

			assert.JSONEq(t, `{"_parse_error":true}`, string(byID[notJSONID].Details))

			carolTrek := byID[carolTrekID]
			assert.Nil(t, carolTrek.UserID, "user_id set to NULL by TREK's foreign key")
			assert.Nil(t, carolTrek.Username, "TREK's row has no snapshot")
			assert.JSONEq(t, `{"title":"Oslo"}`, string(carolTrek.Details))

			carolLib := byID[carolLibID]
			assert.Nil(t, carolLib.UserID, "user_id set to NULL by TREK's foreign key")
			assert.Equal(t, ptr("carol"), carolLib.Username, "snapshot taken when recorded")
			assert.Equal(t, ptr("carol@example.com"), carolLib.UserEmail)
			assert.Equal(t, UserPasswordChange, carolLib.Action)

			assert.Equal(t, Action("future.audit_key"), byID[futureID].Action, "keys outside the catalogue are listed")
			assert.Nil(t, byID[futureID].IP)
			assert.Nil(t, byID[failedID].UserID)

			body, err := json.Marshal(page)
			require.NoError(t, err)
			var raw struct {
				Entries []map[string]json.RawMessage `json:"entries"`
			}
			require.NoError(t, json.Unmarshal(body, &raw))
			for _, e := range raw.Entries {
				var id int64
				require.NoError(t, json.Unmarshal(e["id"], &id))
				switch id {
				case loginID:
					assert.Equal(t, "null", string(e["details"]))
				case notJSONID:
					assert.Equal(t, `{"_parse_error":true}`, string(e["details"]))
				}
			}

			require.NoError(t, a.Close())
			if mode == "Config.DB" {
				require.NoError(t, host.Ping(), "the host's handle stays open")
			}
			insertTrekRow(t, host, 1, "user.login", nil, nil, "203.0.113.1")
			assert.EqualValues(t, 10, countRows(t, host))

			assertTREKSchemaKept(t, schemaBefore, readAuditSchema(t, host))

			// Reopening finds everything in place and applies nothing twice.
			a2 := openAuditor(t, cfg)
			page, err = a2.List(ctx, Query{})
			require.NoError(t, err)
			assert.EqualValues(t, 10, page.Total)
			require.NoError(t, a2.Close())
			assertMigrationsOnce(t, host)
		})
	}
}

func ptr[T any](v T) *T { return &v }

// assertMigrationsOnce checks that every migration is recorded exactly once,
// versions 1..n without a gap.
func assertMigrationsOnce(t *testing.T, db *sql.DB) {
	t.Helper()
	rows, err := db.Query(`SELECT version, COUNT(*) FROM audit_schema_migrations GROUP BY version ORDER BY version`)
	require.NoError(t, err)
	defer rows.Close()
	var versions []int
	for rows.Next() {
		var v, n int
		require.NoError(t, rows.Scan(&v, &n))
		assert.Equal(t, 1, n, "migration %d recorded %d times", v, n)
		versions = append(versions, v)
	}
	require.NoError(t, rows.Err())
	require.Len(t, versions, len(migrations))
	for i, v := range versions {
		assert.Equal(t, i+1, v)
	}
}

func TestOpenIsIdempotent(t *testing.T) {
	cfg := testConfig(t)

	a1 := openAuditor(t, cfg)
	db := openTestDB(t, cfg.DBPath)
	schema := readAuditSchema(t, db)
	cfg2 := cfg
	cfg2.LogPath = filepath.Join(filepath.Dir(cfg.LogPath), "second.log")
	a2 := openAuditor(t, cfg2) // a second Auditor on the same file, both open
	require.NoError(t, a1.Record(t.Context(), Event{Action: UserLogin}))
	require.NoError(t, a2.Record(t.Context(), Event{Action: UserLogin}))
	require.NoError(t, a1.Close())
	require.NoError(t, a2.Close())

	for range 3 {
		a, err := Open(cfg)
		require.NoError(t, err)
		require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin}))
		require.NoError(t, a.Close())
	}
	assertMigrationsOnce(t, db)
	assert.Equal(t, schema, readAuditSchema(t, db), "reopening changes no column or index")
	assert.EqualValues(t, 5, countRows(t, db))
	page, err := openAuditor(t, cfg).List(t.Context(), Query{})
	require.NoError(t, err)
	assert.EqualValues(t, 5, page.Total)
}

// TestTwoAuditorsOnOneDatabaseKeepOneChain: during a rolling restart the
// new server opens travel.db before the old one closes, and both record at
// once, each with its own writer: lone events, each its own statement
// whose guard must notice the other's commits, or batches, each a
// transaction. Each insert chains after the row the other just committed,
// never after the one it committed itself last: one chain, positions 1 to
// N without a gap or a repeat, which a read-only Auditor (trek-audit
// verify) finds intact against the heads in the trek.log they share.
func TestTwoAuditorsOnOneDatabaseKeepOneChain(t *testing.T) {
	for _, perServer := range []int{1, 4} { // 1: every event alone
		t.Run(fmt.Sprintf("%d callers each", perServer), func(t *testing.T) {
			cfg := testConfig(t)
			servers := []*Auditor{openAuditor(t, cfg), openAuditor(t, cfg)}
			const each = 60
			var wg sync.WaitGroup
			for g := range 2 * perServer {
				a := servers[g%2]
				wg.Go(func() {
					for i := range each {
						assert.NoError(t, a.Record(t.Context(), Event{Action: UserLogin, Resource: fmt.Sprintf("g%d-%d", g, i)}))
					}
				})
			}
			wg.Wait()
			if perServer == 1 {
				alone := servers[0].store.(*sqliteStore).aloneCommits + servers[1].store.(*sqliteStore).aloneCommits
				assert.Positive(t, alone, "events written by the guarded INSERT, whose guard this is about")
			}
			for _, a := range servers {
				require.NoError(t, a.Close())
			}
			total := 2 * perServer * each

			var seqs []int64
			rows, err := openPlainDB(t, cfg.DBPath).Query(`SELECT chain_seq FROM audit_log ORDER BY id`)
			require.NoError(t, err)
			for rows.Next() {
				var seq int64
				require.NoError(t, rows.Scan(&seq))
				seqs = append(seqs, seq)
			}
			require.NoError(t, rows.Err())
			require.Len(t, seqs, total)
			for i, seq := range seqs {
				require.EqualValues(t, i+1, seq, "the row at place %d in id order", i)
			}
			ro := cfg
			ro.ReadOnly = true
			rep, err := openAuditor(t, ro).Verify(t.Context())
			require.NoError(t, err)
			assert.True(t, rep.Intact, "%+v", rep.Problem)
			assert.EqualValues(t, total, rep.Checked)
			assert.Positive(t, rep.Anchors)
			assert.Zero(t, rep.RejectedAnchors)
		})
	}
}

// TestOpenMakesAgainWhatIsMissingOfTheSchema: the bookkeeping says what was
// applied, not what is still there. A table of the library's dropped by
// hand would leave its triggers failing every insert of TREK's; audit_log
// rebuilt by a TREK migration would lose the library's columns, triggers
// and indexes. A read-only open refuses a database without the columns it
// reads, naming them, and goes on without the rest, which only keeps
// writes and the admin list fast and exact (so that verify still walks
// the chain); the next read-write open makes it all again, with exact
// counts.
func TestOpenMakesAgainWhatIsMissingOfTheSchema(t *testing.T) {
	cases := []struct {
		name, sql, missing string // missing: "" where a read-only open goes on
	}{
		{"row count table dropped", `DROP TABLE audit_log_count`, ""},
		{"count per action dropped", `DROP TABLE audit_log_action_count`, ""},
		{"a count trigger dropped", `DROP TRIGGER audit_log_count_insert`, ""},
		{"the count row deleted", `DELETE FROM audit_log_count`, ""},
		{"an index dropped", `DROP INDEX idx_audit_log_ip_id`, ""},
		{"the count triggers dropped, then a row written", `DROP TRIGGER audit_log_count_insert; DROP TRIGGER audit_log_action_count_insert;
			INSERT INTO audit_log (user_id, action, ip) VALUES (1, 'user.login', '10.0.0.9')`, ""},
		// Every migration must have been applied: a newer trek-audit must
		// not migrate a database an older server keeps.
		{"the record of migrations emptied", `DELETE FROM audit_schema_migrations`, "version 0 of the library's schema"},
		{"audit_log rebuilt by a TREK migration", `
			CREATE TABLE audit_log_new (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
				user_id INTEGER REFERENCES users(id) ON DELETE SET NULL, action TEXT NOT NULL, resource TEXT, details TEXT, ip TEXT);
			INSERT INTO audit_log_new SELECT id, created_at, user_id, action, resource, details, ip FROM audit_log;
			DROP TABLE audit_log;
			ALTER TABLE audit_log_new RENAME TO audit_log;
			CREATE INDEX idx_audit_log_created ON audit_log(created_at DESC);`, "column audit_log.chain_seq"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			trek := createTrekDB(t, cfg.DBPath, map[int64]string{1: "alice"})
			a := openAuditor(t, cfg)
			for range 3 {
				require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin, Actor: Actor{UserID: 1}}))
			}
			require.NoError(t, a.Close())
			// By hand, as with the sqlite3 shell: a connection of its own.
			// (The connection that drops a table still holds its triggers,
			// and fails its own inserts until it reads the new schema.)
			_, err := openTestDB(t, cfg.DBPath).Exec(tc.sql)
			require.NoError(t, err)

			ro := cfg
			ro.ReadOnly = true
			r, err := Open(ro)
			if tc.missing != "" {
				require.ErrorIs(t, err, ErrStore)
				assert.Contains(t, err.Error(), tc.missing)
			} else {
				// Verify needs none of it; the admin list, whose totals
				// would be wrong or fail, refuses and says why.
				require.NoError(t, err)
				rep, err := r.Verify(t.Context())
				require.NoError(t, err)
				assert.True(t, rep.Intact, "%+v", rep.Problem)
				_, err = r.List(t.Context(), Query{})
				require.ErrorIs(t, err, ErrStore)
				assert.Contains(t, err.Error(), "which the admin list reads; a read-only open changes nothing, so open it read-write once")
				require.NoError(t, r.Close())
			}

			a = openAuditor(t, cfg)
			insertTrekRow(t, trek, 1, "user.login", nil, nil, "10.0.0.1")
			require.NoError(t, a.Record(t.Context(), Event{Action: TripCreate, Actor: Actor{UserID: 1},
				Details: map[string]any{"title": "Lisbon"}}))
			_, err = trek.Exec(`DELETE FROM audit_log WHERE id = 2`)
			require.NoError(t, err)

			n := countRows(t, trek)
			page, err := a.List(t.Context(), Query{})
			require.NoError(t, err)
			assert.EqualValues(t, n, page.Total)
			var logins int64
			require.NoError(t, trek.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE action = 'user.login'`).Scan(&logins))
			page, err = a.List(t.Context(), Query{Action: "user.login"})
			require.NoError(t, err)
			assert.EqualValues(t, logins, page.Total)
			assert.Empty(t, missingSchemaOf(t, trek))
			r, err = Open(ro)
			require.NoError(t, err, "the read-only open finds it whole again")
			require.NoError(t, r.Close())
		})
	}
}

// TestAuditLogWithoutAutoincrementIsRefusedAtOpen: the ids follow
// sqlite_sequence, which a file whose only audit_log was made without
// AUTOINCREMENT does not have. Open says so, rather than every Record
// failing on a table it never heard of.
func TestAuditLogWithoutAutoincrementIsRefusedAtOpen(t *testing.T) {
	cfg := testConfig(t)
	_, err := openPlainDB(t, cfg.DBPath).Exec(`CREATE TABLE audit_log (id INTEGER PRIMARY KEY,
		created_at DATETIME DEFAULT CURRENT_TIMESTAMP, user_id INTEGER, action TEXT NOT NULL, resource TEXT, details TEXT, ip TEXT)`)
	require.NoError(t, err)
	_, err = Open(cfg)
	require.ErrorIs(t, err, ErrStore)
	assert.Contains(t, err.Error(), "audit_log was created without AUTOINCREMENT")
}

// missingSchemaOf is missingSchema on a connection of db.
func missingSchemaOf(t *testing.T, db *sql.DB) []string {
	t.Helper()
	conn, err := db.Conn(t.Context())
	require.NoError(t, err)
	defer conn.Close()
	missing, err := missingSchema(t.Context(), conn)
	require.NoError(t, err)
	return missing
}

// TestConcurrentOpensOfANewFile: processes starting together on a new data
// folder (TREK and a command of this module, say) must all open it; the
// schema is migrated once. Each round uses a fresh folder, so the first
// start happens ten times.
func TestConcurrentOpensOfANewFile(t *testing.T) {
	const rounds, openers = 10, 8
	for round := range rounds {
		cfg := testConfig(t)
		auditors := make([]*Auditor, openers)
		errs := make([]error, openers)
		var wg sync.WaitGroup
		for i := range openers {
			c := cfg
			c.LogPath = filepath.Join(filepath.Dir(cfg.LogPath), fmt.Sprintf("trek%d.log", i))
			wg.Go(func() { auditors[i], errs[i] = Open(c) })
		}
		wg.Wait()
		for i := range openers {
			if assert.NoError(t, errs[i], "round %d, Open #%d", round, i) {
				assert.NoError(t, auditors[i].Record(t.Context(), Event{Action: UserLogin}))
				assert.NoError(t, auditors[i].Close())
			}
		}
		db := openTestDB(t, cfg.DBPath)
		assertMigrationsOnce(t, db)
		if t.Failed() {
			return
		}
	}
}

func TestLibraryNeverCreatesUsersTable(t *testing.T) {
	t.Run("DBPath", func(t *testing.T) {
		cfg := testConfig(t)
		a := openAuditor(t, cfg)
		require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin, Actor: Actor{UserID: 7}}))
		require.NoError(t, a.Close())
		db := openTestDB(t, cfg.DBPath)
		assert.True(t, hasTable(t, db, "audit_log"))
		assert.False(t, hasTable(t, db, "users"))
	})
	t.Run("Config.DB", func(t *testing.T) {
		dir := t.TempDir()
		// A plain handle: with foreign keys on, audit_log's reference to a
		// users table that is not there refuses every insert (see the
		// report); TREK's own database always has users.
		host, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "travel.db")+"?_busy_timeout=10000")
		require.NoError(t, err)
		t.Cleanup(func() { host.Close() })
		a := openAuditor(t, Config{DB: host, LogPath: filepath.Join(dir, "trek.log"),
			ChainKeyFile: filepath.Join(dir, ".audit_key")})
		require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin}))
		require.NoError(t, a.Close())
		assert.NoError(t, host.Ping(), "the host's handle stays open")
		assert.True(t, hasTable(t, host, "audit_log"))
		assert.False(t, hasTable(t, host, "users"))
	})
}

// TestHostForeignKeysDoNotFailOtherEvents: on TREK's own handle foreign keys
// are on, so an event whose actor's user row is already gone (an account
// deletion recorded after the DELETE) breaks the foreign key. Whatever the
// library does with that event, the events that share its group-commit
// batch must not fail with it, and the table must not end up breaking the
// foreign key. The writer is stalled while the events queue, so all of them
// are committed in one batch, which the test observes.
func TestHostForeignKeysDoNotFailOtherEvents(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "travel.db")
	// User 7 is memEvent's actor, the event that stalls the writer.
	host := createTrekDB(t, dbPath, map[int64]string{1: "alice", 7: "admin"})
	a := openAuditor(t, Config{DB: host, LogPath: filepath.Join(dir, "trek.log"),
		ChainKeyFile: filepath.Join(dir, ".audit_key"), BusyTimeout: time.Minute})
	// No event has been recorded yet (see memOpenObserved).
	obs := &memBatchObserver{store: a.store, batches: make(chan int, 4096), queued: memWatchQueue(a)}
	a.store = obs

	const n, bad = 64, 32
	release, first := memStallWriter(t, a, obs, dbPath)
	done := make([]<-chan error, n)
	for i := range done {
		actor := Actor{UserID: 1}
		if i == bad {
			actor = Actor{UserID: 2, Username: "gone", Email: "gone@example.com"} // no such user
		}
		done[i] = memRecordAsync(a, Event{Action: UserAccountDelete, Actor: actor, Resource: fmt.Sprintf("user:%d", i)})
	}
	memWaitQueueDepth(t, a, obs.queued, n)
	release()

	require.NoError(t, closeAwait(t, first, "the stalled first event"))
	errs := make([]error, n)
	for i, d := range done {
		errs[i] = closeAwait(t, d, "event %d", i)
	}
	require.NoError(t, a.Close())
	close(obs.batches)
	var batches []int
	for b := range obs.batches {
		batches = append(batches, b)
	}
	require.Equal(t, []int{n}, batches, "all %d events, the bad one among them, shared one batch", n)

	stored := int64(1) // the first event
	for i, err := range errs {
		switch {
		case err == nil:
			stored++
		case i == bad:
			assert.ErrorIs(t, err, ErrStore, "the bad event")
		default:
			assert.NoError(t, err, "event %d failed only for sharing a batch with the bad one", i)
		}
	}
	assert.Equal(t, stored, countRows(t, host), "rows == Records that returned nil")
	violations, err := host.Query(`PRAGMA foreign_key_check(audit_log)`)
	require.NoError(t, err)
	defer violations.Close()
	assert.False(t, violations.Next(), "audit_log rows that break the foreign key to users")
	require.NoError(t, violations.Err())
}

// chainPoint is where the chain stands: the newest chained row's position
// and value (0 and zeroMac before the first).
type chainPoint struct {
	seq int64
	mac []byte
}

// newestChained reads what the next library row must chain onto.
func newestChained(t *testing.T, db *sql.DB) chainPoint {
	t.Helper()
	var seq int64
	var macHex string
	err := db.QueryRow(`SELECT chain_seq, chain_mac FROM audit_log WHERE chain_seq IS NOT NULL ORDER BY id DESC LIMIT 1`).
		Scan(&seq, &macHex)
	if errors.Is(err, sql.ErrNoRows) {
		return chainPoint{0, zeroMac}
	}
	require.NoError(t, err)
	mac, err := hex.DecodeString(macHex)
	require.NoError(t, err)
	return chainPoint{seq, mac}
}

// nextAutoincrementID is the id AUTOINCREMENT would give the next row: one
// past the larger of sqlite_sequence and the largest id.
func nextAutoincrementID(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	var seq, maxID sql.NullInt64
	err := db.QueryRow(`SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'`).Scan(&seq)
	if !errors.Is(err, sql.ErrNoRows) {
		require.NoError(t, err)
	}
	require.NoError(t, db.QueryRow(`SELECT MAX(id) FROM audit_log`).Scan(&maxID))
	return max(seq.Int64, maxID.Int64) + 1
}

// A lone event is written by one guarded INSERT, without a transaction
// around it, while audit_log is as the library's last commit left it.
// Whatever another connection did in between, the event must get the id
// AUTOINCREMENT would give it and chain onto the newest chained row, as a
// transaction that reads both again would; the guarded INSERT is used only
// where that is certain.
func TestLoneEventAfterAnotherConnectionsWrite(t *testing.T) {
	cases := []struct {
		name    string
		foreign func(t *testing.T, db *sql.DB)
		actor   Actor
		alone   bool // written by the guarded INSERT
	}{
		{"nothing", func(*testing.T, *sql.DB) {}, Actor{UserID: 1}, true},
		{"TREK writes another table", func(t *testing.T, db *sql.DB) {
			_, err := db.Exec(`INSERT INTO users (id, username, email) VALUES (9, 'ivan', 'ivan@example.com')`)
			require.NoError(t, err)
		}, Actor{UserID: 1}, true},
		{"the account of an actor given by id deleted", func(t *testing.T, db *sql.DB) {
			_, err := db.Exec(`DELETE FROM users WHERE id = 2`)
			require.NoError(t, err)
		}, Actor{UserID: 2}, true},
		{"the account of an actor given with a name deleted", func(t *testing.T, db *sql.DB) {
			_, err := db.Exec(`DELETE FROM users WHERE id = 2`)
			require.NoError(t, err)
		}, Actor{UserID: 2, Email: "bob@example.com"}, true},
		{"nothing, for an actor given with a name", func(*testing.T, *sql.DB) {},
			Actor{UserID: 2, Username: "bob", Email: "bob@example.com"}, true},
		{"TREK records an event", func(t *testing.T, db *sql.DB) {
			insertTrekRow(t, db, 1, "user.login", nil, nil, "203.0.113.1")
		}, Actor{UserID: 1}, false},
		{"the newest row deleted", func(t *testing.T, db *sql.DB) {
			_, err := db.Exec(`DELETE FROM audit_log WHERE id = (SELECT MAX(id) FROM audit_log)`)
			require.NoError(t, err)
		}, Actor{UserID: 1}, false},
		{"the newest row moved to a higher id", func(t *testing.T, db *sql.DB) {
			_, err := db.Exec(`UPDATE audit_log SET id = id + 50 WHERE id = (SELECT MAX(id) FROM audit_log)`)
			require.NoError(t, err)
		}, Actor{UserID: 1}, false},
		{"an older row moved above the newest", func(t *testing.T, db *sql.DB) {
			_, err := db.Exec(`UPDATE audit_log SET id = 1000 WHERE id = (SELECT MIN(id) FROM audit_log)`)
			require.NoError(t, err)
		}, Actor{UserID: 1}, false},
		{"the newest row's chain value changed", func(t *testing.T, db *sql.DB) {
			_, err := db.Exec(`UPDATE audit_log SET chain_mac = ? WHERE id = (SELECT MAX(id) FROM audit_log)`,
				strings.Repeat("ab", 32))
			require.NoError(t, err)
		}, Actor{UserID: 1}, false},
		{"the newest row's chain position removed", func(t *testing.T, db *sql.DB) {
			_, err := db.Exec(`UPDATE audit_log SET chain_seq = NULL, chain_mac = NULL WHERE id = (SELECT MAX(id) FROM audit_log)`)
			require.NoError(t, err)
		}, Actor{UserID: 1}, false},
		{"every row deleted", func(t *testing.T, db *sql.DB) {
			_, err := db.Exec(`DELETE FROM audit_log`)
			require.NoError(t, err)
		}, Actor{UserID: 1}, false},
		{"sqlite_sequence moved on", func(t *testing.T, db *sql.DB) {
			_, err := db.Exec(`UPDATE sqlite_sequence SET seq = seq + 100 WHERE name = 'audit_log'`)
			require.NoError(t, err)
		}, Actor{UserID: 1}, false},
	}
	key := []byte("a chain key of the test, 32 bytes")
	for _, mode := range []string{"DBPath", "Config.DB"} {
		for _, tc := range cases {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				dir := t.TempDir()
				dbPath := filepath.Join(dir, "travel.db")
				host := createTrekDB(t, dbPath, map[int64]string{1: "alice", 2: "bob"})
				cfg := Config{LogPath: filepath.Join(dir, "logs", "trek.log"), ChainKey: key}
				if mode == "DBPath" {
					cfg.DBPath = dbPath
				} else {
					cfg.DB = host
				}
				a := openAuditor(t, cfg)
				s := a.store.(*sqliteStore)
				ctx := t.Context()
				for range 3 {
					require.NoError(t, a.Record(ctx, Event{Action: UserLogin, Actor: Actor{UserID: 1}}))
				}
				require.True(t, s.head.valid, "the library's own commit leaves the head known")

				tc.foreign(t, host)
				wantID, prev := nextAutoincrementID(t, host), newestChained(t, host)
				before := s.aloneCommits
				require.NoError(t, a.Record(ctx, Event{Action: TripCreate, Resource: "trip:7",
					Actor: tc.actor, Details: map[string]any{"title": "Lisbon"}}))

				assert.Equal(t, tc.alone, s.aloneCommits == before+1, "written by the guarded INSERT")
				conn, err := host.Conn(ctx)
				require.NoError(t, err)
				defer conn.Close()
				v := verifier{db: conn, chain: newChainer(key)}
				row, err := v.one(ctx, `SELECT `+chainRowCols+` FROM audit_log ORDER BY id DESC LIMIT 1`, 0)
				require.NoError(t, err)
				require.NotNil(t, row)
				assert.Equal(t, wantID, row.id, "AUTOINCREMENT's next id")
				assert.Equal(t, prev.seq+1, row.seq, "the position after the newest chained row")
				assert.True(t, v.verifies(prev.mac, row), "chained onto the newest chained row's value")
				assert.Equal(t, tc.actor.UserID, row.actorID)
				var userID sql.NullInt64
				require.NoError(t, host.QueryRow(`SELECT user_id FROM audit_log WHERE id = ?`, row.id).Scan(&userID))
				var exists bool
				require.NoError(t, host.QueryRow(`SELECT EXISTS (SELECT 1 FROM users WHERE id = ?)`, tc.actor.UserID).Scan(&exists))
				assert.Equal(t, exists, userID.Valid, "user_id set only while the user row exists")

				// And the event after it, with nothing in between, goes
				// through the guarded INSERT again.
				before = s.aloneCommits
				require.NoError(t, a.Record(ctx, Event{Action: UserPasswordChange, Actor: Actor{UserID: 1}}))
				assert.Equal(t, before+1, s.aloneCommits)
			})
		}
	}
}

// A lone event's user_id is decided by its INSERT, from the users row as
// it is when the row is committed: an account deleted, or created, after
// fillActors looked finds user_id NULL, or set, as TREK's foreign key
// would have it.
func TestLoneInsertTakesUserIDFromTheUsersRowAtCommit(t *testing.T) {
	cases := []struct {
		name     string
		userGone bool // what fillActors found
		foreign  string
	}{
		{"deleted after it was found", false, `DELETE FROM users WHERE id = 2`},
		{"created after it was missed", true, `INSERT INTO users (id, username, email) VALUES (2, 'bob', 'bob@example.com')`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dbPath := filepath.Join(dir, "travel.db")
			users := map[int64]string{1: "alice"}
			if !tc.userGone {
				users[2] = "bob"
			}
			host := createTrekDB(t, dbPath, users)
			key := []byte("a chain key of the test, 32 bytes")
			a := openAuditor(t, Config{DBPath: dbPath, LogPath: filepath.Join(dir, "trek.log"), ChainKey: key})
			ctx := t.Context()
			require.NoError(t, a.Record(ctx, Event{Action: UserLogin, Actor: Actor{UserID: 1}}))
			s := a.store.(*sqliteStore)
			require.True(t, s.head.valid)

			p, err := a.prepare(ctx, &Event{Action: UserLogin, Actor: Actor{UserID: 2}})
			require.NoError(t, err)
			require.NoError(t, s.fillActors(ctx, []*pending{p}))
			require.Equal(t, tc.userGone, p.userGone)
			_, err = host.Exec(tc.foreign)
			require.NoError(t, err)

			// Record is idle, so the test may act as the writer.
			done, err := s.insertAlone(ctx, p)
			require.NoError(t, err)
			require.True(t, done)
			rows := readRows(t, host)
			require.Len(t, rows, 2)
			assert.Equal(t, tc.userGone, rows[1].UserID.Valid, "user_id as the users table says at commit")

			rep, err := a.Verify(ctx)
			require.NoError(t, err)
			assert.True(t, rep.Intact, "%+v", rep.Problem)
		})
	}
}

// Lone events recorded while TREK's server keeps inserting its own audit
// rows: the guard fails whenever TREK got in between, and every event must
// still be stored once, with AUTOINCREMENT's ids and an intact chain over
// the library's rows.
func TestLoneEventsRaceTREKsOwnInserts(t *testing.T) {
	const n = 300
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "travel.db")
	host := createTrekDB(t, dbPath, map[int64]string{1: "alice"})
	a := openAuditor(t, Config{DBPath: dbPath, LogPath: filepath.Join(dir, "logs", "trek.log"),
		ChainKey: []byte("a chain key of the test, 32 bytes")})
	ctx := t.Context()
	s := a.store.(*sqliteStore)

	recorded := make(chan struct{})
	landed := make(chan struct{}, 1) // a TREK row has been committed
	var trekRows int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-recorded:
				return
			default:
			}
			_, err := host.Exec(`INSERT INTO audit_log (user_id, action, ip) VALUES (1, 'user.login', '203.0.113.1')`)
			if !assert.NoError(t, err) {
				return
			}
			trekRows++
			select {
			case landed <- struct{}{}:
			default:
			}
		}
	})
	func() {
		defer func() { close(recorded); wg.Wait() }()
		for i := range n {
			if i == n/2 {
				// However SQLite's busy handler shares the lock out, at
				// least one TREK row lands between two of the library's.
				select {
				case <-landed:
				default:
				}
				select {
				case <-landed:
				case <-time.After(30 * time.Second):
					require.FailNow(t, "no TREK row landed within 30s; the inserting goroutine stopped")
				}
			}
			require.NoError(t, a.Record(ctx, Event{Action: TripCreate, Resource: fmt.Sprintf("trip:%d", i),
				Details: map[string]any{"title": "Lisbon"}, Actor: Actor{UserID: 1, Email: "alice@example.com"}}))
		}
	}()
	t.Logf("%d of %d events by the guarded INSERT, %d rows by TREK", s.aloneCommits, n, trekRows)
	// The first event goes through the transaction (the head is not known
	// yet), and so does at least the one after TREK's row.
	assert.Less(t, s.aloneCommits, n-1, "the guard saw TREK's rows")

	rows := readRows(t, host) // in id order
	require.Len(t, rows, n+int(trekRows))
	var libraryOrder []string
	for _, r := range rows {
		if r.Action == string(TripCreate) {
			libraryOrder = append(libraryOrder, r.Resource.String)
		}
	}
	wantOrder := make([]string, n)
	for i := range wantOrder {
		wantOrder[i] = fmt.Sprintf("trip:%d", i)
	}
	assert.Equal(t, wantOrder, libraryOrder, "the library's ids follow the order Record was called in")
	var maxID, seq int64
	require.NoError(t, host.QueryRow(`SELECT MAX(id) FROM audit_log`).Scan(&maxID))
	require.NoError(t, host.QueryRow(`SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'`).Scan(&seq))
	assert.Equal(t, maxID, seq, "every id came from AUTOINCREMENT's sequence")

	rep, err := a.Verify(ctx)
	require.NoError(t, err)
	assert.True(t, rep.Intact, "%+v", rep.Problem)
	assert.EqualValues(t, n, rep.Checked)
	assert.Equal(t, trekRows, rep.Unchained)
	assert.EqualValues(t, n, rep.HeadSeq)
}

// walFrameSize is what one page takes in the WAL: the page and its frame
// header.
const walFrameSize = 4096 + 24

// walSize is the size of the database's WAL file.
func walSize(t *testing.T, dbPath string) int64 {
	t.Helper()
	fi, err := os.Stat(dbPath + "-wal")
	require.NoError(t, err)
	return fi.Size()
}

// Most instances record an event now and then, each committed alone. The
// WAL must then stay near SQLite's default size: the checkpointer copies it
// into the database file every ckptCommits commits, and with the writer
// idle meanwhile, the next commit starts it over. (Counted by events alone,
// 1,000 lone events wrote 8,400 pages, 34 MB, before the first checkpoint.)
func TestCheckpointerKeepsTheWALSmallForEventsOneAtATime(t *testing.T) {
	cfg := testConfig(t)
	cfg.Synchronous = "NORMAL"
	a := openAuditor(t, cfg)
	s := a.store.(*sqliteStore)
	ran := make(chan struct{}, 1)
	s.ckptRan = func() { ran <- struct{}{} }
	step := time.Second // between events, as far as the store can tell
	s.now = fakeClock(&step)
	cat := Catalogue()
	const events = 1000
	checkpoints := 0
	for i := range events {
		e := validEvent(cat[i%len(cat)])
		e.IP = "203.0.113.9"
		require.NoError(t, a.Record(context.Background(), e))
		if s.commitsSinceCkpt == 0 {
			// The checkpointer was kicked: let it finish, as the pause
			// before an instance's next event does.
			<-ran
			checkpoints++
		}
	}
	assert.GreaterOrEqual(t, checkpoints, 5, "checkpoints while %d lone events came", events)
	assert.Less(t, walSize(t, cfg.DBPath), int64(2000*walFrameSize), "the WAL near SQLite's default of 1,000 pages")
}

// fakeClock stands in for time.Now: each reading is *step after the last.
func fakeClock(step *time.Duration) func() time.Time {
	t := time.Date(2026, 4, 20, 10, 11, 53, 0, time.UTC)
	return func() time.Time {
		t = t.Add(*step)
		return t
	}
}

// Events back to back leave the checkpointer nothing it can finish (the
// writer adds to the WAL while it copies), so commits alone do not kick it
// then: only events, every ckptEvery.
func TestCheckpointerWaitsForAPauseToCountCommits(t *testing.T) {
	cfg := testConfig(t)
	cfg.Synchronous = "NORMAL"
	a := openAuditor(t, cfg)
	s := a.store.(*sqliteStore)
	step := ckptPause / 10
	s.now = fakeClock(&step)
	cat := Catalogue()
	for i := range 3 * ckptCommits {
		require.NoError(t, a.Record(context.Background(), validEvent(cat[i%len(cat)])))
	}
	assert.Equal(t, 3*ckptCommits, s.commitsSinceCkpt, "no kick for commits without a pause")

	step = ckptPause
	require.NoError(t, a.Record(context.Background(), validEvent(cat[0])))
	assert.Equal(t, 0, s.commitsSinceCkpt, "kicked at the first commit after a pause")
}

// Should the checkpointer fall behind (here it is held before the first
// event, so every kick is dropped), the writer's own backstop checkpoint
// starts the WAL over at 8,000 pages: the file must stay within that
// rather than grow to the 16,000 pages it used to.
//
// The checkpointer is held before the events, not after its first kick:
// a checkpoint of its own under way when the WAL passes the backstop makes
// the writer's fail busy until it ends, and on a loaded machine the WAL
// grew some 500 pages past the backstop meanwhile. That is the
// checkpointer working, not falling behind.
func TestBackstopBoundsTheWALWhenTheCheckpointerFallsBehind(t *testing.T) {
	cfg := testConfig(t)
	cfg.Synchronous = "NORMAL"
	a := openAuditor(t, cfg)
	s := a.store.(*sqliteStore)
	held, release := make(chan struct{}), make(chan struct{})
	var holding sync.Once
	s.ckptRan = func() {
		holding.Do(func() { close(held) })
		<-release
	}
	t.Cleanup(func() { close(release) }) // before Close, which waits for the checkpointer
	s.ckptKick <- struct{}{}
	<-held
	cat := Catalogue()
	var largest int64
	for i := range 2500 {
		require.NoError(t, a.Record(context.Background(), validEvent(cat[i%len(cat)])))
		if i%50 == 49 {
			largest = max(largest, walSize(t, cfg.DBPath))
		}
	}
	var backstop int64
	require.NoError(t, s.conn.QueryRowContext(context.Background(), "PRAGMA wal_autocheckpoint").Scan(&backstop))
	assert.Equal(t, int64(8000), backstop)
	assert.Greater(t, largest, int64(7000*walFrameSize), "the events took the WAL near the backstop")
	assert.LessOrEqual(t, largest, int64(8000+64)*walFrameSize, "the WAL stays within the backstop and one commit")
}

// A TREK server may open the library before its own first migration
// creates users. The store must notice the table within usersRecheck
// commits: from then on an actor named by id takes its names from users,
// and an id with no user row is stored as NULL, as TREK's foreign key
// would have it.
func TestUsersTableCreatedAfterOpenIsNoticed(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	require.NoError(t, a.Record(ctx, Event{Action: UserLogin, Actor: Actor{UserID: 7}}))
	db := openPlainDB(t, cfg.DBPath)
	_, err := db.Exec(`CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT, email TEXT);
		INSERT INTO users VALUES (7, 'alice', 'alice@example.com')`)
	require.NoError(t, err)

	for range usersRecheck {
		require.NoError(t, a.Record(ctx, Event{Action: UserLogin, Actor: Actor{UserID: 99}}))
	}
	require.NoError(t, a.Record(ctx, Event{Action: UserLogin, Actor: Actor{UserID: 7}}))
	require.NoError(t, a.Record(ctx, Event{Action: UserLogin, Actor: Actor{UserID: 99}}))

	rows := readRows(t, db)
	require.Len(t, rows, usersRecheck+3)
	first, alice, gone := rows[0], rows[len(rows)-2], rows[len(rows)-1]
	assert.Equal(t, sql.NullInt64{Int64: 7, Valid: true}, first.UserID, "before users existed, the id as given")
	assert.Equal(t, sql.NullInt64{Int64: 7, Valid: true}, alice.UserID)
	assert.Equal(t, "alice", alice.ActorUsername.String, "names from users")
	assert.Equal(t, "alice@example.com", alice.ActorEmail.String)
	assert.False(t, gone.UserID.Valid, "no user row 99: NULL, as ON DELETE SET NULL leaves it")
	lines := eventLines(logLines(t, cfg.LogPath))
	assert.Contains(t, lines[len(lines)-2], " alice@example.com logged in ", "the log line names the user")
}

// The library opens its database through a SQLite URI; paths that a URI
// would read otherwise must still name the file they name.
func TestDBPathsAURIWouldMisread(t *testing.T) {
	for _, name := range []string{"with space.db", "what?.db", "no#fragment.db", "100%.db", "a&b=c;d.db"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, name)
			a, err := Open(Config{DBPath: path, LogPath: filepath.Join(dir, "trek.log")})
			require.NoError(t, err)
			require.NoError(t, a.Record(context.Background(), Event{Action: UserLogin}))
			require.NoError(t, a.Close())
			assert.EqualValues(t, 1, countRows(t, openPlainDB(t, path)), "the row is in %s", path)
		})
	}
	t.Run("leading double slash", func(t *testing.T) {
		dir := t.TempDir()
		path := "/" + filepath.Join(dir, "travel.db") // "//tmp/...": a URI would take "tmp" for a host
		a, err := Open(Config{DBPath: path, LogPath: filepath.Join(dir, "trek.log")})
		require.NoError(t, err)
		require.NoError(t, a.Record(context.Background(), Event{Action: UserLogin}))
		require.NoError(t, a.Close())
		assert.EqualValues(t, 1, countRows(t, openPlainDB(t, filepath.Join(dir, "travel.db"))))
	})
}

// TREK's own writer holding the lock past BusyTimeout fails an event after
// BusyTimeout, however many events in a row, and leaves the library's
// connection fit for the next one. On a host's handle to a rollback-journal
// database, a new connection's setup would wait for the same lock under
// the host's busy timeout instead (10 s here).
func TestLockedOutEventsFailAfterBusyTimeoutEachTime(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "travel.db")
	trek := createTrekDB(t, path, map[int64]string{1: "alice"}) // rollback journal, as created
	host := openTestDB(t, path)                                 // busy timeout 10 s
	a := openAuditor(t, Config{DB: host, LogPath: filepath.Join(dir, "trek.log"),
		BusyTimeout: 10 * time.Millisecond, ChainKeyFile: filepath.Join(dir, ".audit_key")})
	require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin}))

	locker, err := trek.Conn(t.Context())
	require.NoError(t, err)
	defer locker.Close()
	_, err = locker.ExecContext(t.Context(), "BEGIN EXCLUSIVE")
	require.NoError(t, err)
	for i := range 3 {
		start := time.Now()
		err := a.Record(t.Context(), Event{Action: UserLogin})
		require.ErrorIs(t, err, ErrStore, "event %d", i)
		assert.Less(t, time.Since(start), 5*time.Second, "event %d waits about BusyTimeout, not the host's 10 s", i)
		assert.Equal(t, 1, strings.Count(err.Error(), ErrStore.Error()), "said once: %v", err)
	}
	_, err = locker.ExecContext(t.Context(), "ROLLBACK")
	require.NoError(t, err)
	require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin}))
	assert.EqualValues(t, 2, countRows(t, trek))
}

// TestNewerSchemaIsRefused: after TREK is downgraded, the older library
// finds a database a newer one migrated. Its rows may follow rules this
// build does not know, so neither a read-write nor a read-only open goes
// on, and the error says what happened and what to do.
func TestNewerSchemaIsRefused(t *testing.T) {
	known := migrations[len(migrations)-1].version
	for _, readOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("readonly=%v", readOnly), func(t *testing.T) {
			cfg := testConfig(t)
			a := openAuditor(t, cfg)
			require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin}))
			require.NoError(t, a.Close())
			db := openTestDB(t, cfg.DBPath)
			_, err := db.Exec(`INSERT INTO audit_schema_migrations (version, name, applied_at) VALUES (?, 'from a newer build', '2027-01-01 00:00:00')`, known+3)
			require.NoError(t, err)

			open := cfg
			open.ReadOnly = readOnly
			_, err = Open(open)
			require.ErrorIs(t, err, ErrStore)
			assert.Contains(t, err.Error(), fmt.Sprintf("version %d of the library's schema, newer than the %d this build knows", known+3, known))

			var versions int
			require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM audit_schema_migrations`).Scan(&versions))
			assert.Equal(t, known+1, versions, "nothing was migrated")
			assert.EqualValues(t, 1, countRows(t, db))
		})
	}
}

// TestHandMadeAuditLogWithNullActions: TREK's action column is NOT NULL,
// but a table made by hand may hold NULL actions. Opening it must not
// fail on the per-action counts, its rows are listed (with an empty
// action) and counted, and TREK's later inserts, updates and deletes of
// such rows keep working.
func TestHandMadeAuditLogWithNullActions(t *testing.T) {
	cfg := testConfig(t)
	db := openPlainDB(t, cfg.DBPath)
	_, err := db.Exec(`CREATE TABLE audit_log (id INTEGER PRIMARY KEY AUTOINCREMENT,
		created_at DATETIME DEFAULT CURRENT_TIMESTAMP, user_id INTEGER, action TEXT, resource TEXT, details TEXT, ip TEXT);
		INSERT INTO audit_log (action) VALUES (NULL), ('user.login'), (NULL)`)
	require.NoError(t, err)

	a := openAuditor(t, cfg)
	require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin}))
	_, err = db.Exec(`INSERT INTO audit_log (action) VALUES (NULL)`)
	require.NoError(t, err, "the count triggers pass a NULL action over")
	_, err = db.Exec(`UPDATE audit_log SET action = NULL WHERE id = 2`)
	require.NoError(t, err)
	_, err = db.Exec(`UPDATE audit_log SET action = 'user.logout' WHERE id = 1`)
	require.NoError(t, err)
	_, err = db.Exec(`DELETE FROM audit_log WHERE id = 3`)
	require.NoError(t, err)

	page, err := a.List(t.Context(), Query{})
	require.NoError(t, err)
	assert.EqualValues(t, 4, page.Total)
	got := map[int64]Action{}
	for _, e := range page.Entries {
		got[e.ID] = e.Action
	}
	assert.Equal(t, map[int64]Action{1: "user.logout", 2: "", 4: UserLogin, 5: ""}, got)
	for action, want := range map[string]int64{"user.login": 1, "user.logout": 1} {
		page, err := a.List(t.Context(), Query{Action: action})
		require.NoError(t, err)
		assert.Equal(t, want, page.Total, action)
	}
	rep, err := a.Verify(t.Context())
	require.NoError(t, err)
	assert.True(t, rep.Intact)
	assert.EqualValues(t, 1, rep.Checked)
	assert.EqualValues(t, 3, rep.Unchained)
}

// A long read (an export of the whole log, say) keeps SQLite from starting
// the WAL over, so it grows while events come. Once the read ends, the
// checkpointer copies it and the next commit starts it over; the writer's
// journal_size_limit then cuts the file back, where it would otherwise keep
// its largest size for good. (The limit is lowered here from walSizeLimit,
// so that a few hundred events pass it.)
func TestWALIsCutBackOnceALongReadEnds(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.Synchronous = "NORMAL"
	a := openAuditor(t, cfg)
	s := a.store.(*sqliteStore)
	var limit int64
	require.NoError(t, s.conn.QueryRowContext(ctx, "PRAGMA journal_size_limit").Scan(&limit))
	assert.EqualValues(t, walSizeLimit, limit, "the writer connection carries the limit")
	const small = 1 << 20
	_, err := s.conn.ExecContext(ctx, fmt.Sprintf("PRAGMA journal_size_limit = %d", small))
	require.NoError(t, err)

	ran := make(chan struct{}, 1)
	s.ckptRan = func() { ran <- struct{}{} }
	step := time.Second // every commit comes after a pause, so commits kick the checkpointer
	s.now = fakeClock(&step)
	cat := Catalogue()
	record := func(n int) (checkpoints int) {
		for i := range n {
			require.NoError(t, a.Record(ctx, validEvent(cat[i%len(cat)])))
			if s.commitsSinceCkpt == 0 {
				<-ran
				checkpoints++
			}
		}
		return checkpoints
	}

	reader, err := openPlainDB(t, cfg.DBPath).BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	require.NoError(t, err)
	var n int
	require.NoError(t, reader.QueryRow(`SELECT COUNT(*) FROM audit_log`).Scan(&n))
	require.Positive(t, record(3*ckptCommits), "checkpoints ran while the read held the WAL")
	held := walSize(t, cfg.DBPath)
	require.Greater(t, held, int64(4*small), "the WAL grew while the read held it")

	require.NoError(t, reader.Rollback())
	require.Positive(t, record(ckptCommits+1), "a checkpoint after the read ended")
	record(1) // starts the WAL over, and cuts it
	assert.LessOrEqual(t, walSize(t, cfg.DBPath), int64(small)+16*walFrameSize, "cut back from %d bytes", held)
}
