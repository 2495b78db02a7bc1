package audit

import (
	"bytes"
	"database/sql"
	"fmt"
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
			copyOver(t, backup, tmp)
			require.NoError(t, os.Rename(tmp, db))
			removeSidecars(t, db)
		}, false, false, "another file is at its path"},
		{"deleted, then a copy put in its place", func(t *testing.T, db, backup string) {
			require.NoError(t, os.Remove(db))
			removeSidecars(t, db)
			copyOver(t, backup, db)
		}, false, false, "another file is at its path"},
		{"a copy written over it, -wal and -shm deleted", func(t *testing.T, db, backup string) {
			removeSidecars(t, db)
			copyOver(t, backup, db)
		}, false, true, "its -wal file was deleted"},
		{"a copy renamed over it, the folder's times set back as rsync -a does", func(t *testing.T, db, backup string) {
			dir, err := os.Stat(filepath.Dir(db))
			require.NoError(t, err)
			tmp := db + ".restoring"
			copyOver(t, backup, tmp)
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
	backup := backupOf(t, cfg.DBPath) // closes its handle: the Auditor's are the only connections left
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
	assert.ErrorIs(t, err, ErrReplaced, "the host can tell a lasting cause from one worth a retry")
	assert.Contains(t, err.Error(), "replaced on disk")
	assert.Contains(t, err.Error(), why)
	assert.Equal(t, uint64(1), a.Stats().StoreErrors)

	err = a.Close()
	assert.ErrorIs(t, err, ErrStore, "Close says the file was replaced")
	assert.ErrorIs(t, err, ErrReplaced)

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
		assert.ErrorIs(t, err, ErrReplaced, "reopening did not help: the host restarts")
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

// faultOn makes every insert of an audit_log row with resource "fault"
// fail, through a trigger written by a handle of the test's own: a fault
// that makes the store drop its writer connection and take a new one.
func faultOn(t *testing.T, dbPath string) {
	t.Helper()
	h := openPlainDB(t, dbPath)
	_, err := h.Exec(`CREATE TRIGGER test_fault BEFORE INSERT ON audit_log WHEN NEW.resource = 'fault'
		BEGIN SELECT RAISE(ABORT, 'injected fault'); END`)
	require.NoError(t, err)
	require.NoError(t, h.Close())
}

// backupOf copies travel.db aside, consistently, as a backup would.
func backupOf(t *testing.T, dbPath string) string {
	t.Helper()
	backup := filepath.Join(t.TempDir(), "backup.db")
	h := openPlainDB(t, dbPath)
	_, err := h.Exec(`VACUUM INTO ?`, backup)
	require.NoError(t, err)
	require.NoError(t, h.Close())
	return backup
}

// copyOver writes the content of from over to, keeping to's inode, as cp
// over an existing file does.
func copyOver(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, 0o640))
}

// TestRestoreAfterTheWriterWasResetIsStillSeen: a fault drops the writer
// connection while a reader of the admin list keeps another open, so the
// WAL stays the same file. A backup then copied over travel.db, its -wal
// and -shm deleted, is seen, as without the fault: forgetting the -wal at
// the reset let the next connection's new WAL pass for the old one, and
// the old WAL's rows came back into the restored file at Close.
func TestRestoreAfterTheWriterWasResetIsStillSeen(t *testing.T) {
	cfg := testConfig(t)
	a, err := Open(cfg)
	require.NoError(t, err)
	recordN(t, a, 5, "in the backup")
	backup := backupOf(t, cfg.DBPath)
	recordN(t, a, 3, "after the backup")
	faultOn(t, cfg.DBPath)
	_, err = a.List(t.Context(), Query{}) // leaves a reader in the pool
	require.NoError(t, err)
	err = a.Record(t.Context(), Event{Action: UserLogin, Resource: "fault"})
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrReplaced, "the fault is not a restore")
	require.FileExists(t, cfg.DBPath+"-wal", "the reader holds the WAL")

	require.NoError(t, os.Remove(cfg.DBPath+"-wal"))
	require.NoError(t, os.Remove(cfg.DBPath+"-shm"))
	copyOver(t, backup, cfg.DBPath)

	err = a.Record(t.Context(), Event{Action: UserLogin, Resource: "after the restore"})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrStore)
	assert.ErrorIs(t, err, ErrReplaced)
	assert.Contains(t, err.Error(), "its -wal file was deleted")
	assert.Contains(t, err.Error(), "restart the process")
	assert.ErrorIs(t, a.Close(), ErrStore)
	assert.Equal(t, int64(5), countRows(t, openPlainDB(t, cfg.DBPath)), "the restored file holds what the backup held")
}

