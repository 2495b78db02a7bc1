package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/trek-go/audit"
)

// trekRows are two rows TREK's own code inserted, with no chain value.
var trekRows = []trekRow{
	{"2025-03-01 10:00:00", nil, "user.passkey_register", nil, nil, "10.0.0.1"},
	{"2025-03-02 11:30:00", 1, "user.login", nil, `{"method":"oidc"}`, "10.0.0.2"},
}

func TestVerifyIntact(t *testing.T) {
	f := newFixture(t, 12, trekRows...)

	code, stdout, stderr := f.run(t, "verify")
	require.Equal(t, exitOK, code, stderr)
	assert.Empty(t, stderr, "no progress bar when stderr is not a terminal")
	assert.Contains(t, stdout, "OK: the audit log's chain is intact.")
	assert.Regexp(t, `rows checked: +12 `, stdout)
	assert.Regexp(t, `unchained rows: +2 `, stdout)
	assert.Regexp(t, `anchors read: +[1-9]`, stdout)
	assert.Contains(t, stdout, f.key)

	code, stdout, _ = f.run(t, "verify", "--json")
	require.Equal(t, exitOK, code)
	var rep audit.VerifyReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	assert.True(t, rep.Intact)
	assert.Nil(t, rep.Problem)
	assert.EqualValues(t, 12, rep.Checked)
	assert.EqualValues(t, 2, rep.Unchained)
	assert.EqualValues(t, 12, rep.HeadID)
	assert.Positive(t, rep.Anchors)
	assert.NotContains(t, stdout, "inconclusive", "said only when verify could not check")
}

// TestVerifyWarnsOfForgedAnchors: a line shaped like a chain head but
// without a tag the key made is ignored, and the operator is told.
func TestVerifyWarnsOfForgedAnchors(t *testing.T) {
	f := newFixture(t, 3)
	forged := "[INFO] 2026-04-20T10:11:53 AUDIT-CHAIN head id=99 seq=99 mac=" + strings.Repeat("00", 32) +
		" tag=" + strings.Repeat("0", 32) + "\n"
	_, err := f.a.LogWriter().Write([]byte(forged))
	require.NoError(t, err)

	code, stdout, stderr := f.run(t, "verify")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "OK: the audit log's chain is intact.")
	assert.Regexp(t, `warning: +1 lines in trek.log look like chain heads but carry no tag this key made`, stdout)
}

func TestVerifyTampered(t *testing.T) {
	cases := []struct {
		name   string
		tamper string
		kind   audit.TamperKind
		id     int64
	}{
		{"details rewritten", `UPDATE audit_log SET details = '{"username":"harmless"}' WHERE id = 5`, audit.TamperChanged, 5},
		{"row deleted from the middle", `DELETE FROM audit_log WHERE id = 7`, audit.TamperMissing, 8},
		{"newest rows cut off", `DELETE FROM audit_log WHERE id > 9`, audit.TamperMissing, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 12)
			f.exec(t, tc.tamper)

			code, stdout, stderr := f.run(t, "verify")
			assert.Equal(t, exitTampered, code, stderr)
			assert.Contains(t, stdout, "TAMPERED")
			assert.Contains(t, stdout, "problem:        "+string(tc.kind)+" ")
			if tc.id > 0 {
				assert.Contains(t, stdout, "at row "+strconv.FormatInt(tc.id, 10)+",")
			} else {
				assert.Contains(t, stdout, "past the end of the table")
			}

			code, stdout, _ = f.run(t, "verify", "--json")
			assert.Equal(t, exitTampered, code)
			var rep audit.VerifyReport
			require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
			assert.False(t, rep.Intact)
			require.NotNil(t, rep.Problem)
			assert.Equal(t, tc.kind, rep.Problem.Kind)
			assert.Equal(t, tc.id, rep.Problem.ID)
			assert.NotEmpty(t, rep.Problem.Detail)
		})
	}
}

