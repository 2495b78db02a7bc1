//go:build unix

package audit

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
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
