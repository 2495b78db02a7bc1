package audit

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

// migration is one schema change. Each is idempotent on its own (it checks
// before it adds) and is recorded in audit_schema_migrations once applied,
// so opening a database twice, or a database TREK has changed meanwhile,
// is safe. Migrations only add: TREK's columns, tables and indexes are never
// dropped, rewritten or renamed, and audit rows are never deleted.
type migration struct {
	version int
	name    string
	apply   func(ctx context.Context, tx *sql.Conn) error
}

var migrations = []migration{
	{1, "audit_log as TREK creates it", func(ctx context.Context, tx *sql.Conn) error {
		return execAll(ctx, tx,
			`CREATE TABLE IF NOT EXISTS audit_log (
				id INTEGER PRIMARY KEY AUTOINCREMENT,
				created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
				user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
				action TEXT NOT NULL,
				resource TEXT,
				details TEXT,
				ip TEXT
			)`,
			`CREATE INDEX IF NOT EXISTS idx_audit_log_created ON audit_log(created_at DESC)`)
	}},
	{2, "actor snapshot columns", func(ctx context.Context, tx *sql.Conn) error {
		if err := addColumn(ctx, tx, "audit_log", "actor_username", "TEXT"); err != nil {
			return err
		}
		return addColumn(ctx, tx, "audit_log", "actor_email", "TEXT")
	}},
	{3, "exact row count kept by triggers", func(ctx context.Context, tx *sql.Conn) error {
		// COUNT(*) reads the whole table; this counter stays exact under
		// TREK's own inserts too, because the triggers fire for every writer.
		return execAll(ctx, tx,
			`CREATE TABLE IF NOT EXISTS audit_log_count (
				id INTEGER PRIMARY KEY CHECK (id = 1),
				n INTEGER NOT NULL
			)`,
			`DROP TRIGGER IF EXISTS audit_log_count_insert`,
			`DROP TRIGGER IF EXISTS audit_log_count_delete`,
			`INSERT OR REPLACE INTO audit_log_count (id, n) SELECT 1, COUNT(*) FROM audit_log`,
			`CREATE TRIGGER audit_log_count_insert AFTER INSERT ON audit_log
				BEGIN UPDATE audit_log_count SET n = n + 1 WHERE id = 1; END`,
			`CREATE TRIGGER audit_log_count_delete AFTER DELETE ON audit_log
				BEGIN UPDATE audit_log_count SET n = n - 1 WHERE id = 1; END`)
	}},
	{4, "indexes for the admin list's filters", func(ctx context.Context, tx *sql.Conn) error {
		return execAll(ctx, tx,
			`CREATE INDEX IF NOT EXISTS idx_audit_log_action_id ON audit_log(action, id)`,
			`CREATE INDEX IF NOT EXISTS idx_audit_log_user_id ON audit_log(user_id, id)`,
			`CREATE INDEX IF NOT EXISTS idx_audit_log_ip_id ON audit_log(ip, id)`)
	}},
	{5, "tamper-evidence chain columns", func(ctx context.Context, tx *sql.Conn) error {
		for _, c := range [][2]string{{"actor_id", "INTEGER"}, {"chain_seq", "INTEGER"}, {"chain_mac", "TEXT"}} {
			if err := addColumn(ctx, tx, "audit_log", c[0], c[1]); err != nil {
				return err
			}
		}
		return nil
	}},
	{6, "row count per action kept by triggers", func(ctx context.Context, tx *sql.Conn) error {
		// The admin list's total under an action filter, without counting
		// a quarter of the table when one key is common.
		return execAll(ctx, tx,
			`CREATE TABLE IF NOT EXISTS audit_log_action_count (
				action TEXT PRIMARY KEY,
				n INTEGER NOT NULL
			) WITHOUT ROWID`,
			`DROP TRIGGER IF EXISTS audit_log_action_count_insert`,
			`DROP TRIGGER IF EXISTS audit_log_action_count_delete`,
			`DROP TRIGGER IF EXISTS audit_log_action_count_update`,
			`DELETE FROM audit_log_action_count`,
			// action is NOT NULL in TREK's table; one made by hand may
			// hold NULLs, which have no count and no key to filter by.
			`INSERT INTO audit_log_action_count (action, n) SELECT action, COUNT(*) FROM audit_log WHERE action IS NOT NULL GROUP BY action`,
			`CREATE TRIGGER audit_log_action_count_insert AFTER INSERT ON audit_log WHEN NEW.action IS NOT NULL BEGIN
				INSERT INTO audit_log_action_count (action, n) VALUES (NEW.action, 1)
					ON CONFLICT (action) DO UPDATE SET n = n + 1;
			END`,
			`CREATE TRIGGER audit_log_action_count_delete AFTER DELETE ON audit_log WHEN OLD.action IS NOT NULL BEGIN
				UPDATE audit_log_action_count SET n = n - 1 WHERE action = OLD.action;
			END`,
			`CREATE TRIGGER audit_log_action_count_update AFTER UPDATE OF action ON audit_log
				WHEN OLD.action IS NOT NEW.action BEGIN
				UPDATE audit_log_action_count SET n = n - 1 WHERE action = OLD.action;
				INSERT INTO audit_log_action_count (action, n) SELECT NEW.action, 1 WHERE NEW.action IS NOT NULL
					ON CONFLICT (action) DO UPDATE SET n = n + 1;
			END`)
	}},
	{7, "acknowledged chain heads", func(ctx context.Context, tx *sql.Conn) error {
		// Acknowledge's records (ack.go); each row carries a tag under
		// the chain key, so writing the database is not enough to add one.
		return execAll(ctx, tx, `CREATE TABLE IF NOT EXISTS audit_chain_acks (
			id INTEGER PRIMARY KEY,
			created_at TEXT NOT NULL,
			reason TEXT NOT NULL,
			head_id INTEGER NOT NULL,
			head_seq INTEGER NOT NULL,
			head_mac TEXT NOT NULL,
			supersedes TEXT NOT NULL,
			digest TEXT NOT NULL,
			anchors TEXT NOT NULL,
			tag TEXT NOT NULL
		)`)
	}},
	{8, "prunings", func(ctx context.Context, tx *sql.Conn) error {
		// Prune's records (prune.go), tagged under the chain key as
		// acknowledgements are.
		return execAll(ctx, tx, `CREATE TABLE IF NOT EXISTS audit_prunes (
			id INTEGER PRIMARY KEY,
			created_at TEXT NOT NULL,
			reason TEXT NOT NULL,
			before_time TEXT NOT NULL,
			rows INTEGER NOT NULL,
			oldest TEXT NOT NULL,
			newest TEXT NOT NULL,
			first_id INTEGER NOT NULL,
			first_seq INTEGER NOT NULL,
			prev_mac TEXT NOT NULL,
			tag TEXT NOT NULL
		)`)
	}},
}

