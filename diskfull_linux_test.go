//go:build linux

package audit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// smallDisk mounts a file system of size bytes (a tmpfs) in a temporary
// folder, or skips where mounting is not allowed.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	require.NoError(t, os.Mkdir(dir, 0o750))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fillDisk fills the file system holding dir, and returns what frees the
// room again.
func fillDisk(t *testing.T, dir string) (free func()) {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	require.NoError(t, err)
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	require.NoError(t, f.Close())
	return func() { require.NoError(t, os.Remove(path)) }
}

// A disk that fills and is then freed, as the kernel reports it (ENOSPC
// from the database and from trek.log alike): events fail while it is
// full, and once there is room again they are stored and logged, without
// a restart, and trek.log holds no hole.
func TestRealDiskFullThenFreed(t *testing.T) {
	for _, size := range []int{0, 16 << 10} {
		t.Run(fmt.Sprint("details=", size), func(t *testing.T) {
			dir := smallDisk(t, 8<<20)
			cfg := Config{DBPath: filepath.Join(dir, "travel.db"), LogPath: filepath.Join(dir, "logs", "trek.log"),
				ChainKey: faultChainKey, BusyTimeout: 100 * time.Millisecond}
			a := openAuditor(t, cfg)
			ctx := t.Context()
			var details map[string]any
			if size > 0 {
				details = map[string]any{"blob": strings.Repeat("x", size)}
			}
			for i := range 20 {
				require.NoError(t, a.Record(ctx, faultLogin(fmt.Sprint("before-", i), details)))
			}
			free := fillDisk(t, dir)
			failed := 0
			for i := range 20 {
				if a.Record(ctx, faultLogin(fmt.Sprint("full-", i), details)) != nil {
					failed++
				}
			}
			assert.Positive(t, failed, "events fail while the disk is full")
			free()
			for i := range 20 {
				require.NoError(t, a.Record(ctx, faultLogin(fmt.Sprint("after-", i), details)), "after-%d", i)
			}
			require.NoError(t, a.Close())
			rows, logText := faultRows(t, cfg.DBPath), faultLog(t, cfg.LogPath)
			for i := range 20 {
				assert.Contains(t, rows, fmt.Sprint("after-", i))
				assert.Contains(t, logText, fmt.Sprintf(`"after-%d"`, i))
			}
			assert.Zero(t, strings.Count(logText, "\x00"))
		})
	}
}

// trek.log due for rotation while the disk is full: once there is room,
// writing goes on, the rotated files are pruned to LogMaxBackups, and the
// newest lines are there.
func TestRotationOnAFullDisk(t *testing.T) {
	dir := smallDisk(t, 16<<20)
	cfg := Config{DBPath: filepath.Join(dir, "travel.db"), LogPath: filepath.Join(dir, "logs", "trek.log"),
		ChainKey: faultChainKey, LogMaxSizeMB: 1, LogMaxBackups: 2}
	a := openAuditor(t, cfg)
	ctx := t.Context()
	chunk := []byte(strings.Repeat("[INFO] 2026-04-20T10:11:53 host filler "+strings.Repeat("x", 984)+"\n", 100)) // 100 KiB
	for range 9 {
		_, err := a.LogWriter().Write(chunk)
		require.NoError(t, err)
	}
	free := fillDisk(t, dir)
	for i := range 5 {
		a.LogWriter().Write(chunk) // fails, or not: the disk decides
		a.Record(ctx, faultLogin(fmt.Sprint("full-", i), nil))
	}
	free()
	for i := range 30 {
		_, err := a.LogWriter().Write(chunk)
		require.NoError(t, err)
		require.NoError(t, a.Record(ctx, faultLogin(fmt.Sprint("after-", i), nil)))
	}
	require.NoError(t, a.Close())
	files, err := logFiles(cfg.LogPath)
	require.NoError(t, err)
	assert.Len(t, files, 3, "trek.log and LogMaxBackups rotated files: %v", files)
	var all string
	for _, f := range files {
		all += faultLog(t, f)
	}
	assert.Contains(t, all, `"after-29"`)
	assert.Zero(t, strings.Count(all, "\x00"))
}
