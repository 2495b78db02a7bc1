package audit

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-sqlite3"
)

// sqliteTimeLayout is how TREK's CURRENT_TIMESTAMP default stores time.
const sqliteTimeLayout = "2006-01-02 15:04:05"

// insertChunks are the row counts of the prepared multi-row INSERTs. A batch
// is written as a sum of them, largest first, so a handful of statements
// serve every batch size.
var insertChunks = [...]int{64, 16, 4, 1}

// sqliteStore keeps events in TREK's audit_log table.
type sqliteStore struct {
	db      *sql.DB
	ownDB   bool // opened from DBPath, so ours to close
	dsnPath string
	busy    time.Duration
	sync    string
	conn    *sql.Conn // the one writer connection; nil until first use or after a fault
	// spare is a connection of the pool held from a fault until the next
	// writer is set up: SQLite deletes the -wal with the last connection
	// to close and makes a new one with the next to open, which, from the
	// file alone, would look like a restore (see holdWAL).
	spare *sql.Conn
	stmts map[int]*sql.Stmt
	// listRefused, on a read-only store, says what the admin list reads
	// that the database lacks (see checkSchema): List answers it, Verify
	// needs none of it.
	listRefused error
	// hasUsers is whether TREK's users table exists, as Open found it or
	// lookForUsers since; usersCheck counts the commits since it looked.
	hasUsers   bool
	usersCheck int
	actions    actionSet // for the list's category filter
	chain      *chainer  // nil only in benchmarks measuring what the chain costs
	hostFK     bool      // foreign_keys as the writer connection came

	named map[string]*sql.Stmt // the other statements of a batch, prepared once
	args  []any                // insert's argument list, reused
	// head is where the last batch left the ids and the chain: valid from
	// the library's own commit on. A transaction reuses it while PRAGMA
	// data_version shows no commit by another connection; a lone event,
	// while audit_log's newest row is still the one it describes.
	head struct {
		valid   bool
		version int64
		insertCursor
	}
	// aloneCommits counts the events committed by insertAlone, for tests.
	aloneCommits int
	// With a database of its own, the store runs checkpoints on a second
	// connection, off the writer's path; sinceCkpt and commitsSinceCkpt
	// count the events and the commits since the last kick. paused is
	// whether the writer had been idle for ckptPause before the batch it
	// is writing, and lastEnd when its last commit ended, both by the
	// clock now (time.Now; a fake one in tests).
	ckptKick                    chan struct{}
	ckptDone                    chan struct{}
	sinceCkpt, commitsSinceCkpt int
	paused                      bool
	lastEnd                     time.Time
	now                         func() time.Time
	// ckptRan, when set (by tests), is called after each checkpoint.
	ckptRan func()
	// planned, when set (by tests), is told how each page filtered by
	// time alone is read: walked (true) or sorted (see smallWindow).
	planned func(walk bool)
	// windowCap, when set (by tests), stands for boundedWindow, and
	// bounded is told whether windowIDs bounded a page's ids.
	windowCap int64
	bounded   func(bool)

	files fileWatch // whether travel.db is still the file Open found
}

func openSQLite(cfg Config, actions actionSet, key []byte) (*sqliteStore, error) {
	s := &sqliteStore{db: cfg.DB, busy: cfg.BusyTimeout, sync: cfg.Synchronous, actions: actions, chain: newChainer(key), now: time.Now}
	if s.db == nil {
		if err := heldOpen(cfg.DBPath); err != nil {
			return nil, err
		}
		db, err := openDBFile(cfg)
		if err != nil {
			return nil, err
		}
		s.db, s.ownDB, s.dsnPath = db, true, cfg.DBPath
	}
	ctx := context.Background()
	if err := s.connect(ctx); err != nil {
		s.close()
		if hint, se := readOnlyMediaHint(cfg, err); hint != "" {
			return nil, fmt.Errorf("%w: opening %s read-only: %s (SQLite: %w)", ErrStore, cfg.DBPath, hint, se)
		}
		if s.ownDB {
			return nil, fmt.Errorf("%w: %s: %w", ErrStore, quoted(cfg.DBPath), err)
		}
		return nil, fmt.Errorf("%w: %w", ErrStore, err)
	}
	if cfg.ReadOnly {
		misses, err := checkSchema(ctx, s.conn)
		if err != nil {
			s.close()
			return nil, err
		}
		if len(misses) > 0 {
			s.listRefused = fmt.Errorf("%w: schema: the library's %s missing, which the admin list reads; a read-only open "+
				"changes nothing, so open it read-write once (TREK's server does), which makes them again",
				ErrStore, strings.Join(misses, ", ")+" "+isAre(len(misses)))
		}
	} else {
		if s.ownDB {
			if err := s.useWAL(ctx); err != nil {
				s.close()
				return nil, err
			}
		}
		if err := migrate(ctx, s.conn); err != nil {
			s.close()
			return nil, err
		}
	}
	if err := s.conn.QueryRowContext(ctx, usersTableQuery).Scan(&s.hasUsers); err != nil {
		s.close()
		return nil, fmt.Errorf("%w: %w", ErrStore, err)
	}
	if !cfg.ReadOnly {
		given := ""
		if s.ownDB {
			given, _ = filepath.Abs(cfg.DBPath)
		}
		if err := s.files.start(ctx, s.conn, given); err != nil {
			s.close()
			return nil, fmt.Errorf("%w: %w", ErrStore, err)
		}
		s.files.stillThere = s.stillThere
	}
	if s.ownDB && !cfg.ReadOnly {
		s.ckptKick, s.ckptDone = make(chan struct{}, 1), make(chan struct{})
		go s.checkpointer()
	}
	return s, nil
}

