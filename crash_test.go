package audit

// The durability promise under a crash: Record returns nil only once the
// event is committed, so an event acknowledged before the process is killed
// is in the database afterwards, and the file is sound.

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The child process is this test binary, gated by these variables.
const (
	crashDirEnv = "AUDIT_CRASH_CHILD_DIR"
	crashRunEnv = "AUDIT_CRASH_CHILD_RUN"
	// crashMark starts each line the child prints for an acknowledged event.
	crashMark = "ACK "
	// crashWriters is the number of goroutines recording in the child.
	crashWriters = 6
	// crashMaxEvents stops a child that nobody kills (its parent died
	// without closing the pipe), so it cannot run forever.
	crashMaxEvents = 200_000
)

// TestCrashChild is the process TestCrashKeepsEveryAcknowledgedEvent kills.
// It records from several goroutines as fast as it can and prints the
// resource of every event whose Record returned nil, one line per write.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestCrashKeepsEveryAcknowledgedEvent only")
	}
	run := os.Getenv(crashRunEnv)
	a, err := Open(Config{
		DBPath:   filepath.Join(dir, "travel.db"),
		LogPath:  filepath.Join(dir, "logs", "trek.log"),
		ChainKey: faultChainKey,
	})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range crashWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range crashMaxEvents / crashWriters {
				res := fmt.Sprintf("crash-r%s-g%d-n%d", run, g, n)
				err := a.Record(context.Background(), Event{
					Action:   TripCreate,
					Actor:    Actor{UserID: int64(g + 1), Email: fmt.Sprintf("g%d@example.com", g)},
					Resource: res,
					Details:  map[string]any{"title": res, "tripId": n},
				})
				if err != nil {
					fmt.Fprintf(os.Stderr, "%s: %v\n", res, err)
					os.Exit(3)
				}
				// One write per line: lines from the goroutines never
				// interleave, and each is out of the process at once
				// (os.Stdout is unbuffered).
				if _, err := os.Stdout.WriteString(crashMark + res + "\n"); err != nil {
					os.Exit(4) // the parent is gone
				}
			}
		}()
	}
	wg.Wait()
	a.Close()
}

func TestCrashKeepsEveryAcknowledgedEvent(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "travel.db")
	// Kill after this many acknowledged events: from the first one (the
	// child has only just opened the database) to a few hundred, so the kill
	// lands at different points of the writer's cycle.
	killAfter := []int{1, 3, 8, 20, 45, 90, 150, 240, 360, 500}
	acked := map[string]bool{}
	for run, n := range killAfter {
		t.Run(fmt.Sprintf("kill after %d", n), func(t *testing.T) {
			cmd := exec.Command(exe, "-test.run=^TestCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, fmt.Sprintf("%s=%d", crashRunEnv, run))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			t.Cleanup(func() { cmd.Process.Kill() }) // should the test stop early; harmless once it is gone

			r := bufio.NewReader(out)
			seen := 0
			killed := false
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					// EOF: the child is gone. A fragment without its
					// newline was never fully written, so it is no ack.
					require.ErrorIs(t, err, io.EOF)
					break
				}
				if res, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), crashMark); ok {
					acked[res] = true
					seen++
				}
				if seen == n && !killed {
					require.NoError(t, cmd.Process.Kill()) // SIGKILL; keep reading what is already in the pipe
					killed = true
				}
			}
			err = cmd.Wait()
			var exit *exec.ExitError
			require.True(t, errors.As(err, &exit), "the child ended on its own: %v\n%s", err, stderr.String())
			ws, ok := exit.Sys().(syscall.WaitStatus)
			require.True(t, ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL,
				"the child was not killed but ended with %v\n%s", err, stderr.String())
			require.GreaterOrEqual(t, seen, n)

			// Straight after the kill, with plain database/sql: the file is
			// sound and every acknowledged event from every run is in it.
			db, err := sql.Open("sqlite3", "file:"+dbPath+"?_busy_timeout=10000")
			require.NoError(t, err)
			defer db.Close()
			var check string
			require.NoError(t, db.QueryRow(`PRAGMA integrity_check`).Scan(&check))
			assert.Equal(t, "ok", check, "integrity_check")
			rows, err := db.Query(`SELECT resource FROM audit_log`)
			require.NoError(t, err)
			stored := map[string]int{}
			for rows.Next() {
				var res string
				require.NoError(t, rows.Scan(&res))
				stored[res]++
			}
			require.NoError(t, rows.Err())
			rows.Close()
			missing := 0
			for res := range acked {
				if stored[res] == 0 {
					missing++
					if missing <= 5 {
						t.Errorf("acknowledged event %s is not in the database", res)
					}
				}
			}
			assert.Zero(t, missing, "acknowledged events missing")
			t.Logf("%d acknowledged before the kill, %d read in all; %d rows stored", n, seen, len(stored))
			for res, k := range stored {
				assert.Equal(t, 1, k, "%s stored once", res)
			}
		})
	}
}