// TestVerifyTamperingAndOneMoreWrite: rows rewritten, then one more write
// to travel.db that the walk does not need (the row count's row deleted,
// one of its triggers dropped). verify, opening the database read-only,
// goes on without them and reports the tampering, with or without its
// progress bar (whose total the count gave), rather than that it could not
// check.
func TestVerifyTamperingAndOneMoreWrite(t *testing.T) {
	for _, more := range []string{`DELETE FROM audit_log_count`, `DROP TRIGGER audit_log_count_delete`, `DROP TABLE audit_log_action_count`} {
		t.Run(more, func(t *testing.T) {
			f := newFixture(t, 12)
			require.NoError(t, f.a.Close())
			f.exec(t, `UPDATE audit_log SET details = '{"username":"harmless"}' WHERE id = 5`)
			f.exec(t, more)
			for _, args := range [][]string{{"verify"}, {"verify", "--progress"}} {
				code, stdout, stderr := f.run(t, args...)
				assert.Equal(t, exitTampered, code, stderr)
				assert.Contains(t, stdout, "at row 5,")
			}
		})
	}
}

// TestVerifyKeySources: verify finds the chain key beside the database, in
// --key-file (before or after the command) or in AUDIT_CHAIN_KEY; it names
// a missing or too short key on stderr and never creates a key file; a
// wrong key reports tampering; a run that succeeds or finds tampering
// writes nothing on stderr.
func TestVerifyKeySources(t *testing.T) {
	f := newFixture(t, 5)
	keyHex, err := os.ReadFile(f.key)
	require.NoError(t, err)
	elsewhere := filepath.Join(t.TempDir(), "secret", "audit.key")
	require.NoError(t, os.MkdirAll(filepath.Dir(elsewhere), 0o700))
	require.NoError(t, os.WriteFile(elsewhere, keyHex, 0o600))

	// The library's key from AUDIT_CHAIN_KEY: a database whose rows were
	// chained with it, and no key file anywhere.
	envKey := "an operator's key of 16 bytes or more"
	envDir := t.TempDir()
	envDB := filepath.Join(envDir, "travel.db")
	a, err := audit.Open(audit.Config{DBPath: envDB, LogPath: filepath.Join(envDir, "trek.log"), ChainKey: []byte(envKey)})
	require.NoError(t, err)
	require.NoError(t, a.Record(t.Context(), audit.Event{Action: audit.UserLogin}))
	require.NoError(t, a.Close())
	envKeyFile := filepath.Join(envDir, ".audit_key")
	require.False(t, fileExists(t, envKeyFile))

	cases := []struct {
		name    string
		env     string // AUDIT_CHAIN_KEY
		args    []string
		code    int
		message string // on stderr; "": stderr stays empty
	}{
		{"the key file beside the database", "", []string{"verify", "--db", f.db, "--log", f.log}, exitOK, ""},
		{"a key file given by --key-file", "", []string{"verify", "--db", f.db, "--log", f.log, "--key-file", elsewhere}, exitOK, ""},
		{"--key-file before the command", "", []string{"--key-file", elsewhere, "verify", "--db", f.db, "--log", f.log}, exitOK, ""},
		{"a --key-file that does not exist", "", []string{"verify", "--db", f.db, "--key-file", elsewhere + ".old"}, exitError,
			"no key file at " + elsewhere + ".old"},
		{"AUDIT_CHAIN_KEY", envKey, []string{"verify", "--db", envDB, "--log", filepath.Join(envDir, "trek.log")}, exitOK, ""},
		{"no AUDIT_CHAIN_KEY and no key file", "", []string{"verify", "--db", envDB}, exitError,
			"AUDIT_CHAIN_KEY is not set and there is no key file at " + envKeyFile},
		{"another key does not verify", "another key, 16 bytes or more", []string{"verify", "--db", f.db, "--log", f.log}, exitError,
			"most likely the key is not the one the rows were written with. The key came from AUDIT_CHAIN_KEY"},
		{"another key, trek.log not read", "another key, 16 bytes or more", []string{"verify", "--db", f.db, "--log", f.log, "--no-anchors"},
			exitError, "written with (trek.log not read). The key came from AUDIT_CHAIN_KEY"},
		{"AUDIT_CHAIN_KEY too short", "short", []string{"verify", "--db", envDB}, exitError, "at least 16 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AUDIT_CHAIN_KEY", tc.env)
			code, _, stderr := runCLI(t, t.Context(), tc.args...)
			assert.Equal(t, tc.code, code, stderr)
			if tc.message == "" {
				assert.Empty(t, stderr)
			} else {
				assert.Contains(t, stderr, tc.message)
			}
			assert.False(t, fileExists(t, envKeyFile), "verify never creates a key")
			assert.False(t, fileExists(t, elsewhere+".old"), "verify never creates a key")
		})
	}
}