// hostPoolFault is a host's pool after faultOnAHostPool.
type hostPoolFault struct {
	a              *Auditor
	host           *sql.DB
	dbPath, backup string
	held           *sql.Conn // the host's, open since before the fault
}

// faultOnAHostPool opens an Auditor on a host's pool in WAL mode that
// closes every connection given back and opens at most maxOpen (0: no
// limit); records three events, backs travel.db up, records two more; then
// makes the next event fail while the host holds a connection of its own.
func faultOnAHostPool(t *testing.T, maxOpen int) hostPoolFault {
	t.Helper()
	dir := t.TempDir()
	f := hostPoolFault{dbPath: filepath.Join(dir, "travel.db")}
	f.host = createTrekDB(t, f.dbPath, map[int64]string{1: "alice"})
	_, err := f.host.Exec(`PRAGMA journal_mode = WAL`)
	require.NoError(t, err)
	f.host.SetMaxIdleConns(0)
	f.host.SetMaxOpenConns(maxOpen)
	f.a = openAuditor(t, Config{DB: f.host, LogPath: filepath.Join(dir, "trek.log"), ChainKeyFile: filepath.Join(dir, ".audit_key")})
	recordN(t, f.a, 3, "in the backup")
	f.backup = backupOf(t, f.dbPath)
	recordN(t, f.a, 2, "after the backup")
	faultOn(t, f.dbPath)
	f.held, err = f.host.Conn(t.Context())
	require.NoError(t, err)
	require.Error(t, f.a.Record(t.Context(), Event{Action: UserLogin, Resource: "fault"}))
	return f
}

// TestAHostPoolClosingItsConnectionsIsNoRestore: a fault drops the
// writer connection while one of the host's stays open, which keeps the
// -wal watched, and the pool is full (two connections, both in use), so
// the library can hold none of its own meanwhile. The host's pool then
// closes its connections (an idle limit), and SQLite deletes the -wal with
// the last of them, as it does. That is no restore: the library's last
// commit is still in the file, and recording resumes. A backup copied over
// the file meanwhile is still one.
func TestAHostPoolClosingItsConnectionsIsNoRestore(t *testing.T) {
	for _, restored := range []bool{false, true} {
		t.Run(fmt.Sprintf("restored %v", restored), func(t *testing.T) {
			f := faultOnAHostPool(t, 2)
			a, host, dbPath, backup, held := f.a, f.host, f.dbPath, f.backup, f.held
			require.Equal(t, 1, host.Stats().OpenConnections, "the writer's is gone and no other was free to hold")
			require.FileExists(t, dbPath+"-wal", "kept by the host's connection")
			require.NoError(t, held.Close())
			require.NoFileExists(t, dbPath+"-wal", "deleted with the last connection")
			if restored {
				copyOver(t, backup, dbPath)
			}

			err := a.Record(t.Context(), Event{Action: UserLogin, Resource: "after the host let go"})
			if restored {
				require.ErrorIs(t, err, ErrReplaced)
				return
			}
			require.NoError(t, err, "no restore: the last commit is still there")
			assert.Equal(t, int64(6), countRows(t, openPlainDB(t, dbPath)))
			rep := verifyNow(t, a)
			assert.True(t, rep.Intact, "%+v", rep.Problem)
		})
	}
}