// migrate brings the schema up to date in one transaction.
func migrate(ctx context.Context, conn *sql.Conn) error {
	// IMMEDIATE: two processes opening the same new file must not both
	// decide to apply the same migration.
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("%w: schema: %w", ErrStore, describe("beginning migration", err))
	}
	committed := false
	defer func() {
		if !committed {
			conn.ExecContext(ctx, "ROLLBACK")
		}
	}()
	tx := conn
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS audit_schema_migrations (
		version INTEGER PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at TEXT NOT NULL
	)`); err != nil {
		return fmt.Errorf("%w: schema: %w", ErrStore, describe("creating audit_schema_migrations", err))
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM audit_schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("%w: schema: %w", ErrStore, err)
	}
	if err := newerSchema(current); err != nil {
		return err
	}
	// The bookkeeping says what was applied, not what is still there: a
	// table of the library's dropped (its triggers would then fail every
	// insert of TREK's), or audit_log rebuilt by TREK's own migration
	// (the library's columns, triggers and indexes gone). Every migration
	// is idempotent, so whatever is missing is made again, counts included.
	missing, err := missingSchema(ctx, tx)
	if err != nil {
		return fmt.Errorf("%w: schema: %w", ErrStore, describe("reading the schema", err))
	}
	if len(missing) > 0 {
		current = 0
	}
	for _, m := range migrations {
		if m.version <= current {
			continue
		}
		if err := m.apply(ctx, tx); err != nil {
			return fmt.Errorf("%w: schema migration %d (%s): %w", ErrStore, m.version, m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO audit_schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.version, m.name, time.Now().UTC().Format(sqliteTimeLayout)); err != nil {
			return fmt.Errorf("%w: schema migration %d: %w", ErrStore, m.version, err)
		}
	}
	// What is still missing is in the way of what the migrations make: a
	// view or an index by the name of one of the library's tables, say,
	// which CREATE ... IF NOT EXISTS passes over.
	if len(missing) > 0 {
		if missing, err = missingSchema(ctx, tx); err != nil {
			return fmt.Errorf("%w: schema: %w", ErrStore, describe("reading the schema", err))
		}
		if len(missing) > 0 {
			return fmt.Errorf("%w: schema: the library's %s missing and cannot be made: something else by that name is in the way "+
				"(the schema was changed by hand)", ErrStore, strings.Join(missing, ", ")+" "+isAre(len(missing)))
		}
	}
	// The library gives ids as AUTOINCREMENT would, from sqlite_sequence,
	// which SQLite makes with the first table declared so. TREK's
	// audit_log is; one made by hand may not be, in a file with no other.
	var seq bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence')`).Scan(&seq); err != nil {
		return fmt.Errorf("%w: schema: %w", ErrStore, err)
	}
	if !seq {
		return fmt.Errorf("%w: schema: audit_log was created without AUTOINCREMENT, which TREK's schema has, "+
			"and the database has no sqlite_sequence, from which the library gives ids", ErrStore)
	}
	if _, err := tx.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("%w: schema: %w", ErrStore, describe("committing migration", err))
	}
	committed = true
	return nil
}

