//go:build linux

package audit

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// asNobody runs the calling test as the user nobody (65534), for what
// file permissions refuse, which they never do to root. Run by root, it
// runs this test alone in a copy of the test binary as nobody, checks that
// it passed there, and returns false: the caller returns. Run by anyone
// else, or in that copy, it returns true and the test goes on.
func asNobody(t *testing.T) bool {
	t.Helper()
	const marker = "AUDIT_TEST_AS_NOBODY"
	if os.Getuid() != 0 || os.Getenv(marker) == t.Name() {
		return true
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	// The go tool keeps the test binary in a folder only root may enter.
	dir, err := os.MkdirTemp("", "audit-nobody-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "audit.test")
	src, err := os.Open(exe)
	require.NoError(t, err)
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(dst, src)
	require.NoError(t, err)
	require.NoError(t, dst.Close())

	cmd := exec.Command(bin, "-test.run", "^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), marker+"="+t.Name(), "TMPDIR="+os.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "as nobody:\n%s", out)
	require.Contains(t, string(out), "--- PASS: "+t.Name(), "as nobody, the test ran and passed:\n%s", out)
	return false
}

// TestReadOnlyOpenSaysWhatStopsIt: a read-only Open that SQLite refuses
// names the cause the user can act on. A file this user may not read is
// said to be that, not read-only media; a readable database closed
// cleanly in a folder this user may not write to lacks the -wal and -shm
// SQLite needs, as on read-only media, and is told so.
func TestReadOnlyOpenSaysWhatStopsIt(t *testing.T) {
	if !asNobody(t) {
		return
	}
	cases := []struct {
		name          string
		lock          func(dir, db string) error
		unlock        func(dir, db string) error
		want, notWant string
	}{
		{"a file this user may not read",
			func(dir, db string) error { return os.Chmod(db, 0o200) },
			func(dir, db string) error { return os.Chmod(db, 0o640) },
			"cannot be read by this user (permission denied)", "read-only media"},
		{"a folder this user may not write to",
			func(dir, db string) error { return os.Chmod(dir, 0o555) },
			func(dir, db string) error { return os.Chmod(dir, 0o755) },
			"SQLite needs travel.db-wal and travel.db-shm beside it, which are missing and cannot be made there", "cannot be read by this user"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{DBPath: filepath.Join(dir, "travel.db"), LogPath: filepath.Join(t.TempDir(), "trek.log")}
			a := openAuditor(t, cfg)
			recordN(t, a, 1, "before")
			require.NoError(t, a.Close())
			require.NoFileExists(t, cfg.DBPath+"-shm", "closed cleanly")
			require.NoError(t, tc.lock(dir, cfg.DBPath))
			t.Cleanup(func() { tc.unlock(dir, cfg.DBPath) })

			cfg.ReadOnly = true
			_, err := Open(cfg)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrStore)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), tc.notWant)
		})
	}
}