// TestAFaultHoldsTheWALWhileTheHostReconnects: a fault drops the writer
// connection; the host's pool then closes the connection it had open and
// opens another before the next event. SQLite would delete the -wal with
// the last connection to close and make a new one with the next, which is
// what a restore leaves, and every event from then on would be refused as
// one. A connection the library holds from the fault to the next batch
// keeps the -wal the same file: recording resumes, and a restore meanwhile
// is still seen.
func TestAFaultHoldsTheWALWhileTheHostReconnects(t *testing.T) {
	for _, restored := range []bool{false, true} {
		t.Run(fmt.Sprintf("restored %v", restored), func(t *testing.T) {
			f := faultOnAHostPool(t, 0)
			a, host, dbPath, backup, held := f.a, f.host, f.dbPath, f.backup, f.held
			wal, err := os.Stat(dbPath + "-wal")
			require.NoError(t, err)

			require.NoError(t, held.Close())
			require.FileExists(t, dbPath+"-wal", "kept by the library's connection")
			// Had the -wal been deleted with the host's connection, a file
			// made now could take its inode, as one made by anything else
			// on the volume may, and the -wal made next would be a file of
			// its own by every measure.
			require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(dbPath), "elsewhere"), nil, 0o600))
			again, err := host.Conn(t.Context())
			require.NoError(t, err)
			t.Cleanup(func() { again.Close() })
			now, err := os.Stat(dbPath + "-wal")
			require.NoError(t, err)
			require.True(t, os.SameFile(wal, now), "the library's connection kept the -wal")
			if restored {
				require.NoError(t, os.Remove(dbPath+"-wal"))
				require.NoError(t, os.Remove(dbPath+"-shm"))
				copyOver(t, backup, dbPath)
			}

			err = a.Record(t.Context(), Event{Action: UserLogin, Resource: "after the host reconnected"})
			if restored {
				require.ErrorIs(t, err, ErrReplaced)
				assert.Contains(t, err.Error(), "its -wal file was deleted")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, int64(6), countRows(t, openPlainDB(t, dbPath)))
			rep := verifyNow(t, a)
			assert.True(t, rep.Intact, "%+v", rep.Problem)
			require.NoError(t, a.Close())
			assert.Equal(t, 1, host.Stats().InUse, "Close gave back every connection it held; the test's own is left")
		})
	}
}

// TestClosingAfterARestoreOnAHostPoolLeavesTheRestoredFile: a backup is
// copied over travel.db, its -wal and -shm deleted, while the library holds
// a connection of the host's pool: its writer's, or after a fault the one
// it holds in its place. Closing that connection, the last one on the old
// WAL, would copy the WAL into the restored file. Close keeps it open
// instead, and the file stays the backup, byte for byte.
func TestClosingAfterARestoreOnAHostPoolLeavesTheRestoredFile(t *testing.T) {
	for _, fault := range []bool{false, true} {
		t.Run(fmt.Sprintf("after a fault %v", fault), func(t *testing.T) {
			dir := t.TempDir()
			dbPath := filepath.Join(dir, "travel.db")
			host := createTrekDB(t, dbPath, map[int64]string{1: "alice"})
			_, err := host.Exec(`PRAGMA journal_mode = WAL`)
			require.NoError(t, err)
			host.SetMaxIdleConns(0) // the host keeps none of its own open
			a := openAuditor(t, Config{DB: host, LogPath: filepath.Join(dir, "trek.log"), ChainKeyFile: filepath.Join(dir, ".audit_key")})
			recordN(t, a, 3, "in the backup")
			backup := backupOf(t, dbPath)
			recordN(t, a, 2, "after the backup")
			if fault {
				faultOn(t, dbPath)
				require.Error(t, a.Record(t.Context(), Event{Action: UserLogin, Resource: "fault"}))
			}
			require.NoError(t, os.Remove(dbPath+"-wal"))
			require.NoError(t, os.Remove(dbPath+"-shm"))
			copyOver(t, backup, dbPath)

			err = a.Close()
			require.ErrorIs(t, err, ErrReplaced)
			assert.Contains(t, err.Error(), "stay open")
			want, err := os.ReadFile(backup)
			require.NoError(t, err)
			got, err := os.ReadFile(dbPath)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(want, got), "the restored file is the backup, byte for byte")
			assert.Equal(t, int64(3), countRows(t, openPlainDB(t, dbPath)))
		})
	}
}

