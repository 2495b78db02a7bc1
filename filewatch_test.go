package audit

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRecordAfterTravelDBIsRestoredWhileOpen replaces travel.db on disk
// the ways a restore does while an Auditor has it open. SQLite keeps
// writing to the file it opened, so Record used to report events stored
// that no later reader would find, and a copy over the file let SQLite
// copy the old WAL into the restored one at Close. Now the Auditor refuses
// to write, Close says why, the restored file is left as the backup made
// it, and an Auditor opened again records into it.
func TestRecordAfterTravelDBIsRestoredWhileOpen(t *testing.T) {
	copyFile := func(t *testing.T, from, to string) {
		b, err := os.ReadFile(from)
		require.NoError(t, err)
		// os.WriteFile truncates an existing file: the same inode, new
		// content, as cp over a file does.
		require.NoError(t, os.WriteFile(to, b, 0o640))
	}
	removeSidecars := func(t *testing.T, db string) {
		require.NoError(t, os.RemoveAll(db+"-wal"))
		require.NoError(t, os.RemoveAll(db+"-shm"))
	}
	cases := []struct {
		name    string
		restore func(t *testing.T, db, backup string)
		gone    bool // no file is left at travel.db's path
		held    bool // the old connections stay open until the process ends
		why     string
	}{
		{"a copy renamed over it", func(t *testing.T, db, backup string) {
			tmp := db + ".restoring"
			copyFile(t, backup, tmp)
			require.NoError(t, os.Rename(tmp, db))
			removeSidecars(t, db)
		}, false, false, "another file is at its path"},
		{"deleted, then a copy put in its place", func(t *testing.T, db, backup string) {
			require.NoError(t, os.Remove(db))
			removeSidecars(t, db)
			copyFile(t, backup, db)
		}, false, false, "another file is at its path"},
		{"a copy written over it, -wal and -shm deleted", func(t *testing.T, db, backup string) {
			removeSidecars(t, db)
			copyFile(t, backup, db)
		}, false, true, "its -wal file was deleted"},
		{"a copy renamed over it, the folder's times set back as rsync -a does", func(t *testing.T, db, backup string) {
			dir, err := os.Stat(filepath.Dir(db))
			require.NoError(t, err)
			tmp := db + ".restoring"
			copyFile(t, backup, tmp)
			require.NoError(t, os.Rename(tmp, db))
			removeSidecars(t, db)
			require.NoError(t, os.Chtimes(filepath.Dir(db), dir.ModTime(), dir.ModTime()))
		}, false, false, "another file is at its path"},
		{"deleted", func(t *testing.T, db, backup string) {
			require.NoError(t, os.Remove(db))
			removeSidecars(t, db)
		}, true, false, "it was deleted"},
	}
	for _, tc := range cases {
		for _, settled := range []bool{false, true} {
			name := tc.name
			if settled {
				name += ", in a folder unchanged for an hour"
			}
			t.Run(name, func(t *testing.T) { restoreWhileOpen(t, tc.restore, tc.gone, tc.held, tc.why, settled) })
		}
	}
}

// restoreWhileOpen is one case of TestRecordAfterTravelDBIsRestoredWhileOpen.
// settled sets the folder's times an hour back before the last event ahead
// of the restore, so that the Auditor trusts them and looks at the files
// only because the restore changed the folder (see folderMark); otherwise
// the folder, made a moment ago, is too new to trust, and every commit
// looks at the files.
func restoreWhileOpen(t *testing.T, restore func(t *testing.T, db, backup string), gone, held bool, why string, settled bool) {
	cfg := testConfig(t)
	a, err := Open(cfg)
	require.NoError(t, err)
	recordN(t, a, 5, "in the backup")
	backup := filepath.Join(t.TempDir(), "backup.db")
	copier := openPlainDB(t, cfg.DBPath)
	_, err = copier.Exec(`VACUUM INTO ?`, backup)
	require.NoError(t, err)
	require.NoError(t, copier.Close(), "the Auditor's are the only connections left")
	recordN(t, a, 3, "after the backup")
	if settled {
		hourAgo := time.Now().Add(-time.Hour)
		require.NoError(t, os.Chtimes(filepath.Dir(cfg.DBPath), hourAgo, hourAgo))
		recordN(t, a, 1, "after the backup, in a settled folder")
	}

	restore(t, cfg.DBPath, backup)

	err = a.Record(t.Context(), Event{Action: UserLogin, Resource: "after the restore"})
	require.Error(t, err, "an event recorded into a file no longer at travel.db's path is lost")
	assert.ErrorIs(t, err, ErrStore)
	assert.Contains(t, err.Error(), "replaced on disk")
	assert.Contains(t, err.Error(), why)
	assert.Equal(t, uint64(1), a.Stats().StoreErrors)

	err = a.Close()
	assert.ErrorIs(t, err, ErrStore, "Close says the file was replaced")

	if gone {
		_, err := os.Stat(cfg.DBPath)
		assert.ErrorIs(t, err, os.ErrNotExist, "nothing made a new travel.db")
		return
	}
	restored := openPlainDB(t, cfg.DBPath)
	var check string
	require.NoError(t, restored.QueryRow(`PRAGMA integrity_check`).Scan(&check))
	assert.Equal(t, "ok", check)
	assert.Equal(t, int64(5), countRows(t, restored), "the restored file holds what the backup held, nothing more")
	require.NoError(t, restored.Close())

	if held {
		// Closing the old connections would have copied the old
		// WAL into the restored file: they stay open, and an Open
		// in this process says so at once rather than wait on
		// their locks.
		_, err := Open(cfg)
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrStore)
		assert.Contains(t, err.Error(), "restart the process")
		return
	}
	again := openAuditor(t, cfg)
	require.NoError(t, again.Record(t.Context(), Event{Action: UserLogin, Resource: "after reopening"}))
	require.NoError(t, again.Close())
	assert.Equal(t, int64(6), countRows(t, openPlainDB(t, cfg.DBPath)))
}

// TestRecordAfterAnotherHandleClosesKeepsWriting is the other side: a
// second handle on travel.db that writes and closes (TREK's server, the
// trek-audit command) leaves the file and its -wal as they were, and the
// Auditor goes on writing.
func TestRecordAfterAnotherHandleClosesKeepsWriting(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	recordN(t, a, 2, "before")
	other, err := sql.Open("sqlite3", "file:"+escapePath(cfg.DBPath)+"?_busy_timeout=10000")
	require.NoError(t, err)
	_, err = other.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	require.NoError(t, err)
	require.NoError(t, other.Close())
	recordN(t, a, 2, "after")
	require.NoError(t, a.Close())
	assert.Equal(t, int64(4), countRows(t, openPlainDB(t, cfg.DBPath)))
}

// TestRecordThroughTheHostsHandleAfterARestore: with TREK's own handle
// (Config.DB) the library finds the file through SQLite and refuses the
// same way once another file is at its path.
func TestRecordThroughTheHostsHandleAfterARestore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "travel.db")
	db := createTrekDB(t, path, map[int64]string{1: "alice"})
	a := openAuditor(t, Config{DB: db, LogPath: filepath.Join(dir, "logs", "trek.log")})
	recordN(t, a, 2, "before")

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path+".restoring", b, 0o640))
	require.NoError(t, os.Rename(path+".restoring", path))

	err = a.Record(t.Context(), Event{Action: UserLogin, Resource: "after"})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrStore)
	assert.Contains(t, err.Error(), "another file is at its path")
	assert.ErrorIs(t, a.Close(), ErrStore)
}
