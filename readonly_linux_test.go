//go:build linux

package audit

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A database closed cleanly leaves no -wal and -shm files, which SQLite
// needs to read a database in WAL mode and cannot make on read-only
// media: a read-only Open there says so, and what to do, rather than that
// the file cannot be written or does not exist.
func TestReadOnlyOpenOnReadOnlyMediaSaysWhy(t *testing.T) {
	dir := smallDisk(t, 8<<20)
	cfg := Config{DBPath: filepath.Join(dir, "travel.db"), LogPath: filepath.Join(dir, "logs", "trek.log")}
	a := openAuditor(t, cfg)
	require.NoError(t, a.Record(context.Background(), Event{Action: UserLogin}))
	require.NoError(t, a.Close())
	require.NoFileExists(t, cfg.DBPath+"-shm", "closed cleanly")
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot remount read-only: %v %s", err, out)
	}

	cfg.ReadOnly = true
	_, err := Open(cfg)
	require.ErrorIs(t, err, ErrStore)
	assert.Contains(t, err.Error(), "SQLite needs travel.db-wal and travel.db-shm beside it, which are missing and cannot be made there")
	assert.Contains(t, err.Error(), "copy them with the database, or open a copy on a writable disk")
	assert.NotContains(t, err.Error(), "cannot be written")
}