// openDBFile opens the library's own handle on cfg.DBPath. Read-write, it
// creates the file and its folder when missing; read-only, it creates
// nothing and a missing file is an error.
func openDBFile(cfg Config) (*sql.DB, error) {
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(cfg.BusyTimeout.Milliseconds()))
	if cfg.ReadOnly {
		if st, err := os.Stat(cfg.DBPath); err != nil {
			return nil, fmt.Errorf("%w: database %q: %w", ErrStore, cfg.DBPath, err)
		} else if st.IsDir() {
			return nil, fmt.Errorf("%w: database %q is a folder", ErrStore, cfg.DBPath)
		}
		q.Set("mode", "ro")
	} else {
		dir := filepath.Dir(cfg.DBPath)
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("%w: creating database folder %q: %w", ErrStore, dir, err)
		}
		// Create the file ourselves: the error then names the real cause
		// (SQLite reports a folder it may not write to as "no such file"),
		// and the audit data is not left readable by every local user.
		if _, err := os.Stat(cfg.DBPath); errors.Is(err, os.ErrNotExist) {
			f, err := os.OpenFile(cfg.DBPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
			if err != nil && !errors.Is(err, os.ErrExist) {
				return nil, fmt.Errorf("%w: database %q cannot be created (read-only folder?): %w", ErrStore, cfg.DBPath, err)
			}
			if f != nil {
				f.Close()
			}
		}
		q.Set("_synchronous", cfg.Synchronous)
	}
	// Absolute, so that a connection opened after the process changed
	// its working directory opens the same file; cleaned, since in a URI a
	// path that begins with "//" would name a host (//srv/trek/travel.db:
	// host "srv").
	path, err := filepath.Abs(cfg.DBPath)
	if err != nil {
		return nil, fmt.Errorf("%w: database %q: %w", ErrStore, cfg.DBPath, err)
	}
	db, err := sql.Open("sqlite3", "file:"+escapePath(path)+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("%w: opening %q: %w", ErrStore, cfg.DBPath, err)
	}
	return db, nil
}

// readOnlyMediaHint explains a read-only Open of a database file that
// SQLite cannot open although it is there: in WAL mode a reader needs the
// -wal and -shm files beside it, which SQLite makes when they are missing
// (a database closed cleanly leaves none), and cannot where nothing may be
// written, as on read-only media or in a folder the user may not write to;
// and SQLite's own error, whose text ("no such file", "attempt to write a
// readonly database") would point elsewhere. A file the user may not read
// is said to be that instead. "" where neither is the case.
func readOnlyMediaHint(cfg Config, err error) (string, error) {
	var se sqlite3.Error
	if !cfg.ReadOnly || cfg.DB != nil || !errors.As(err, &se) || (se.Code != sqlite3.ErrCantOpen && se.Code != sqlite3.ErrReadonly) {
		return "", nil
	}
	f, oerr := os.Open(cfg.DBPath)
	if oerr != nil {
		if errors.Is(oerr, fs.ErrPermission) {
			return "the file cannot be read by this user (permission denied)", se
		}
		return "", nil
	}
	f.Close()
	if _, serr := os.Stat(cfg.DBPath + "-shm"); !errors.Is(serr, fs.ErrNotExist) {
		return "", nil
	}
	return fmt.Sprintf("SQLite needs %s-wal and %s-shm beside it, which are missing and cannot be made there "+
		"(read-only media, or a folder this user may not write to?); copy them with the database, or open a copy on a writable disk",
		filepath.Base(cfg.DBPath), filepath.Base(cfg.DBPath)), se
}

// useWAL puts the database in WAL mode, so that TREK's readers and the
// audit writer do not block each other. The mode is kept in the file, so this
// is needed once; but switching takes a lock that SQLite's busy handler does
// not wait for, so several processes opening a new file at once retry here
// until the busy timeout.
func (s *sqliteStore) useWAL(ctx context.Context) error {
	deadline := time.Now().Add(s.busy)
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		var mode string
		err := s.conn.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode)
		if err == nil && strings.EqualFold(mode, "wal") {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("journal mode stays %q", mode)
		}
		var se sqlite3.Error
		if !errors.As(err, &se) || (se.Code != sqlite3.ErrBusy && se.Code != sqlite3.ErrLocked) || time.Now().After(deadline) {
			return fmt.Errorf("%w: %w", ErrStore, describe("setting WAL mode", err))
		}
		time.Sleep(wait)
	}
}

