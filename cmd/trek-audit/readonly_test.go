package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// folderState is every file under dir with its mode and content, except
// the -shm and -wal files SQLite keeps beside a WAL-mode database in order
// to read it.
func folderState(t *testing.T, dir string) map[string]string {
	t.Helper()
	state := map[string]string{}
	require.NoError(t, filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || strings.HasSuffix(path, "-shm") || strings.HasSuffix(path, "-wal") {
			return err
		}
		raw, err := os.ReadFile(path)
		state[strings.TrimPrefix(path, dir)] = info.Mode().String() + "\n" + string(raw)
		return err
	}))
	return state
}

// readingCommands are the commands that read the audit log.
var readingCommands = [][]string{
	{"verify"},
	{"list"},
	{"list", "--json", "--action", "user.login"},
	{"export", "--format", "jsonl"},
	{"export", "--format", "csv"},
	{"stats"},
	{"prune", "--before", "2021-01-01"},
}

// TestCommandsChangeNothing runs every reading command on a data folder
// whose server has stopped, as an operator would on a copy kept as
// evidence: each succeeds, and the database, trek.log and the key file
// are byte for byte what they were. Made immutable, the files can't be
// written at all, and the commands work the same.
func TestCommandsChangeNothing(t *testing.T) {
	for _, immutable := range []bool{false, true} {
		t.Run(fmt.Sprintf("immutable=%v", immutable), func(t *testing.T) {
			f := newFixture(t, 40)
			require.NoError(t, f.a.Close())
			require.NoError(t, f.raw.Close())
			before := folderState(t, f.dir)
			require.Contains(t, before, "/travel.db")
			require.Contains(t, before, "/logs/trek.log")
			require.Contains(t, before, "/.audit_key")
			if immutable {
				for _, p := range []string{f.db, f.log, f.key} {
					chattr(t, p)
				}
			}
			for _, args := range readingCommands {
				code, _, stderr := f.run(t, args...)
				assert.Zero(t, code, "%v: %s", args, stderr)
			}
			assert.Equal(t, before, folderState(t, f.dir))
		})
	}
}

// TestCommandsRefuseAnUnmigratedDatabase: a TREK database that no server
// with the library has opened lacks the library's columns. The commands say
// so rather than add them, and leave the file alone.
func TestCommandsRefuseAnUnmigratedDatabase(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	db := trekOnlyDB(t, dir, `INSERT INTO audit_log (action, ip) VALUES ('user.login', '203.0.113.9')`)
	t.Setenv("AUDIT_CHAIN_KEY", "0123456789abcdef0123456789abcdef")
	before := folderState(t, dir)
	for _, args := range [][]string{{"verify"}, {"list"}, {"export", "--format", "jsonl"}} {
		code, _, stderr := runCLI(t, context.Background(), withPaths(args, "--db", db, "--log", filepath.Join(dir, "logs", "trek.log"))...)
		assert.Equal(t, 2, code, "%v", args)
		assert.Contains(t, stderr, "open it read-write once", "%v", args)
	}
	assert.Equal(t, before, folderState(t, dir))
}

// chattr makes path immutable until the test ends: read-only even for
// root. It skips the test where the attribute is not available.
func chattr(t *testing.T, path string) {
	t.Helper()
	if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		t.Skipf("chattr +i not available here: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("chattr", "-i", path).CombinedOutput(); err != nil {
			t.Errorf("chattr -i %s: %v %s", path, err, out)
		}
	})
}
