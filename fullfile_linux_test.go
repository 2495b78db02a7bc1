package audit

// A full disk can take part of a write: trek.log then ends in a torn line.
// The next line must start a line of its own, not continue the torn one.
// A full disk does not fit in a temp dir, but a file size limit
// (RLIMIT_FSIZE) cuts a write short just as one does; it applies to the
// whole process, so a child process of this test binary takes it.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	fullFileDirEnv = "AUDIT_FULLFILE_CHILD_DIR"
	// fullFileRoom is how much of the cut event's write fits.
	fullFileRoom = 40
	// fullFileHostBytes makes trek.log the largest file, so that the size
	// limit cuts its write and no write of SQLite's.
	fullFileHostBytes = 4 << 20
)

// TestFullFileChild is the process TestTornLineOnAFullDiskIsEnded runs: it
// records an event whose trek.log write the size limit cuts short, lifts
// the limit, writes a host's line and records one more event. It prints what each Record returned.
func TestFullFileChild(t *testing.T) {
	dir := os.Getenv(fullFileDirEnv)
	if dir == "" {
		t.Skip("run by TestTornLineOnAFullDiskIsEnded only")
	}
	cfg := Config{DBPath: filepath.Join(dir, "travel.db"), LogPath: filepath.Join(dir, "logs", "trek.log"), ChainKey: faultChainKey}
	a, err := Open(cfg)
	require.NoError(t, err)
	defer a.Close()
	record := func(title string) error {
		return a.Record(context.Background(), Event{Action: TripCreate,
			Actor: Actor{UserID: 1, Email: "u1@example.com"}, Details: map[string]any{"title": title}})
	}
	require.NoError(t, record("before"))
	line := strings.Repeat("x", 1023) + "\n"
	for range fullFileHostBytes / len(line) {
		_, err := a.LogWriter().Write([]byte(line))
		require.NoError(t, err)
	}
	st, err := os.Stat(cfg.LogPath)
	require.NoError(t, err)

	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim))
	cut := lim
	cut.Cur = uint64(st.Size()) + fullFileRoom
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_FSIZE, &cut))
	cutErr := record("cut")
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim))
	_, hostErr := a.LogWriter().Write([]byte("host: after the cut\n"))
	require.NoError(t, hostErr)
	afterErr := record("after")
	fmt.Printf("cut: %v\nafter: %v\nlogwrite: %v\n", cutErr, afterErr, errors.Is(cutErr, ErrLogWrite))
}

func TestTornLineOnAFullDiskIsEnded(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	dir := t.TempDir()
	cmd := exec.Command(exe, "-test.run=^TestFullFileChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), fullFileDirEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the child failed:\n%s", out)
	assert.Contains(t, string(out), "logwrite: true\n", "the cut event's Record reports ErrLogWrite:\n%s", out)
	assert.Contains(t, string(out), "after: <nil>\n", "recording goes on once there is room:\n%s", out)

	db := openTestDB(t, filepath.Join(dir, "travel.db"))
	var titles []string
	for _, r := range readRows(t, db) {
		titles = append(titles, r.Details.String)
	}
	assert.Equal(t, []string{`{"title":"before"}`, `{"title":"cut"}`, `{"title":"after"}`}, titles,
		"an event whose line was cut is stored all the same")

	lines := logLines(t, filepath.Join(dir, "logs", "trek.log"))
	torn, after := -1, -1
	for i, l := range lines {
		switch {
		case strings.Contains(l, `"after"`):
			after = i
		case strings.HasPrefix(l, "[INFO] ") && len(l) == fullFileRoom:
			torn = i
		}
	}
	require.NotEqual(t, -1, after, "the line after the cut is in trek.log")
	require.NotEqual(t, -1, torn, "the torn line stands alone, %d bytes long", fullFileRoom)
	require.Greater(t, len(lines), torn+1)
	assert.Equal(t, "host: after the cut", lines[torn+1], "the host's next line starts a line of its own")
	assert.Equal(t, torn+2, after, "the library's next line follows the host's")
	assert.Regexp(t, `^\[INFO\] \S+ u1@example\.com created trip "after" ip=-$`, lines[after],
		"the next line starts a line of its own")
	assert.Regexp(t, chainAnchorLine, lines[after+1])
}
