package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// fileWatch notices the database file being replaced on disk while the
// Auditor has it open, as a restore from a backup does when it renames a
// copy over travel.db, deletes it and copies one in, or copies one over it
// and deletes its -wal and -shm. SQLite keeps writing to the file it opened:
// after a rename or a delete, a file no path leads to any more, so that
// every event from then on would be reported stored and be lost; after a
// copy over it, through a WAL that belongs to the old content, which a
// checkpoint would then copy into the restored file and corrupt it. Once
// check has seen a replacement, every write is refused, and every read,
// until the Auditor is opened again.
//
// It compares files by identity (device and inode), looking at them only
// when their folder has changed (see folderMark). A copy over travel.db
// that leaves its -wal in place keeps both identities and goes unseen:
// SQLite's own rule, never to change a database file under an open
// connection, is the only safe one, and the README says to close the
// Auditor first.
type fileWatch struct {
	mu sync.Mutex
	// paths are the database file as SQLite opened it, symbolic links
	// resolved, and, when it differs, the path the Auditor was given
	// (Config.DBPath, made absolute): a restore replaces the one the
	// operator sees, which may be a link, or lie in a linked folder.
	paths   []watchedPath
	walPath string      // the -wal file beside the file SQLite opened
	db      os.FileInfo // the file SQLite opened, when the Auditor opened it
	// wal is the -wal as the writer connection found it, nil until it has
	// (see forgetWAL).
	wal os.FileInfo
	// loose: the writer dropped its connection while others stayed open,
	// and the store could hold none in its place (see
	// sqliteStore.holdWAL). Those keep wal, but may close (a host's pool
	// closing its idle ones) and take it with them, as SQLite does with
	// the last connection: a -wal gone, or another in its place, is then
	// a restore only if the library's last commit (lastID, with chain
	// value lastMac) is no longer in the database, which stillThere reads.
	loose      bool
	lastID     int64
	lastMac    string
	stillThere func(id int64, mac string) (bool, error)
	replaced   error // what check found, kept for good
	// walOnly is whether only the -wal was replaced: the database file
	// at path is still the one SQLite has open, its content copied over.
	walOnly bool
}

// watchedPath is a path that must lead to the database file, and its
// folder as check last saw it.
type watchedPath struct {
	path string
	dir  folderMark
}

// start remembers the database file conn has open: its path from SQLite
// itself (so that a host's handle is watched too), given (the path the
// Auditor opened, absolute; "" for a host's handle) where it differs, and
// the file and its -wal as they are now. An in-memory or temporary
// database, or one whose file cannot be looked at, is not watched.
func (w *fileWatch) start(ctx context.Context, conn *sql.Conn, given string) error {
	rows, err := conn.QueryContext(ctx, "PRAGMA database_list")
	if err != nil {
		return fmt.Errorf("reading PRAGMA database_list: %w", err)
	}
	defer rows.Close()
	var path string
	for rows.Next() {
		var seq int
		var name, file string
		if err := rows.Scan(&seq, &name, &file); err != nil {
			return fmt.Errorf("reading PRAGMA database_list: %w", err)
		}
		if name == "main" {
			path = file
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading PRAGMA database_list: %w", err)
	}
	if path == "" {
		return nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.paths = []watchedPath{{path: path}}
	if given != "" && given != path {
		w.paths = append(w.paths, watchedPath{path: given})
	}
	w.walPath, w.db = path+"-wal", st
	w.wal = w.statWAL()
	return nil
}

// folderMark is what a look at a folder saw, so that the next look can tell
// with one stat of the folder that no entry in it was created, removed or
// renamed since: each of those changes the folder's modification time (and
// its change time, which no one can set back, as a restore with rsync -a
// may set back the other). It is how the library notices trek.log moved
// away (sharedLog.reopenIfMoved) and travel.db replaced (fileWatch.check)
// before every write without asking those files for their times: on Linux
// 6.13 and later a file whose times have been read gets a fine-grained time
// on its next write, which dirties its inode after every batch, and each
// fsync of the database then waits for that inode's write too (measured: a
// quarter slower per event at synchronous=FULL with trek.log looked at; 6%
// with travel.db and its -wal). A change made just after a look may leave
// the folder's times as they were where timestamps are coarse (older
// kernels, FAT), so the folder is trusted only once its time is older than
// their granularity was when it was looked at.
type folderMark struct {
	seen    os.FileInfo
	settled bool // seen's time was older than its granularity when seen
}

// unchanged looks at dir and reports whether it is the folder m saw last,
// with the same times, and m could trust them. Otherwise it remembers dir
// as it is now and reports false: the caller looks at the files in it.
func (m *folderMark) unchanged(dir string) bool {
	cur, err := os.Stat(dir)
	if err == nil && m.seen != nil && m.settled && os.SameFile(m.seen, cur) &&
		cur.ModTime().Equal(m.seen.ModTime()) && changeTime(cur) == changeTime(m.seen) {
		return true
	}
	m.seen, m.settled = cur, false
	if err == nil {
		mt, now := cur.ModTime(), time.Now()
		m.settled = mt.Before(now.Add(-timeGranularity(mt)))
		if ct := changeTime(cur); ct != 0 {
			// Set back (rsync -a), the modification time says nothing
			// of when the folder last changed; the change time does.
			m.settled = m.settled && time.Unix(0, ct).Before(now.Add(-timeGranularity(time.Unix(0, ct))))
		}
	}
	return false
}

// timeGranularity bounds how far apart two modifications of a folder may
// be and still get the same time: a kernel tick where the time has a
// fraction of a second, two seconds (FAT) where it has none.
func timeGranularity(mt time.Time) time.Duration {
	if mt.Nanosecond() != 0 {
		return 100 * time.Millisecond
	}
	return 2 * time.Second
}

// statWAL returns the -wal file as it is now, nil if there is none.
func (w *fileWatch) statWAL() os.FileInfo {
	st, err := os.Stat(w.walPath)
	if err != nil {
		return nil
	}
	return st
}

// check reports why the database may no longer be written or read: a
// watched path no longer leads to the file SQLite has open, or its -wal is
// not the one the writer writes to. nil while they are (or when it is not
// watched).
func (w *fileWatch) check() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.paths) == 0 || w.replaced != nil {
		return w.replaced
	}
	// Replacing either file changes a folder; the files are looked at
	// only then (see folderMark). Every folder is looked at, so that each
	// mark is brought up to date.
	changed := false
	for i := range w.paths {
		if !w.paths[i].dir.unchanged(filepath.Dir(w.paths[i].path)) {
			changed = true
		}
	}
	if !changed {
		return nil
	}
	var what string
	for _, p := range w.paths {
		if st, err := os.Stat(p.path); errors.Is(err, fs.ErrNotExist) {
			what = "it was deleted"
		} else if err == nil && !os.SameFile(st, w.db) {
			what = "another file is at its path"
		}
		if what != "" {
			break
		}
	}
	if what == "" && w.wal != nil {
		if st, err := os.Stat(w.walPath); errors.Is(err, fs.ErrNotExist) {
			what = "its -wal file was deleted"
		} else if err == nil && !os.SameFile(st, w.wal) {
			what = "another file is at its -wal file's path"
		}
		if what != "" && w.loose && w.lastMac != "" && w.stillThere != nil {
			there, err := w.stillThere(w.lastID, w.lastMac)
			if err != nil {
				for i := range w.paths {
					w.paths[i].dir = folderMark{} // look again next time
				}
				return fmt.Errorf("%s, and reading whether its last commit is still there failed: %w", what, err)
			}
			if there {
				w.wal, w.loose = nil, false // gone with the last connection; the next commit adopts the new one
				return nil
			}
		}
		w.walOnly = what != ""
	}
	if what == "" {
		return nil
	}
	then := "close the Auditor and open it again"
	if w.walOnly {
		// Closing the last connection to the old content copies its WAL
		// into the restored file (see sqliteStore.close).
		then = "restart the process, without closing the database's other handles first"
	}
	w.replaced = replacedError{fmt.Errorf("database %s was replaced on disk while the Auditor had it open (%s; a restore from a backup?): "+
		"nothing more is written to it or read from it; %s", quoted(w.paths[len(w.paths)-1].path), what, then)}
	return w.replaced
}

