package audit

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tempFilesChild marks the copy of the test binary that
// TestBatchesCreateNoTemporaryFiles runs with SQLITE_TMPDIR set: SQLite reads
// that variable once per process, before the first database opens.
const tempFilesChild = "AUDIT_TEST_TEMPFILES_CHILD"

// TestBatchesCreateNoTemporaryFiles checks that a batch keeps its statement
// journal in memory. A multi-row INSERT inside a transaction journals the
// pages it changes so that the statement alone could be undone; past 64 KiB
// SQLite moves that journal to a new file in the temporary folder, and a
// batch that changes a few hundred index pages would create, fill and
// delete one on every commit: copies of audit pages outside data/, and
// some 160 system calls on the writer's path.
func TestBatchesCreateNoTemporaryFiles(t *testing.T) {
	if os.Getenv(tempFilesChild) == "" {
		tmp := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestBatchesCreateNoTemporaryFiles$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), tempFilesChild+"=1", "SQLITE_TMPDIR="+tmp)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "--- PASS: TestBatchesCreateNoTemporaryFiles")
		return
	}
	tmp := os.Getenv("SQLITE_TMPDIR")
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	require.NoError(t, err)
	defer syscall.Close(fd)
	_, err = syscall.InotifyAddWatch(fd, tmp, syscall.IN_CREATE|syscall.IN_OPEN)
	require.NoError(t, err)
	// created reports whether a file was created or opened in tmp since it
	// was last asked. SQLite opens its temporary files with O_TMPFILE,
	// which gives them no name, so the watch also reports opens.
	created := func() bool {
		buf := make([]byte, 64<<10)
		seen := false
		for {
			n, err := syscall.Read(fd, buf)
			if errors.Is(err, syscall.EAGAIN) {
				return seen
			}
			require.NoError(t, err)
			seen = seen || n > 0
		}
	}

	a := openAuditor(t, testConfig(t))
	s := a.store.(*sqliteStore)
	ctx := context.Background()
	rows := recBenchRows()
	next := 0
	batch := func() {
		b := make([]*pending, 64)
		for i := range b {
			e := rows[next%len(rows)].event
			next++
			p, err := a.prepare(ctx, &e)
			require.NoError(t, err)
			b[i] = p
		}
		require.NoError(t, s.insert(ctx, b, nil))
	}
	// Enough rows that a batch lands on scattered leaves of the user and
	// IP indexes, as on any database in use.
	for range 80 {
		batch()
	}
	assert.False(t, created(), "a batch created a file in the temporary folder")

	// The control: the same batch, with SQLite's default temp_store, does
	// create one, so the watch above could have seen it.
	_, err = s.conn.ExecContext(ctx, "PRAGMA temp_store = DEFAULT")
	require.NoError(t, err)
	batch()
	assert.True(t, created(), "with temp_store DEFAULT a batch should spill its statement journal")
}