// escapePath keeps a file name with '?' or '#' from being read as DSN
// parameters.
func escapePath(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
}

// connect takes the writer connection and sets it up for durable writes.
func (s *sqliteStore) connect(ctx context.Context) error {
	// The spare held since a fault is let go only once the writer is set
	// up, so that a connection of the library's holds the -wal throughout;
	// first, though, where the pool has no room for the writer beside it.
	// It never becomes the writer: taken when the fault happened, it may
	// have been opened read-only, say, as the one that failed was.
	if s.spare != nil && !poolHasRoom(s.db) {
		s.dropSpare()
		s.letGoWAL()
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return describe("opening the database", err)
	}
	// A connection set up halfway is discarded, not handed back to a
	// host's pool with the library's settings on it.
	discard := func() {
		conn.Raw(func(any) error { return driver.ErrBadConn })
		conn.Close()
	}
	// Foreign keys are checked by fillActors instead (a missing user is
	// stored as NULL); enforcing them here would fail on a database with no
	// users table. The setting is per connection, and reset restores it
	// before a host's connection goes back to its pool.
	//
	// temp_store MEMORY keeps each INSERT's statement journal in memory. A
	// batch's multi-row INSERT journals the pages it changes (a leaf of the
	// user and IP indexes for nearly every row), and past 64 KiB SQLite
	// would move that journal to a new file in /var/tmp: created, filled
	// and deleted on every commit (some 160 system calls on the writer's
	// path), and audit pages copied outside data/. In memory it costs a
	// few hundred KiB while a batch is written, and Record under load is
	// about a third faster. (reset discards the
	// connection, so this never reaches a host's pool.)
	if err := conn.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&s.hostFK); err != nil {
		discard()
		return describe("reading PRAGMA foreign_keys", err)
	}
	for _, p := range []string{
		fmt.Sprintf("PRAGMA busy_timeout = %d", s.busy.Milliseconds()),
		"PRAGMA synchronous = " + s.sync,
		"PRAGMA foreign_keys = OFF",
		"PRAGMA temp_store = MEMORY",
		s.autocheckpoint(),
		fmt.Sprintf("PRAGMA journal_size_limit = %d", walSizeLimit),
	} {
		if _, err := conn.ExecContext(ctx, p); err != nil {
			discard()
			return describe(p, err)
		}
	}
	s.conn = conn
	s.dropSpare()
	s.stmts = make(map[int]*sql.Stmt, len(insertChunks))
	s.named = make(map[string]*sql.Stmt, 5)
	return nil
}

// autocheckpoint is the writer connection's wal_autocheckpoint: SQLite's
// default on a host's handle; with a database of its own, where the
// checkpointer does the work, a backstop that bounds the WAL (8,000 pages,
// about 33 MB) should the checkpointer fall behind.
//
// The checkpointer falls behind whenever the writer never pauses: SQLite
// can only start the WAL over at a write that finds every page of it
// copied, and a checkpoint beside a busy writer always ends a few commits
// short. The backstop is then what starts the WAL over, from the writer's
// connection, which copies what the checkpointer left and syncs the
// database file on the writer's path. At 4,000 pages that happened often
// enough under load at synchronous=NORMAL to cost 64 busy callers about
// 15% of their events a second (three interleaved runs); at 8,000 it
// cost nothing the runs could show.
func (s *sqliteStore) autocheckpoint() string {
	if s.ownDB {
		return "PRAGMA wal_autocheckpoint = 8000"
	}
	return "PRAGMA wal_autocheckpoint = 1000"
}

// walSizeLimit is the writer connection's journal_size_limit. SQLite
// starts the WAL over from its beginning once a checkpoint has copied all
// of it, but never makes the file smaller: a WAL that grew while a long
// read held it (an export of the whole log beside a busy server, say)
// would keep its largest size for good. With this limit, the first commit
// after the WAL starts over cuts the file back to it. The checkpointer
// keeps the WAL within the backstop of 8,000 pages (about 33 MB) while
// nothing holds it, so the limit never cuts a file that will only grow
// again.
const walSizeLimit = 64 << 20

// ckptEvery, ckptCommits and ckptPause say when the checkpointer copies
// the WAL into the database file: after ckptEvery committed events, or
// after ckptCommits commits once the writer has paused for ckptPause.
//
// A lone event's commit writes eight pages to the WAL (its row, four index
// entries, the two count rows, sqlite_sequence), and a shared commit of 60
// events some 20 to 100. Counting events alone, 2,048 lone events came to
// 17,000 pages, past the backstop: the checkpointer never ran before the
// writer's own checkpoint, and the WAL grew to 66 MB on an instance with
// one event a minute. Counting commits keeps it near SQLite's default of
// 1,000 pages there, since a checkpoint made while the writer pauses lets
// the next commit start the WAL over. Back to back, a checkpoint cannot
// (see autocheckpoint) and only adds its fsyncs to the writer's: kicked
// every 100 commits there, one caller's events at synchronous=FULL came 3
// to 7% slower (five interleaved runs), hence the pause.
const (
	ckptEvery   = 2048
	ckptCommits = 100
	ckptPause   = time.Millisecond
)

