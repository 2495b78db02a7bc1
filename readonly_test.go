package audit

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readOnlySnapshot is what a read-only Open must leave as it was: the names
// in the data folder and its logs folder, and a digest of each file there.
// SQLite's -shm and -wal files are left out: it needs them to read a
// WAL-mode database, and they hold no data.
func readOnlySnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	for _, sub := range []string{"", "logs"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		require.NoError(t, err)
		for _, e := range entries {
			name := filepath.Join(sub, e.Name())
			switch {
			case strings.HasSuffix(name, "-shm") || strings.HasSuffix(name, "-wal"):
			case e.IsDir():
				snap[name] = "folder"
			default:
				raw, err := os.ReadFile(filepath.Join(dir, name))
				require.NoError(t, err)
				snap[name] = fmt.Sprintf("%x", sha256.Sum256(raw))
			}
		}
	}
	return snap
}

// TestReadOnlyOpenChangesNothing records events, closes, and reopens the
// files read-only: List and Verify work, Record and LogWriter refuse, and
// afterwards every file under the data folder is as it was, byte for byte.
func TestReadOnlyOpenChangesNothing(t *testing.T) {
	cfg := testConfig(t)
	dir := filepath.Dir(cfg.DBPath)
	a := openAuditor(t, cfg)
	for i := range 25 {
		require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin, IP: "203.0.113.9",
			Actor: Actor{UserID: int64(1 + i%3), Email: "alice@example.com"}}))
	}
	require.NoError(t, a.Close())
	before := readOnlySnapshot(t, dir)
	require.Contains(t, before, "travel.db")
	require.Contains(t, before, filepath.Join("logs", "trek.log"))

	ro := cfg
	ro.ReadOnly = true
	r := openAuditor(t, ro)

	page, err := r.List(t.Context(), Query{Limit: 10})
	require.NoError(t, err)
	assert.EqualValues(t, 25, page.Total)
	assert.Len(t, page.Entries, 10)

	rep, err := r.Verify(t.Context())
	require.NoError(t, err)
	assert.True(t, rep.Intact, "%+v", rep.Problem)
	assert.EqualValues(t, 25, rep.Checked)
	assert.Positive(t, rep.Anchors, "trek.log's anchors are read")

	err = r.Record(t.Context(), Event{Action: UserLogin})
	assert.ErrorIs(t, err, ErrReadOnly)
	assert.Contains(t, err.Error(), `"user.login" not recorded`)
	_, err = r.LogWriter().Write([]byte("[INFO] host line\n"))
	assert.ErrorIs(t, err, ErrReadOnly)
	st := r.Stats()
	assert.EqualValues(t, 1, st.Rejected)
	assert.EqualValues(t, 1, st.RejectedBy["read_only"])
	require.NoError(t, r.Close())

	if wal, err := os.Stat(cfg.DBPath + "-wal"); err == nil {
		assert.Zero(t, wal.Size(), "the -wal file holds nothing")
	}
	assert.Equal(t, before, readOnlySnapshot(t, dir), "every file as it was")
}

// TestReadOnlyOpenReadsWhileAWriterRuns lists through a read-only Auditor
// while a read-write one keeps recording into the same file, as
// trek-audit does beside TREK's running server.
func TestReadOnlyOpenReadsWhileAWriterRuns(t *testing.T) {
	cfg := testConfig(t)
	w := openAuditor(t, cfg)
	require.NoError(t, w.Record(t.Context(), Event{Action: UserRegister}))
	ro := cfg
	ro.ReadOnly = true
	r := openAuditor(t, ro)
	for i := range 5 {
		require.NoError(t, w.Record(t.Context(), Event{Action: UserLogin}))
		page, err := r.List(t.Context(), Query{Limit: 1})
		require.NoError(t, err)
		assert.EqualValues(t, i+2, page.Total, "the reader sees each commit")
	}
	rep, err := r.Verify(t.Context())
	require.NoError(t, err)
	assert.True(t, rep.Intact, "%+v", rep.Problem)
	assert.EqualValues(t, 6, rep.Checked)
}

// testChainKey is a chain key for tests that must not depend on a key file.
const testChainKey = "0123456789abcdef0123456789abcdef"

// TestReadOnlyOpenRefusesWhatItWouldHaveToCreate: a read-only Open that
// would need to create or change something fails, names why, and leaves
// the folder as it was.
func TestReadOnlyOpenRefusesWhatItWouldHaveToCreate(t *testing.T) {
	cases := []struct {
		name    string
		setup   func(t *testing.T, cfg *Config)
		wantIs  error
		wantMsg string
	}{
		{
			name:   "no database",
			setup:  func(t *testing.T, cfg *Config) { cfg.ChainKey = []byte(testChainKey) },
			wantIs: ErrStore, wantMsg: "travel.db",
		},
		{
			name: "a TREK database the library has not opened yet",
			setup: func(t *testing.T, cfg *Config) {
				cfg.ChainKey = []byte(testChainKey)
				db := createTrekDB(t, cfg.DBPath, map[int64]string{1: "alice"})
				insertTrekRow(t, db, 1, string(UserLogin), nil, nil, "203.0.113.9")
				require.NoError(t, db.Close())
			},
			wantIs: ErrStore, wantMsg: "version 0 of the library's schema",
		},
		{
			name: "no chain key",
			setup: func(t *testing.T, cfg *Config) {
				a, err := Open(*cfg)
				require.NoError(t, err)
				require.NoError(t, a.Close())
				require.NoError(t, os.Remove(cfg.ChainKeyFile))
			},
			wantIs: ErrChainKey, wantMsg: ".audit_key",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			dir := filepath.Dir(cfg.DBPath)
			cfg.ChainKeyFile = filepath.Join(dir, ".audit_key")
			tc.setup(t, &cfg)
			before := readOnlySnapshot(t, dir)
			cfg.ReadOnly = true
			a, err := Open(cfg)
			if a != nil {
				a.Close()
			}
			require.Error(t, err)
			assert.True(t, errors.Is(err, tc.wantIs), "%v is not %v", err, tc.wantIs)
			assert.Contains(t, err.Error(), tc.wantMsg)
			assert.Equal(t, before, readOnlySnapshot(t, dir), "the folder is as it was")
		})
	}
}