func TestVerifyUnreadableDatabase(t *testing.T) {
	f := newFixture(t, 2)
	notSQLite := filepath.Join(f.dir, "notes.db")
	require.NoError(t, os.WriteFile(notSQLite, bytes.Repeat([]byte("not a database\n"), 200), 0o600))
	code, stdout, stderr := runCLI(t, t.Context(), "verify", "--db", notSQLite, "--key-file", f.key)
	assert.Equal(t, exitError, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "trek-audit verify: ")
}

func TestVerifyProgressBar(t *testing.T) {
	f := newFixture(t, 3, trekRows...)
	code, _, stderr := f.run(t, "verify", "--progress")
	require.Equal(t, exitOK, code)
	assert.Contains(t, stderr, "\rverifying [")
	assert.Contains(t, stderr, "100%  5/5 rows")
	assert.True(t, strings.HasSuffix(stderr, "\n"), "the bar's line is ended")
}

func TestProgressBarDrawing(t *testing.T) {
	var buf bytes.Buffer
	b := &progressBar{w: &buf, label: "verifying"}
	b.update(0, 0)
	b.update(50, 200)
	b.update(300, 200) // rows arrived after the count
	b.finish()
	assert.Equal(t, "\rverifying [##############################] 100%  0/0 rows"+
		"\rverifying [#######.......................]  25%  50/200 rows"+
		"\rverifying [##############################] 100%  300/300 rows\n", buf.String())

	var nilBar *progressBar
	assert.NotPanics(t, func() { nilBar.update(1, 2); nilBar.finish() })
}

// A mistyped --log must not turn off, silently, the only check for rows
// cut off the end: verify says it could not check, unless --no-anchors
// says to check the chain alone.
func TestVerifyWithoutTrekLog(t *testing.T) {
	f := newFixture(t, 5)
	f.exec(t, `DELETE FROM audit_log WHERE id = 5`) // found only through the anchors
	missing := filepath.Join(filepath.Dir(f.log), "no-such-folder", "trek.log")

	code, stdout, stderr := runCLI(t, t.Context(), "verify", "--db", f.db, "--log", missing)
	assert.Equal(t, exitError, code, stdout)
	assert.Contains(t, stderr, missing+" does not exist")
	assert.Contains(t, stderr, "--no-anchors")

	code, stdout, _ = runCLI(t, t.Context(), "verify", "--db", f.db, "--log", missing, "--no-anchors")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, stdout, "rows deleted from the end of the table cannot be detected")

	code, _, _ = f.run(t, "verify")
	assert.Equal(t, exitTampered, code, "with trek.log, the cut is found")
}

// TestVerifyReportsTamperingWithTrekLogGone: trek.log missing makes only
// an otherwise intact chain inconclusive; a chain that shows tampering in
// the database is reported as tampered, trek.log or not.
func TestVerifyReportsTamperingWithTrekLogGone(t *testing.T) {
	f := newFixture(t, 6)
	require.NoError(t, f.a.Close())
	f.exec(t, `UPDATE audit_log SET details = '{"username":"harmless"}' WHERE id = 3`)
	require.NoError(t, os.Remove(f.log))

	code, stdout, stderr := f.run(t, "verify")
	assert.Equal(t, exitTampered, code, stderr)
	assert.Contains(t, stdout, "TAMPERED")
	assert.Contains(t, stdout, "at row 3,")

	code, stdout, stderr = f.run(t, "verify", "--json")
	assert.Equal(t, exitTampered, code, stderr)
	var rep audit.VerifyReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	require.NotNil(t, rep.Problem)
	assert.Equal(t, audit.TamperChanged, rep.Problem.Kind)
	assert.EqualValues(t, 3, rep.Problem.ID)
}