// TestClosingAfterARestoreWithNothingHeldLetsTheFileGo: the same restore
// on a host's pool that was full at the fault, so that the library held no
// connection in the writer's place, and whose own connections then closed,
// taking the old WAL with them. Nothing of the library's is left to keep
// open: Close says so in no words of its own, and the restored file can be
// opened again at once in the same process.
func TestClosingAfterARestoreWithNothingHeldLetsTheFileGo(t *testing.T) {
	f := faultOnAHostPool(t, 2)
	require.NoError(t, f.held.Close())
	require.NoFileExists(t, f.dbPath+"-wal", "deleted with the last connection")
	copyOver(t, f.backup, f.dbPath)
	require.ErrorIs(t, f.a.Record(t.Context(), Event{Action: UserLogin, Resource: "after the restore"}), ErrReplaced)

	err := f.a.Close()
	require.ErrorIs(t, err, ErrReplaced)
	assert.NotContains(t, err.Error(), "stay open")
	require.Zero(t, f.host.Stats().OpenConnections)
	require.NoError(t, f.host.Close())
	dir := filepath.Dir(f.dbPath)
	again := openAuditor(t, Config{DBPath: f.dbPath, LogPath: filepath.Join(dir, "trek.log"), ChainKeyFile: filepath.Join(dir, ".audit_key")})
	page, err := again.List(t.Context(), Query{})
	require.NoError(t, err)
	assert.EqualValues(t, 3, page.Total, "the backup's rows")
}

// TestRestoreThroughASymbolicLinkIsSeen: travel.db, or its folder, is a
// symbolic link, and the restore replaces the link. SQLite opened the
// link's target, which nothing changed; the path the Auditor was given is
// watched too.
func TestRestoreThroughASymbolicLinkIsSeen(t *testing.T) {
	cases := []struct {
		name string
		// layout makes the link and returns DBPath; restore puts the
		// backup at DBPath by replacing a link.
		layout  func(t *testing.T, root string) string
		restore func(t *testing.T, root, dbPath, backup string)
	}{
		{"travel.db is a link to a file on another volume, and a copy is renamed over the link",
			func(t *testing.T, root string) string {
				require.NoError(t, os.MkdirAll(filepath.Join(root, "volume"), 0o750))
				require.NoError(t, os.MkdirAll(filepath.Join(root, "data"), 0o750))
				link := filepath.Join(root, "data", "travel.db")
				require.NoError(t, os.Symlink(filepath.Join(root, "volume", "travel.db"), link))
				return link
			},
			func(t *testing.T, root, dbPath, backup string) {
				copyOver(t, backup, dbPath+".restoring")
				require.NoError(t, os.Rename(dbPath+".restoring", dbPath))
			}},
		{"data is a link to a folder, switched to one holding the backup",
			func(t *testing.T, root string) string {
				require.NoError(t, os.MkdirAll(filepath.Join(root, "v1"), 0o750))
				require.NoError(t, os.MkdirAll(filepath.Join(root, "v2"), 0o750))
				require.NoError(t, os.Symlink("v1", filepath.Join(root, "data")))
				return filepath.Join(root, "data", "travel.db")
			},
			func(t *testing.T, root, dbPath, backup string) {
				copyOver(t, backup, filepath.Join(root, "v2", "travel.db"))
				require.NoError(t, os.Symlink("v2", filepath.Join(root, "data.new")))
				require.NoError(t, os.Rename(filepath.Join(root, "data.new"), filepath.Join(root, "data")))
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			cfg := Config{DBPath: tc.layout(t, root), LogPath: filepath.Join(root, "logs", "trek.log")}
			a := openAuditor(t, cfg)
			recordN(t, a, 3, "in the backup")
			backup := backupOf(t, cfg.DBPath)
			recordN(t, a, 2, "after the backup")

			tc.restore(t, root, cfg.DBPath, backup)

			err := a.Record(t.Context(), Event{Action: UserLogin, Resource: "after the restore"})
			require.Error(t, err, "the event would have gone into a file no longer at DBPath")
			assert.Contains(t, err.Error(), "another file is at its path")
			assert.Contains(t, err.Error(), quoted(cfg.DBPath), "the error names the path the Auditor was given")
			assert.ErrorIs(t, a.Close(), ErrStore)
			assert.Equal(t, int64(3), countRows(t, openPlainDB(t, cfg.DBPath)))
		})
	}
}