// checkpointer runs a PASSIVE checkpoint each time it is kicked, on a
// connection of its own: it never blocks the writer, and the writer's
// commits no longer pay for copying the WAL into the database file.
func (s *sqliteStore) checkpointer() {
	defer close(s.ckptDone)
	ctx := context.Background()
	var conn *sql.Conn
	for range s.ckptKick {
		// A checkpoint copies the WAL into the database file: never into
		// a file that a restore put in place of the one it belongs to.
		if s.files.check() != nil {
			continue
		}
		if conn == nil {
			var err error
			if conn, err = s.db.Conn(ctx); err != nil {
				continue
			}
		}
		var busy, frames, copied int
		if err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil {
			conn.Close()
			conn = nil
		}
		if s.ckptRan != nil {
			s.ckptRan()
		}
	}
	if conn != nil {
		conn.Close()
	}
}

// reset drops the writer connection after a fault, so the next batch starts
// from a clean one, holding another meanwhile where it can (holdWAL).
func (s *sqliteStore) reset() {
	if s.conn != nil {
		s.holdWAL()
	}
	s.dropWriter()
}

// dropWriter closes the writer connection's statements and discards the
// connection.
func (s *sqliteStore) dropWriter() {
	for _, st := range s.stmts {
		st.Close()
	}
	for _, st := range s.named {
		st.Close()
	}
	s.stmts, s.named = nil, nil
	s.head.valid = false
	if s.conn != nil {
		if s.hostFK {
			s.conn.ExecContext(context.Background(), "PRAGMA foreign_keys = ON")
		}
		// Discard the connection rather than hand it back to the pool,
		// where the next connect would get it again: what made it fail (a
		// read-only open, a per-connection limit, a file replaced on disk)
		// must not come back with it.
		s.conn.Raw(func(any) error { return driver.ErrBadConn })
		s.conn.Close()
		s.conn = nil
		if s.spare == nil {
			s.letGoWAL()
		}
	}
}

// spareWait bounds how long holdWAL waits for a connection of a pool that
// looked to have one free: another goroutine may have taken it first.
const spareWait = 10 * time.Millisecond

// holdWAL takes a connection of the pool, where one is free at once, to
// hold while the writer's is down after a fault, so that the -wal the
// library watches stays the same file. Without it, the -wal lives only as
// long as some connection is open: a host's pool that closes its idle
// connections meanwhile deletes it, and one it opens before the next batch
// makes a new one, which is what a restore leaves too (see loose). A pool
// with every connection in use is not waited for, on the writer's path:
// the -wal is then let go as before.
func (s *sqliteStore) holdWAL() {
	if s.spare != nil || !poolHasRoom(s.db) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), spareWait)
	defer cancel()
	if conn, err := s.db.Conn(ctx); err == nil {
		s.spare = conn
	}
}

// poolHasRoom reports whether db would give a connection without waiting
// for one to be given back: one is idle, or the limit allows another.
func poolHasRoom(db *sql.DB) bool {
	st := db.Stats()
	return st.MaxOpenConnections <= 0 || st.InUse < st.MaxOpenConnections
}

// dropSpare discards the spare connection, if any, as reset discards the
// writer's: taken when a fault happened, it may carry what caused it.
func (s *sqliteStore) dropSpare() {
	if s.spare == nil {
		return
	}
	s.spare.Raw(func(any) error { return driver.ErrBadConn })
	s.spare.Close()
	s.spare = nil
}

// letGoWAL tells the file watch that no connection of the library's holds
// the -wal any more: if no other of the pool is open, SQLite deleted it
// with the last one, and the next connection makes a new one (forgetWAL);
// else it stays while they do (loosen).
func (s *sqliteStore) letGoWAL() {
	if s.db.Stats().OpenConnections == 0 {
		s.files.forgetWAL()
	} else {
		s.files.loosen()
	}
}

// failed deals with the writer connection after a batch failed with err,
// inTx if within the batch's transaction. Another writer holding the lock
// past the busy timeout leaves the connection as good as it was: it is
// rolled back and kept, so that the next batch waits on it for the
// library's BusyTimeout, not on a new one, whose setup (the host's DSN
// settings, under the host's busy timeout) may wait for the same lock far
// longer. Any other fault, or a rollback that fails, discards it.
func (s *sqliteStore) failed(err error, inTx bool) {
	s.head.valid = false
	var se sqlite3.Error
	if errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked) {
		if !inTx {
			return
		}
		if _, rerr := s.conn.ExecContext(context.Background(), "ROLLBACK"); rerr == nil {
			return
		}
	} else if inTx {
		s.conn.ExecContext(context.Background(), "ROLLBACK")
	}
	s.reset()
}