// TestVerifyWithAFolderInPlaceOfTrekLog: a folder named trek.log holds no
// chain heads, and is no more trek.log than a missing file is: verify says
// it could not check rather than report the chain intact. With the chain
// heads in a rotated file beside it, verify checks them and warns of the
// folder.
func TestVerifyWithAFolderInPlaceOfTrekLog(t *testing.T) {
	f := newFixture(t, 5)
	require.NoError(t, f.a.Close())
	rotated := filepath.Join(filepath.Dir(f.log), "trek-2026-01-01T00-00-00.000.log")
	require.NoError(t, os.Rename(f.log, rotated))
	f.exec(t, `DELETE FROM audit_log WHERE id = 5`) // found only through the heads

	t.Run("and nothing else", func(t *testing.T) {
		require.NoError(t, os.Rename(rotated, rotated+".aside"))
		t.Cleanup(func() { require.NoError(t, os.Rename(rotated+".aside", rotated)) })
		require.NoError(t, os.Mkdir(f.log, 0o700))
		t.Cleanup(func() { require.NoError(t, os.Remove(f.log)) })

		code, stdout, stderr := f.run(t, "verify")
		assert.Equal(t, exitError, code, stdout)
		assert.Contains(t, stderr, f.log+" is not a regular file")
		assert.Contains(t, stderr, "--no-anchors")
		assert.NotContains(t, stdout, "OK")

		code, stdout, stderr = f.run(t, "verify", "--no-anchors")
		assert.Equal(t, exitOK, code, stderr)
		assert.Contains(t, stdout, "rows deleted from the end of the table cannot be detected")
	})
	t.Run("beside a rotated file", func(t *testing.T) {
		require.NoError(t, os.Mkdir(f.log, 0o700))
		t.Cleanup(func() { require.NoError(t, os.Remove(f.log)) })

		code, stdout, stderr := f.run(t, "verify")
		assert.Equal(t, exitTampered, code, stderr)
		assert.Contains(t, stdout, "past the end of the table")
		assert.Regexp(t, `warning: +1 entries beside trek.log are named like log files but are not regular files \(a folder,`, stdout)
	})
}

// TestVerifyNoAnchorsDoesNotReadTheLog: --no-anchors checks the chain
// alone and reads nothing of trek.log, so a log that cannot be read (here
// its folder is a file; for an operator, one the server's user alone may
// read) does not stop the check.
func TestVerifyNoAnchorsDoesNotReadTheLog(t *testing.T) {
	f := newFixture(t, 3)
	notAFolder := filepath.Join(t.TempDir(), "logs")
	require.NoError(t, os.WriteFile(notAFolder, []byte("a file"), 0o600))
	log := filepath.Join(notAFolder, "trek.log")

	code, _, stderr := runCLI(t, t.Context(), "verify", "--db", f.db, "--log", log)
	require.Equal(t, exitError, code, "reading trek.log fails: %s", stderr)
	assert.Contains(t, stderr, "reading anchors")
	assert.Contains(t, stderr, "(where trek.log cannot be read, --no-anchors checks the chain alone)")

	code, stdout, stderr := runCLI(t, t.Context(), "verify", "--db", f.db, "--log", log, "--no-anchors")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "OK: the audit log's chain is intact.")
	assert.Contains(t, stdout, "--no-anchors: trek.log not read")
	assert.NotContains(t, stdout, "no chain heads found in trek.log", "no warning about what was not asked for")
}