// TestReadsAfterARestoreAreRefused: once travel.db was seen replaced, the
// pool's connections may still hold the old file, so the admin list,
// Verify and Acknowledge refuse too, saying why, rather than show the old
// file's rows or write an acknowledgement into it.
func TestReadsAfterARestoreAreRefused(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	recordN(t, a, 5, "in the backup")
	backup := backupOf(t, cfg.DBPath)
	recordN(t, a, 3, "after the backup")
	_, err := a.List(t.Context(), Query{}) // leaves a reader on the old file
	require.NoError(t, err)
	copyOver(t, backup, cfg.DBPath+".restoring")
	require.NoError(t, os.Rename(cfg.DBPath+".restoring", cfg.DBPath))

	_, err = a.List(t.Context(), Query{})
	assert.ErrorIs(t, err, ErrStore)
	assert.ErrorIs(t, err, ErrReplaced)
	assert.ErrorContains(t, err, "replaced on disk")
	_, err = a.Verify(t.Context())
	assert.ErrorIs(t, err, ErrReplaced)
	assert.ErrorContains(t, err, "replaced on disk")
	_, err = a.Unacknowledged(t.Context())
	assert.ErrorIs(t, err, ErrReplaced)
	assert.ErrorContains(t, err, "replaced on disk")
	_, err = a.Acknowledge(t.Context(), "restored travel.db from a backup", "5-00")
	assert.ErrorIs(t, err, ErrReplaced)
	assert.ErrorContains(t, err, "replaced on disk")
	err = a.Close()
	require.ErrorIs(t, err, ErrStore)
	assert.ErrorIs(t, err, ErrReplaced)
	var acks int64
	require.NoError(t, openPlainDB(t, cfg.DBPath).QueryRow(`SELECT COUNT(*) FROM audit_chain_acks`).Scan(&acks))
	assert.Zero(t, acks)
}

// TestRelativePathsSurviveAChdir: relative DBPath and LogPath name the
// files the Auditor opened, whatever the process's working directory is
// later: a connection opened after a chdir (here the writer's, after a
// fault) opens the same travel.db, and trek.log's lines go to the same
// file.
func TestRelativePathsSurviveAChdir(t *testing.T) {
	root := t.TempDir()
	t.Chdir(root)
	a := openAuditor(t, Config{DBPath: "data/travel.db", LogPath: "data/logs/trek.log"})
	recordN(t, a, 1, "before the chdir")
	faultOn(t, filepath.Join(root, "data", "travel.db"))
	other := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(other, "data"), 0o750))
	t.Chdir(other)

	require.Error(t, a.Record(t.Context(), Event{Action: UserLogin, Resource: "fault"}))
	recordN(t, a, 1, "after the chdir")
	require.NoError(t, a.Close())

	assert.Equal(t, int64(2), countRows(t, openPlainDB(t, filepath.Join(root, "data", "travel.db"))))
	assert.NoFileExists(t, filepath.Join(other, "data", "travel.db"))
	assert.NoFileExists(t, filepath.Join(other, "data", "logs", "trek.log"))
	assert.Len(t, eventLines(logLines(t, filepath.Join(root, "data", "logs", "trek.log"))), 2)
}