// abandon gives the writer connection up after a panic while it was in
// use. It may be inside a transaction, holding SQLite's write lock, and
// after a panic in the driver database/sql may never hand it back, so
// that closing it would block. A goroutine of its own rolls it back and
// closes it: if that never ends, it blocks nothing but itself, and the
// writers after it fail with a busy error rather than hang. The next batch
// opens a fresh connection, reads the ids and the chain head again, and
// waits for the rollback at BEGIN IMMEDIATE as it would for any writer.
// Without this, the next lone event would be inserted into the open
// transaction and reported stored, then lost with the connection.
func (s *sqliteStore) abandon() {
	conn, stmts, named := s.conn, s.stmts, s.named
	s.conn, s.stmts, s.named, s.head.valid = nil, nil, nil, false
	// The connection is closed later, by a goroutine, perhaps the last:
	// the WAL may then be deleted and made anew (see forgetWAL). No spare
	// is held here (see holdWAL): that would ask the driver that just
	// panicked for a connection, and a panic in the pool's opening of one
	// leaves the pool counting a connection that does not exist, one
	// fewer for TREK for good.
	s.files.forgetWAL()
	if conn == nil {
		return
	}
	go func() {
		// The driver that panicked may panic again; this goroutine has
		// no one to tell.
		defer func() { _ = recover() }()
		conn.ExecContext(context.Background(), "ROLLBACK")
		for _, st := range stmts {
			st.Close()
		}
		for _, st := range named {
			st.Close()
		}
		conn.Raw(func(any) error { return driver.ErrBadConn })
		conn.Close()
	}()
}

func (s *sqliteStore) stmt(ctx context.Context, n int) (*sql.Stmt, error) {
	if st, ok := s.stmts[n]; ok {
		return st, nil
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO audit_log (id, created_at, user_id, action, resource, details, ip,
		actor_username, actor_email, actor_id, chain_seq, chain_mac) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?)")
	}
	st, err := s.conn.PrepareContext(ctx, b.String())
	if err != nil {
		return nil, err
	}
	s.stmts[n] = st
	return st, nil
}

// prepared returns query prepared on the writer connection, preparing it
// on first use.
func (s *sqliteStore) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.named[query]; ok {
		return st, nil
	}
	st, err := s.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s.named[query] = st
	return st, nil
}

func (s *sqliteStore) execPrepared(ctx context.Context, query string) error {
	st, err := s.prepared(ctx, query)
	if err == nil {
		_, err = st.ExecContext(ctx)
	}
	return err
}

func (s *sqliteStore) queryRowPrepared(ctx context.Context, query string, dest ...any) error {
	st, err := s.prepared(ctx, query)
	if err != nil {
		return err
	}
	return st.QueryRowContext(ctx).Scan(dest...)
}

const (
	nextIDQuery = `SELECT MAX(
			COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'), 0),
			COALESCE((SELECT MAX(id) FROM audit_log), 0)) + 1`
	chainHeadQuery = `SELECT chain_seq, chain_mac FROM audit_log
			WHERE chain_seq IS NOT NULL ORDER BY id DESC LIMIT 1`
)

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullInt(n int64) any {
	if n == 0 {
		return nil
	}
	return n
}

// insert writes the batch in one IMMEDIATE transaction, so it either waits
// for TREK's own writer (up to the busy timeout) at BEGIN or not at all.
// Holding the write lock, it assigns the ids itself (as AUTOINCREMENT
// would) so that each row's chain value can cover its id. The rows more
// hands it join the same transaction before COMMIT. A batch of one event
// with nothing to take in, while the head the last commit left is known,
// first tries insertAlone, which does the same in a single statement.
func (s *sqliteStore) insert(ctx context.Context, batch []*pending, more func() []*pending) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.abandon()
			panic(r)
		}
	}()
	if s.ckptKick != nil {
		s.paused = s.now().Sub(s.lastEnd) >= ckptPause
	}
	if err := s.files.check(); err != nil {
		return err
	}
	if s.conn == nil {
		// A host's pool may have no connection free (the library took
		// its own, once, and gave it back after a fault): waited for no
		// longer than another writer's lock would be, so that the batch
		// fails rather than hold every caller, and Close, for good.
		cctx, cancel := context.WithTimeout(ctx, s.busy)
		err := s.connect(cctx)
		cancel()
		if err != nil {
			return err
		}
	}
	if len(batch) == 1 && more == nil && s.head.valid {
		// An actor's missing names come from users; user_id is the
		// statement's own business (see aloneInsertUsersQuery).
		if p := batch[0]; p.username == "" || p.email == "" {
			if err := s.fillActors(ctx, batch); err != nil {
				s.reset()
				return describe("reading users", err)
			}
		}
		done, err := s.insertAlone(ctx, batch[0])
		if err != nil {
			s.failed(err, false)
			return err
		}
		if done {
			s.committed(1)
			return nil
		}
		// Another connection has written to audit_log since the last
		// batch: read the ids and the chain head again, in a transaction.
		s.head.valid = false
	}
	if err := s.execPrepared(ctx, "BEGIN IMMEDIATE"); err != nil {
		s.failed(err, false)
		return describe("beginning transaction", err)
	}
	defer func() {
		if err != nil {
			s.failed(err, true)
		}
	}()
	// The ids and the chain head are read again only when another
	// connection (TREK's own server, another process) has committed since
	// this one's last batch.
	var version int64
	if err := s.queryRowPrepared(ctx, "PRAGMA data_version", &version); err != nil {
		return describe("reading data_version", err)
	}
	c := s.head.insertCursor
	if !s.head.valid || s.head.version != version {
		var headMac string
		c.seq = 0
		if err := s.queryRowPrepared(ctx, nextIDQuery, &c.nextID); err != nil {
			return describe("reading the next id", err)
		}
		if s.chain != nil {
			switch err := s.queryRowPrepared(ctx, chainHeadQuery, &c.seq, &headMac); {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return describe("reading the chain head", err)
			}
		}
		c.prev, c.prevHex = zeroMac, ""
		if c.seq > 0 {
			c.prevHex = headMac
			if c.prev, err = hex.DecodeString(headMac); err != nil || len(c.prev) != len(zeroMac) {
				return fmt.Errorf("the chain head (seq %d) holds no valid mac; run Verify: %s", c.seq, quoted(headMac))
			}
		}
	}
	written := 0
	for rows := batch; len(rows) > 0; {
		if err := s.writeRows(ctx, rows, &c); err != nil {
			return err
		}
		written += len(rows)
		rows = nil
		if more != nil {
			rows = more()
		}
	}
	if err := s.execPrepared(ctx, "COMMIT"); err != nil {
		return describe("committing", err)
	}
	s.head.valid, s.head.version, s.head.insertCursor = true, version, c
	s.committed(written)
	return nil
}