// TestVerifyTamperingIsNotCalledAWrongKey: only a key that verifies
// nothing is named as probably wrong. Rows changed or deleted at the start
// of the chain are tampering, reported as such (exit 1), with trek.log
// gone and a forged head line in its place too.
func TestVerifyTamperingIsNotCalledAWrongKey(t *testing.T) {
	forged := "[INFO] 2026-04-20T10:11:53 AUDIT-CHAIN head id=99 seq=99 mac=" + strings.Repeat("00", 32) +
		" tag=" + strings.Repeat("0", 32) + "\n"
	for _, tc := range []struct{ name, sql string }{
		{"the first row changed", `UPDATE audit_log SET resource = 'forged' WHERE id = (SELECT MIN(id) FROM audit_log WHERE chain_seq IS NOT NULL)`},
		// Its chain value rewritten too, the first two rows fail as under
		// a wrong key; the pairs after them verify.
		{"the first row changed with its chain value", `UPDATE audit_log SET resource = 'forged', chain_mac = '` + strings.Repeat("ab", 32) +
			`' WHERE id = (SELECT MIN(id) FROM audit_log WHERE chain_seq IS NOT NULL)`},
		{"the oldest rows deleted", `DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE chain_seq IS NOT NULL ORDER BY id LIMIT 2)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 6)
			require.NoError(t, f.a.Close())
			f.exec(t, tc.sql)
			code, stdout, stderr := f.run(t, "verify")
			require.Equal(t, exitTampered, code, stdout+stderr)

			require.NoError(t, os.WriteFile(f.log, []byte(forged), 0o600))
			code, stdout, stderr = f.run(t, "verify")
			assert.Equal(t, exitTampered, code, "stdout: %s\nstderr: %s", stdout, stderr)
			assert.NotContains(t, stdout+stderr, "not the key")
		})
	}
}

// TestVerifyWrongKeyOnAOneRowChain: with one chained row there is no second
// to tell a wrong key from a changed row; trek.log's head of that row,
// which the key does not verify either, does.
func TestVerifyWrongKeyOnAOneRowChain(t *testing.T) {
	f := newFixture(t, 1)
	require.NoError(t, f.a.Close())
	t.Setenv("AUDIT_CHAIN_KEY", "another key, 16 bytes or more")
	code, _, stderr := runCLI(t, t.Context(), "verify", "--db", f.db, "--log", f.log)
	assert.Equal(t, exitError, code, stderr)
	assert.Contains(t, stderr, "the only chained one, does not verify under the key, nor does any of the 1 chain heads")
}

// TestVerifyJSONCarriesKeyMismatch: with --json, a key under which nothing
// verifies still gives the report on stdout, key_mismatch set, for the
// script reading it; the exit status and the message on stderr are as
// without --json.
func TestVerifyJSONCarriesKeyMismatch(t *testing.T) {
	f := newFixture(t, 5)
	require.NoError(t, f.a.Close())
	t.Setenv("AUDIT_CHAIN_KEY", "another key, 16 bytes or more")

	code, stdout, stderr := f.run(t, "verify", "--json")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "most likely the key is not the one the rows were written with")
	var rep struct {
		audit.VerifyReport
		Inconclusive string `json:"inconclusive"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), "stdout: %q", stdout)
	assert.False(t, rep.Intact)
	require.NotNil(t, rep.Problem)
	assert.True(t, rep.Problem.KeyMismatch)
	assert.Equal(t, audit.TamperChanged, rep.Problem.Kind)
	assert.Contains(t, stdout, `"key_mismatch": true`)
	assert.Equal(t, "nothing verifies under the key from AUDIT_CHAIN_KEY: most likely it is not the one the rows were written with", rep.Inconclusive)
}

// TestVerifyRewrittenRowsUnderTheRightKey: the first two rows rewritten,
// with trek.log's heads there to show the key is right, are tampering,
// and the report does not point at the key.
func TestVerifyRewrittenRowsUnderTheRightKey(t *testing.T) {
	f := newFixture(t, 6)
	require.NoError(t, f.a.Close())
	f.exec(t, `UPDATE audit_log SET resource = 'forged' WHERE id IN (SELECT id FROM audit_log WHERE chain_seq IS NOT NULL ORDER BY id LIMIT 2)`)
	code, stdout, stderr := f.run(t, "verify", "--json")
	require.Equal(t, exitTampered, code, stderr)
	var rep audit.VerifyReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	require.Positive(t, rep.Anchors, "heads this key tagged")
	require.NotNil(t, rep.Problem)
	assert.False(t, rep.Problem.KeyMismatch)
	assert.NotContains(t, rep.Problem.Detail, "most likely the key")
}

// A key file that others than its owner can read (a data folder copied
// without keeping modes) lets them forge the log and its chain: verify
// says so on stderr, and still answers what it found.
func TestVerifyWarnsOfAKeyFileOthersCanRead(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("mode bits say nothing of who can read a file here")
	}
	f := newFixture(t, 3)
	for _, c := range []struct {
		mode os.FileMode
		warn bool
	}{{0o600, false}, {0o400, false}, {0o640, true}, {0o644, true}, {0o602, true}} {
		require.NoError(t, os.Chmod(f.key, c.mode))
		code, stdout, stderr := f.run(t, "verify")
		require.Equal(t, exitOK, code, stderr)
		assert.Contains(t, stdout, "OK: the audit log's chain is intact.")
		if c.warn {
			assert.Contains(t, stderr, fmt.Sprintf("warning: %s can be read or written by others than its owner (mode %04o)", f.key, c.mode))
		} else {
			assert.Empty(t, stderr, "mode %04o", c.mode)
		}
	}
}