// replacedError is why the database can no longer be used, told in its
// own words, and matched by errors.Is(err, ErrReplaced) without repeating
// that sentinel's text in front of them.
type replacedError struct{ error }

func (replacedError) Is(target error) bool { return target == ErrReplaced }

// copiedOver returns the database file when check found it still the one
// SQLite has open but its -wal replaced: a copy over the file itself. nil
// otherwise.
func (w *fileWatch) copiedOver() os.FileInfo {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.walOnly {
		return nil
	}
	return w.db
}

// committed is told of each commit, and of the last row it wrote, lastID
// with chain value lastMac: the first one after a new writer connection
// shows the -wal file it writes to, which it holds from then on.
func (w *fileWatch) committed(lastID int64, lastMac string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lastID, w.lastMac, w.loose = lastID, lastMac, false
	if len(w.paths) > 0 && w.wal == nil && w.replaced == nil {
		w.wal = w.statWAL()
	}
}

// loosen is told that the store dropped its writer connection while other
// connections stayed open (see loose).
func (w *fileWatch) loosen() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.loose = true
}

// forgetWAL forgets the -wal file when the store dropped its writer
// connection and no other connection of its pool is left open: if none of
// any process is, closing the writer deleted the WAL, and the next
// connection makes a new one, which committed adopts. While another
// connection stays open the WAL stays, and is still watched.
func (w *fileWatch) forgetWAL() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.wal = nil
}

// keptOpen holds the database handles close leaves open because a backup
// was copied over their file (see sqliteStore.close): referenced here, they
// are never closed, not even by a finalizer, until the process ends. files
// are those files, for heldOpen.
var keptOpen struct {
	sync.Mutex
	held  []any
	files []os.FileInfo
}

// keepOpen keeps handles (a *sql.DB, *sql.Conn), open on file, for the
// rest of the process.
func keepOpen(file os.FileInfo, handles ...any) {
	keptOpen.Lock()
	defer keptOpen.Unlock()
	keptOpen.held = append(keptOpen.held, handles...)
	keptOpen.files = append(keptOpen.files, file)
}

// heldOpen says why path cannot be opened in this process when it is a
// file keepOpen keeps connections open on: their locks would make the
// Open wait for its busy timeout and fail with "database is locked", which
// names no cause. nil otherwise.
func heldOpen(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return nil
	}
	keptOpen.Lock()
	defer keptOpen.Unlock()
	for _, f := range keptOpen.files {
		if os.SameFile(st, f) {
			return fmt.Errorf("%w: %w", ErrStore, replacedError{fmt.Errorf("database %s had a backup copied over it while an Auditor "+
				"had it open, and that Auditor's connections stay open until the process ends (closing them would have "+
				"corrupted it): restart the process to open it", quoted(path))})
		}
	}
	return nil
}