// committed counts a commit of n events towards the next checkpoint and
// kicks the checkpointer when one is due (see ckptEvery). A kick the
// checkpointer is too busy to take is tried again at the next commit.
func (s *sqliteStore) committed(n int) {
	s.files.committed(s.head.nextID-1, s.head.prevHex)
	if !s.hasUsers {
		s.lookForUsers()
	}
	if s.ckptKick == nil {
		return
	}
	s.sinceCkpt += n
	s.commitsSinceCkpt++
	s.lastEnd = s.now()
	if s.sinceCkpt >= ckptEvery || (s.paused && s.commitsSinceCkpt >= ckptCommits) {
		select {
		case s.ckptKick <- struct{}{}:
			s.sinceCkpt, s.commitsSinceCkpt = 0, 0
		default:
		}
	}
}

// usersTableQuery tells whether TREK's users table exists.
// rowCountQuery reads audit_log's row count, which the triggers keep
// exact: COUNT(*) would read the whole table.
const rowCountQuery = `SELECT n FROM audit_log_count WHERE id = 1`

const usersTableQuery = `SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'users')`

// usersRecheck is how many commits apart a store without TREK's users
// table looks for it again.
const usersRecheck = 100

// lookForUsers notices a users table created after Open: a TREK server
// that opens the library before its own first migration would otherwise
// record, until its next restart, events whose actors take no names from
// users and whose user_id is kept for accounts that no longer exist. It
// looks every usersRecheck commits, a statement a hundred commits apart
// for the library's own database, which never has the table.
func (s *sqliteStore) lookForUsers() {
	if s.usersCheck++; s.usersCheck < usersRecheck {
		return
	}
	s.usersCheck = 0
	var has bool
	if err := s.conn.QueryRowContext(context.Background(), usersTableQuery).Scan(&has); err == nil {
		s.hasUsers = has
	}
}

// chainedTail reads the newest chained rows of audit_log, newest first
// (see settleChainKey).
func (s *sqliteStore) chainedTail(ctx context.Context) ([]*chainRow, error) {
	return chainedTail(ctx, s.conn)
}