// TestVerifyWithoutChainHeads: rows cut off the end are found only through
// trek.log's chain heads, so an intact chain with none read is
// inconclusive (exit 2), as with trek.log deleted, whatever kept them
// away: trek.log emptied in place, holding other lines only, or only lines
// shaped like heads that the key did not tag. The message names the
// reason and the way on; --no-anchors checks the chain alone. Heads in a
// rotated file beside an empty trek.log are read, and find the cut.
// TestVerifyWithoutAHeadOfWhatIsLeft: a table whose rows are all
// unchained, or whose only heads in trek.log are of rows a pruning
// deleted, is no more known intact than one without trek.log.
func TestVerifyWithoutAHeadOfWhatIsLeft(t *testing.T) {
	f := newFixture(t, 5)
	require.NoError(t, f.a.Close())
	f.exec(t, `UPDATE audit_log SET chain_seq = NULL, chain_mac = NULL, details = '{"forged":1}'`)
	require.NoError(t, os.Remove(f.log))
	code, stdout, stderr := f.run(t, "verify")
	assert.Equal(t, exitError, code, stdout)
	assert.Contains(t, stderr, f.log+" does not exist, and no rotated file beside it holds a chain head")

	g := newFixture(t, 0,
		trekRow{createdAt: "2020-01-01 00:00:00", action: "user.login"},
		trekRow{createdAt: "2020-01-02 00:00:00", action: "user.login"})
	for i := range 4 {
		g.record(t, sampleEvent(i))
	}
	code, _, stderr = g.run(t, "prune", "--before", "2021-01-01", "--reason", "alice")
	require.Equal(t, exitOK, code, stderr)
	require.NoError(t, g.a.Close())
	log, err := os.ReadFile(g.log)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(g.log, nil, 0o600))
	code, _, _ = g.run(t, "verify")
	assert.Equal(t, exitError, code, "no head at all")
	require.NoError(t, os.WriteFile(g.log, log, 0o600))
	code, stdout, stderr = g.run(t, "verify")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "OK: the audit log's chain is intact.")
}

func TestVerifyWithoutChainHeads(t *testing.T) {
	forged := "[INFO] 2026-04-20T10:11:53 AUDIT-CHAIN head id=99 seq=99 mac=" + strings.Repeat("00", 32) +
		" tag=" + strings.Repeat("0", 32) + "\n"
	cases := []struct{ name, log, why string }{
		{"emptied", "", " is empty, "},
		{"other lines only", "[INFO] 2026-04-20T10:11:53 server started\n", " holds no chain head, "},
		{"forged heads only", forged, " holds no chain head this key made (1 lines in it or its rotated files look like one but carry no tag this key made), "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 5)
			require.NoError(t, f.a.Close())
			f.exec(t, `DELETE FROM audit_log WHERE id = 5`) // found only through the heads
			log, err := os.ReadFile(f.log)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(f.log, []byte(tc.log), 0o600))

			code, stdout, stderr := f.run(t, "verify")
			assert.Equal(t, exitError, code, stdout)
			assert.NotContains(t, stdout, "OK")
			assert.Contains(t, stderr, f.log+tc.why+"and no rotated file beside it holds a chain head")
			assert.Contains(t, stderr, "pass --log with trek.log's path (or a copy's that holds its heads")
			assert.Contains(t, stderr, "or --no-anchors to check the chain alone")

			code, stdout, stderr = f.run(t, "verify", "--json")
			assert.Equal(t, exitError, code, stderr)
			var rep struct {
				audit.VerifyReport
				Inconclusive string `json:"inconclusive"`
			}
			require.NoError(t, json.Unmarshal([]byte(stdout), &rep), "the report, for a script: %q", stdout)
			assert.True(t, rep.Intact, "the rows there verify")
			assert.Zero(t, rep.Anchors)
			assert.Contains(t, rep.Inconclusive, f.log+tc.why+"and no rotated file beside it holds a chain head")

			code, stdout, stderr = f.run(t, "verify", "--no-anchors")
			assert.Equal(t, exitOK, code, stderr)
			assert.Contains(t, stdout, "rows deleted from the end of the table cannot be detected")

			rotated := filepath.Join(filepath.Dir(f.log), "trek-2026-01-01T00-00-00.000.log")
			require.NoError(t, os.WriteFile(rotated, log, 0o600))
			code, stdout, stderr = f.run(t, "verify")
			assert.Equal(t, exitTampered, code, stderr)
			assert.Contains(t, stdout, "past the end of the table")
		})
	}
}