// checkSchema is what a read-only Open does instead of migrate: it
// changes nothing, so every migration must have been applied (a database
// an older library keeps is not migrated behind its back by a newer
// trek-audit acknowledge), and what a reader needs must be in place:
// audit_log with the library's columns, and audit_chain_acks and
// audit_prunes as the library makes them. The rest (the row counts, their triggers, the
// indexes) the admin list reads, but verify does not: a read-only Open
// goes on without it, so that one more write to travel.db (DELETE FROM
// audit_log_count, a trigger dropped) cannot stop verify from walking a
// chain it would find broken, and List refuses instead. TREK's server
// makes it all again at its next start.
//
// It returns what the admin list would miss of the rest, to refuse List
// with (see sqliteStore.listRefused).
func checkSchema(ctx context.Context, conn *sql.Conn) (listMisses []string, err error) {
	var current int
	var has bool
	err = conn.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_schema_migrations')`).Scan(&has)
	if err == nil && has {
		err = conn.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM audit_schema_migrations`).Scan(&current)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: schema: %w", ErrStore, describe("reading audit_schema_migrations", err))
	}
	if err := newerSchema(current); err != nil {
		return nil, err
	}
	if want := migrations[len(migrations)-1].version; current < want {
		return nil, fmt.Errorf("%w: schema: the database is at version %d of the library's schema, which needs %d; "+
			"a read-only open changes nothing, so open it read-write once (TREK's server does)", ErrStore, current, want)
	}
	missing, err := missingSchema(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("%w: schema: %w", ErrStore, describe("reading the schema", err))
	}
	needed := func(m string) bool {
		return strings.HasPrefix(m, "column audit_log.") || strings.HasPrefix(m, "table audit_chain_acks") ||
			strings.HasPrefix(m, "table audit_prunes")
	}
	listMisses = slices.DeleteFunc(slices.Clone(missing), needed)
	missing = slices.DeleteFunc(missing, func(m string) bool { return !needed(m) })
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: schema: the library's %s missing; a read-only open changes nothing, "+
			"so open it read-write once (TREK's server does), which makes them again", ErrStore, strings.Join(missing, ", ")+" "+isAre(len(missing)))
	}
	return listMisses, nil
}

// newerSchema refuses a database that a newer build of the library has
// migrated, as after TREK is downgraded. Its rows may follow rules this
// build does not know (a new chain encoding, say): written to, they would
// mix two formats; read, they could be misjudged as tampered with or as
// whole. So neither kind of open goes on, and the error says why.
func newerSchema(current int) error {
	if known := migrations[len(migrations)-1].version; current > known {
		return fmt.Errorf("%w: schema: the database is at version %d of the library's schema, newer than the %d this build knows: "+
			"a newer TREK server has opened it; run that version again (or a later one), or restore a backup made before the upgrade. "+
			"If no newer server has run here, audit_schema_migrations was written by hand",
			ErrStore, current, known)
	}
	return nil
}

// schemaObjects are what the migrations make, by kind, in sqlite_master.
var schemaObjects = map[string][]string{
	"table": {"audit_log", "audit_log_count", "audit_log_action_count", "audit_chain_acks", "audit_prunes"},
	"index": {"idx_audit_log_created", "idx_audit_log_action_id", "idx_audit_log_user_id", "idx_audit_log_ip_id"},
	"trigger": {"audit_log_count_insert", "audit_log_count_delete",
		"audit_log_action_count_insert", "audit_log_action_count_delete", "audit_log_action_count_update"},
}

// schemaColumns are the columns the migrations add to audit_log.
var schemaColumns = []string{"actor_username", "actor_email", "actor_id", "chain_seq", "chain_mac"}

// missingSchema names what the migrations make that the database lacks:
// tables, indexes, triggers, audit_log's added columns, and the row that
// holds the row count.
func missingSchema(ctx context.Context, conn *sql.Conn) ([]string, error) {
	found, err := queryStrings(ctx, conn, `SELECT type || ' ' || name FROM sqlite_master WHERE type IN ('table', 'index', 'trigger')
		UNION ALL SELECT 'column ' || name FROM pragma_table_info('audit_log')`)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, s := range found {
		have[s] = true
	}
	var missing []string
	for _, kind := range []string{"table", "index", "trigger"} {
		for _, name := range schemaObjects[kind] {
			if !have[kind+" "+name] {
				missing = append(missing, kind+" "+name)
			}
		}
	}
	for _, name := range schemaColumns {
		if !have["column "+name] {
			missing = append(missing, "column audit_log."+name)
		}
	}
	for _, t := range []struct {
		name    string
		columns []string
	}{{"audit_chain_acks", ackColumns}, {"audit_prunes", pruneColumns}} {
		if !have["table "+t.name] {
			continue
		}
		what, err := tableIsNotOurs(ctx, conn, t.name, t.columns)
		if err != nil {
			return nil, err
		}
		if what != "" {
			missing = append(missing, "table "+t.name+" as the library makes it (found: "+what+")")
		}
	}
	if have["table audit_log_count"] {
		var n int
		if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log_count WHERE id = 1`).Scan(&n); err != nil {
			return nil, err
		}
		if n == 0 {
			missing = append(missing, "row count")
		}
	}
	return missing, nil
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

func execAll(ctx context.Context, tx *sql.Conn, stmts ...string) error {
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// addColumn adds a nullable column unless it is there already.
func addColumn(ctx context.Context, tx *sql.Conn, table, column, typ string) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?`, table, column).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, fmt.Sprintf(`ALTER TABLE %s ADD COLUMN %s %s`, table, column, typ))
	return err
}