// stillThere reports whether audit_log still holds row id with chain
// value mac, read through a new connection of the pool (the writer has
// none when fileWatch asks). Only where the pool holds no connection: one
// opened before the -wal went may still read the old one (a restore that
// deleted it under an open connection), and would find the row there
// whatever the file now holds. Where SQLite itself deleted the -wal, with
// the last connection of every process, none is left.
func (s *sqliteStore) stillThere(id int64, mac string) (bool, error) {
	if s.db.Stats().OpenConnections > 0 {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.busy)
	defer cancel()
	var there bool
	err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM audit_log WHERE id = ? AND chain_mac = ?)`, id, mac).Scan(&there)
	return there, err
}

// chainedTail reads the newest chainTailLen chained rows of db, newest
// first.
func chainedTail(ctx context.Context, db queryer) ([]*chainRow, error) {
	rows, err := db.QueryContext(ctx, `SELECT `+chainRowCols+` FROM audit_log
		WHERE chain_seq IS NOT NULL ORDER BY id DESC LIMIT ?`, chainTailLen)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var tail []*chainRow
	for rows.Next() {
		r := new(chainRow)
		if _, err := scanChainRow(rows, r); err != nil {
			return nil, err
		}
		tail = append(tail, r)
	}
	return tail, rows.Err()
}

// insertAlone commits a batch of one event as a single guarded INSERT,
// without BEGIN, PRAGMA data_version and COMMIT: a lone caller's event
// then costs one statement, as a plain autocommit insert does. The guard,
// evaluated under the write lock the INSERT takes, lets the row in only
// if audit_log is as the library's last commit left it: sqlite_sequence
// still at that commit's last id (no one has inserted since), that row
// still the newest (none deleted or moved above it) and still holding its
// chain position and value. Otherwise nothing is written and it reports false, and insert takes the
// transaction path, which reads the head again. The id and chain value
// are therefore always those the transaction path would have given.
func (s *sqliteStore) insertAlone(ctx context.Context, p *pending) (bool, error) {
	query := aloneInsertQuery
	if s.hasUsers {
		query = aloneInsertUsersQuery
	}
	st, err := s.prepared(ctx, query)
	if err != nil {
		return false, describe("preparing insert", err)
	}
	c := s.head.insertCursor
	last := c.nextID - 1
	var lastSeq, lastMac any
	if s.chain != nil && c.seq > 0 {
		lastSeq, lastMac = c.seq, c.prevHex
	}
	if s.hasUsers {
		p.userGone = false // the statement looks the user row up itself
	}
	args := s.appendRow(s.args[:0], p, &c)
	defer func() { clear(args); s.args = args[:0] }()
	args = append(args, last, lastSeq, lastMac)
	res, err := st.ExecContext(ctx, args...)
	if err != nil {
		return false, describe("inserting", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, describe("inserting", err)
	}
	if n == 0 {
		return false, nil
	}
	s.head.insertCursor = c
	s.aloneCommits++
	return true, nil
}

// aloneInsertQuery is insertAlone's statement: one row, and the guard on
// what the library's last commit left (?13 its last id, ?14 and ?15 that
// row's chain position and value). Where TREK's users table exists,
// aloneInsertUsersQuery stores user_id only if the user row exists as the
// row is committed, and NULL otherwise, as TREK's ON DELETE SET NULL would
// have left it (the chain covers actor_id, not user_id).
const (
	aloneInsertCols = `INSERT INTO audit_log (id, created_at, user_id, action, resource, details, ip,
		actor_username, actor_email, actor_id, chain_seq, chain_mac)`
	aloneInsertGuard = `
		WHERE (SELECT seq FROM sqlite_sequence WHERE name = 'audit_log') = ?13
		AND (SELECT MAX(id) FROM audit_log) = ?13
		AND EXISTS (SELECT 1 FROM audit_log WHERE id = ?13 AND chain_seq IS ?14 AND chain_mac IS ?15)`
	aloneInsertQuery = aloneInsertCols + `
		SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12` + aloneInsertGuard
	aloneInsertUsersQuery = aloneInsertCols + `
		SELECT ?1, ?2, (SELECT id FROM users WHERE id = ?3), ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12` + aloneInsertGuard
)

// insertCursor is where a transaction's rows have got to: the next id, the
// last chain seq and its mac, raw and as stored (hex).
type insertCursor struct {
	nextID, seq int64
	prev        []byte
	prevHex     string
}

// writeRows inserts rows within the open transaction, as a few multi-row
// INSERTs, giving each its id and chain value from c and advancing c.
func (s *sqliteStore) writeRows(ctx context.Context, rows []*pending, c *insertCursor) error {
	if err := s.fillActors(ctx, rows); err != nil {
		return describe("reading users", err)
	}
	args := s.args[:0]
	defer func() { clear(args); s.args = args[:0] }()
	for rest := rows; len(rest) > 0; {
		n := chunkFor(len(rest))
		st, err := s.stmt(ctx, n)
		if err != nil {
			return describe("preparing insert", err)
		}
		args = args[:0]
		for _, p := range rest[:n] {
			args = s.appendRow(args, p, c)
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return describe("inserting", err)
		}
		rest = rest[n:]
	}
	return nil
}

// appendRow gives p the id and chain value that follow c, advances c, and
// appends p's twelve column values as the INSERTs bind them.
func (s *sqliteStore) appendRow(args []any, p *pending, c *insertCursor) []any {
	c.seq++
	p.id, p.seq = c.nextID, c.seq
	c.nextID++
	f := chainFields{seq: p.seq, id: p.id, createdAt: p.createdAt.Format(sqliteTimeLayout), actorID: p.userID,
		action: string(p.action), resource: ns(p.resource), details: ns(string(p.details)), ip: ns(p.ip),
		username: ns(p.username), email: ns(p.email)}
	var seq, mac any
	if s.chain != nil {
		c.prev = s.chain.next(c.prev, &f)
		p.mac = hex.EncodeToString(c.prev)
		c.prevHex = p.mac
		seq, mac = p.seq, p.mac
	}
	var details any
	if p.details != nil {
		details = f.details.s
	}
	userID := nullInt(p.userID)
	if p.userGone {
		userID = nil
	}
	return append(args, p.id, f.createdAt, userID, f.action, nullString(p.resource), details,
		nullString(p.ip), nullString(p.username), nullString(p.email), nullInt(p.userID), seq, mac)
}

func chunkFor(n int) int {
	for _, c := range insertChunks {
		if n >= c {
			return c
		}
	}
	return 1
}

// fillActors checks the batch's user ids against TREK's users table, in one
// query per batch. An actor's username or email the host left empty is
// taken from there (a host that passes the id and the name it has at hand
// still gets the email in the log line), so the log line and the entry
// name the user even after the user row is gone. An id with no user row
// (the account was deleted before its deletion was recorded) is stored as
// NULL, as TREK's ON DELETE SET NULL would have left it; actor_id and the
// snapshot keep who it was. That way one such event can never fail the
// batch it shares a commit with.
func (s *sqliteStore) fillActors(ctx context.Context, batch []*pending) error {
	if !s.hasUsers {
		return nil
	}
	var ids []any
	seen := map[int64]bool{}
	for _, p := range batch {
		if p.userID != 0 && !seen[p.userID] {
			seen[p.userID] = true
			ids = append(ids, p.userID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	found := make(map[int64][2]string, len(ids))
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		q := `SELECT id, username, email FROM users WHERE id IN (?` + strings.Repeat(",?", len(chunk)-1) + `)`
		rows, err := s.conn.QueryContext(ctx, q, chunk...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			var name, email sql.NullString
			if err := rows.Scan(&id, &name, &email); err != nil {
				rows.Close()
				return err
			}
			found[id] = [2]string{cleanText(name.String, maxActorLen), cleanText(email.String, maxActorLen)}
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
	}
	for _, p := range batch {
		if p.userID == 0 {
			continue
		}
		u, ok := found[p.userID]
		p.userGone = !ok
		if ok && p.username == "" {
			p.username = u[0]
		}
		if ok && p.email == "" {
			p.email = u[1]
		}
	}
	return nil
}

// describe names the step that failed and, for the faults an operator can
// fix, what the fault is.
func describe(step string, err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrBusy, sqlite3.ErrLocked:
			return fmt.Errorf("%s: database is locked by another writer past the busy timeout: %w", step, err)
		case sqlite3.ErrReadonly:
			return fmt.Errorf("%s: database is read-only: %w", step, err)
		case sqlite3.ErrFull:
			return fmt.Errorf("%s: database or disk is full: %w", step, err)
		case sqlite3.ErrCantOpen, sqlite3.ErrIoErr:
			switch se.SystemErrno {
			case syscall.EPERM, syscall.EACCES, syscall.EROFS:
				return fmt.Errorf("%s: database file is read-only (%v): %w", step, se.SystemErrno, err)
			case syscall.ENOSPC:
				return fmt.Errorf("%s: database or disk is full: %w", step, err)
			}
			return fmt.Errorf("%s: database file cannot be written: %w", step, err)
		}
	}
	return fmt.Errorf("%s: %w", step, err)
}

func (s *sqliteStore) close() error {
	if s.ckptKick != nil {
		close(s.ckptKick)
		<-s.ckptDone
		s.ckptKick = nil
	}
	replaced := s.files.check()
	if file := s.files.copiedOver(); file != nil && (s.ownDB || s.conn != nil || s.spare != nil) {
		// SQLite's last connection to close copies what is left in its
		// WAL into the database file, here the same file with a backup
		// copied over it, which would corrupt it. The connections are
		// kept open instead, untouched, until the process ends; nothing
		// more is written through them. Of a host's pool, those the
		// library holds, if any: the host's own are the host's to keep
		// open.
		if s.ownDB {
			keepOpen(file, s.db, s.conn, s.spare)
		} else {
			keepOpen(file, s.conn, s.spare)
		}
		s.conn, s.spare, s.stmts, s.named = nil, nil, nil, nil
		return fmt.Errorf("%w: %w; the library's connections to it stay open, unused, until the process ends, "+
			"since closing them would copy the old WAL into the restored file: restart the process before opening it again",
			ErrStore, replaced)
	}
	s.dropWriter()
	s.dropSpare()
	var err error
	if s.ownDB && s.db != nil {
		err = s.db.Close()
	}
	if replaced != nil {
		err = errors.Join(fmt.Errorf("%w: %w", ErrStore, replaced), err)
	}
	return err
}

// queryer is what queryStrings reads through: a *sql.DB or a *sql.Conn.
type queryer interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

// queryStrings returns the first column of every row q gives with args.
func queryStrings(ctx context.Context, db queryer, q string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		got = append(got, v)
	}
	return got, rows.Err()
}

// endRead ends a read transaction begun on conn with BEGIN. Background: the
// end must not depend on the caller's ctx, or a cancelled request would
// hand the pool a connection still inside a transaction; a connection
// whose transaction cannot end is dropped instead.
func endRead(conn *sql.Conn) {
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		conn.Raw(func(any) error { return driver.ErrBadConn })
	}
}
