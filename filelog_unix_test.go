//go:build unix

package audit

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// trek.log replaced by a named pipe for a log shipper: while no one reads
// it (the shipper restarting), writes fail at once rather than wait for a
// reader holding every write of the process, Record's included; once one
// reads, the lines go to it.
func TestTrekLogAsANamedPipeWithoutAReaderDoesNotBlock(t *testing.T) {
	cfg := testConfig(t)
	require.NoError(t, os.MkdirAll(filepath.Dir(cfg.LogPath), 0o750))
	require.NoError(t, syscall.Mkfifo(cfg.LogPath, 0o600))
	a := openAuditor(t, cfg)

	done := make(chan error, 2)
	go func() {
		_, err := a.LogWriter().Write([]byte("[INFO] 2026-04-20T10:11:53 host line\n"))
		done <- err
		done <- a.Record(context.Background(), Event{Action: UserLogin})
	}()
	for range 2 {
		select {
		case err := <-done:
			require.ErrorIs(t, err, ErrLogWrite)
			assert.Contains(t, err.Error(), "is a named pipe that no one reads")
		case <-time.After(time.Minute): // a watchdog, not a wait: the writes answer at once
			r, err := os.OpenFile(cfg.LogPath, os.O_RDONLY, 0) // let the blocked open through
			require.NoError(t, err)
			defer r.Close()
			require.FailNow(t, "a write to trek.log waits for the pipe's reader")
		}
	}
	assert.EqualValues(t, 1, a.Stats().Recorded, "the event is stored")

	r, err := os.OpenFile(cfg.LogPath, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	require.NoError(t, err)
	defer r.Close()
	require.NoError(t, a.Record(context.Background(), Event{Action: UserLoginFailed}))
	require.NoError(t, syscall.SetNonblock(int(r.Fd()), false))
	line, err := bufio.NewReader(r).ReadString('\n')
	require.NoError(t, err)
	assert.Contains(t, line, "anonymous failed to log in ip=-")
}

// TestTrekLogThatIsNoRegularFileIsNeverRotated: a named pipe (a log
// shipper's) or a link to a device in trek.log's place takes every line
// however many go through it. Rotated at the size limit as a file is, it
// would be renamed away, and the lines would go to a new regular
// trek.log that no one reads.
func TestTrekLogThatIsNoRegularFileIsNeverRotated(t *testing.T) {
	host := strings.Repeat("x", 1023) + "\n"
	const hostLines = 1100 // past LogMaxSizeMB 1
	for _, tc := range []struct {
		name string
		// make puts it in place; lines, where given, counts the host's
		// lines read from it once done is called, after the Auditor's
		// Close.
		make  func(t *testing.T, path string) (lines <-chan int, done func())
		isOne func(os.FileMode) bool
	}{
		{"named pipe", func(t *testing.T, path string) (<-chan int, func()) {
			require.NoError(t, syscall.Mkfifo(path, 0o600))
			r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
			require.NoError(t, err)
			t.Cleanup(func() { r.Close() })
			// A writer of the test's own, so that the reader meets the
			// pipe's end only once it is closed, not before the Auditor
			// opens it.
			w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			require.NoError(t, err)
			require.NoError(t, syscall.SetNonblock(int(r.Fd()), false))
			lines := make(chan int, 1)
			go func() {
				n, sc := 0, bufio.NewScanner(r)
				sc.Buffer(nil, 1<<20)
				for sc.Scan() {
					if sc.Text()+"\n" == host {
						n++
					}
				}
				lines <- n // at the pipe's end: once both writers closed it
			}()
			return lines, func() { w.Close() }
		}, func(m os.FileMode) bool { return m&os.ModeNamedPipe != 0 }},
		{"link to /dev/null", func(t *testing.T, path string) (<-chan int, func()) {
			require.NoError(t, os.Symlink(os.DevNull, path))
			return nil, func() {}
		}, func(m os.FileMode) bool { return m&os.ModeSymlink != 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.LogMaxSizeMB = 1
			require.NoError(t, os.MkdirAll(filepath.Dir(cfg.LogPath), 0o750))
			lines, done := tc.make(t, cfg.LogPath)
			a := openAuditor(t, cfg)
			for range hostLines {
				_, err := a.LogWriter().Write([]byte(host))
				require.NoError(t, err)
			}
			require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin}))
			require.NoError(t, a.Close())
			done()

			if lines != nil {
				select {
				case n := <-lines:
					assert.Equal(t, hostLines, n, "every line went through the pipe")
				case <-time.After(time.Minute): // a watchdog, not a wait: the reader ends once the writers closed
					require.FailNow(t, "the pipe's reader saw no end")
				}
			}
			entries, err := os.ReadDir(filepath.Dir(cfg.LogPath))
			require.NoError(t, err)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			assert.Equal(t, []string{"trek.log"}, names, "nothing rotated, nothing made beside it")
			st, err := os.Lstat(cfg.LogPath)
			require.NoError(t, err)
			assert.True(t, tc.isOne(st.Mode()), "trek.log is still what it was: %v", st.Mode())
		})
	}
}
