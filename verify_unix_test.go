//go:build unix

package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Whoever can create a file beside trek.log must not be able to stop
// Verify for good: a named pipe would block it at open, /dev/zero would
// feed it forever. Entries named like rotated logs that are not regular
// files are skipped and counted.
func TestVerifySkipsLogFilesThatAreNotFiles(t *testing.T) {
	f := newChainFixture(t, 3)
	logs := filepath.Join(f.dir, "logs")
	require.NoError(t, syscall.Mkfifo(filepath.Join(logs, "trek-2026-01-01T00-00-00.000.log"), 0o600))
	require.NoError(t, os.Symlink("/dev/zero", filepath.Join(logs, "trek-2026-01-02T00-00-00.000.log")))
	require.NoError(t, os.Symlink(filepath.Join(logs, "trek.log"), filepath.Join(logs, "trek-2026-01-03T00-00-00.000.log")))

	rep, err := f.a.Verify(t.Context())
	require.NoError(t, err)
	assert.True(t, rep.Intact, "%+v", rep.Problem)
	assert.Equal(t, 3, rep.SkippedLogFiles)
	assert.Equal(t, 3, rep.Anchors, "trek.log itself, read once")
}

// TestVerifyReadsAFileOnceWhateverItsNames: hard links to trek.log named
// like rotated logs cost no disk, but read one by one each would add its
// heads again: a thousand of them, a thousand times the memory and the
// time. A file is read once, under whichever name comes first, and a
// head kept once.
func TestVerifyReadsAFileOnceWhateverItsNames(t *testing.T) {
	f := newChainFixture(t, 5)
	logs := filepath.Join(f.dir, "logs")
	for i := range 200 {
		name := filepath.Join(logs, fmt.Sprintf("trek-2001-01-01T00-00-%02d.%03d.log", i/100, i%100))
		require.NoError(t, os.Link(filepath.Join(logs, "trek.log"), name))
	}
	data, err := os.ReadFile(filepath.Join(logs, "trek.log"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(logs, "trek-2001-01-02T00-00-00.000.log"), data, 0o600)) // a copy

	var found anchors
	files, err := logFiles(filepath.Join(logs, "trek.log"))
	require.NoError(t, err)
	require.Len(t, files, 202)
	for _, file := range files {
		require.NoError(t, found.readFile(t.Context(), file, newAnchorSigner(f.a.store.(*sqliteStore).chain.key)))
	}
	assert.Len(t, found.files, 2, "trek.log and the copy, each read once")
	assert.Len(t, found.list, 5, "each head kept once")

	rep, err := f.a.Verify(t.Context())
	require.NoError(t, err)
	assert.True(t, rep.Intact, "%+v", rep.Problem)
	assert.Equal(t, 5, rep.Anchors)
}

// TestVerifyStopsWithinALineThatDoesNotEnd: a sparse file named like a
// rotated log is one line of zeros as long as its size says, terabytes
// for no disk; Verify reads it only while its context lasts. (A gigabyte
// here: read whole, the test fails in a second rather than hang.)
func TestVerifyStopsWithinALineThatDoesNotEnd(t *testing.T) {
	f := newChainFixture(t, 2)
	sparse := filepath.Join(f.dir, "logs", "trek-2001-01-01T00-00-00.000.log")
	file, err := os.Create(sparse)
	require.NoError(t, err)
	require.NoError(t, file.Truncate(1<<30))
	require.NoError(t, file.Close())

	var found anchors
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the check within the line is what ends the read
	err = found.readFile(ctx, sparse, newAnchorSigner(f.a.store.(*sqliteStore).chain.key))
	assert.ErrorIs(t, err, context.Canceled)
}
