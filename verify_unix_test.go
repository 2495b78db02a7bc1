//go:build unix

package audit

import (
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
