package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/trek-go/audit"
)

// TestAcknowledgeAfterARestore: rows cut off the end, as a restore from a
// backup leaves the table. verify reports them and points to acknowledge;
// acknowledge records the three heads, writing nothing to trek.log; verify
// then passes and shows the acknowledgement.
func TestAcknowledgeAfterARestore(t *testing.T) {
	f := newFixture(t, 12)
	f.exec(t, `DELETE FROM audit_log WHERE id > 9`)

	code, stdout, stderr := f.run(t, "verify")
	require.Equal(t, exitTampered, code, stderr)
	assert.Contains(t, stdout, "trek-audit acknowledge shows what")

	code, _, stderr = f.run(t, "acknowledge", "--reason", "restored")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "--digest is required with --reason")

	logBefore, err := os.ReadFile(f.log)
	require.NoError(t, err)
	digest := showPending(t, f, "3 chain heads; the chain ends at row 9, chain position 9\n    3 are past the chain's last row: 10-12\n")
	code, stdout, stderr = f.run(t, "acknowledge", "--reason", "alice: restored travel.db from the backup of 24 November", "--digest", digest)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "Acknowledged 3 chain heads")
	assert.Contains(t, stdout, "3 chain heads; the chain then ended at row 9, chain position 9\n      3 were past the chain's last row: 10-12\n")
	assert.Contains(t, stdout, "alice: restored travel.db from the backup of 24 November")
	logAfter, err := os.ReadFile(f.log)
	require.NoError(t, err)
	assert.Equal(t, logBefore, logAfter, "acknowledge writes nothing to trek.log")

	code, stdout, stderr = f.run(t, "verify")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "OK: the audit log's chain is intact.")
	assert.Regexp(t, `acknowledged: +3 of those chain heads`, stdout)
	assert.Contains(t, stdout, "alice: restored travel.db from the backup of 24 November")

	code, stdout, stderr = f.run(t, "verify", "--json")
	require.Equal(t, exitOK, code, stderr)
	var rep audit.VerifyReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	assert.Equal(t, 3, rep.AcknowledgedAnchors)
	require.Len(t, rep.Acknowledgements, 1)
	assert.Equal(t, "alice: restored travel.db from the backup of 24 November", rep.Acknowledgements[0].Reason)

	code, stdout, stderr = f.run(t, "acknowledge")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "Nothing to acknowledge")
	code, stdout, stderr = f.run(t, "acknowledge", "--reason", "again", "--digest", digest)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "Nothing to acknowledge")
	code, _, stderr = f.run(t, "acknowledge", "--digest", digest)
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "--reason is required with --digest")
	assert.Equal(t, 1, countAcks(t, f))
}

// TestAcknowledgeRefusesABrokenChain: a row changed in the table is not a
// restore; acknowledge says what verify found and writes nothing.
func TestAcknowledgeRefusesABrokenChain(t *testing.T) {
	f := newFixture(t, 6)
	f.exec(t, `UPDATE audit_log SET resource = 'edited' WHERE id = 4`)

	code, _, stderr := f.run(t, "acknowledge")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "the chain itself does not verify: changed at row 4")
	assert.Zero(t, countAcks(t, f))

	code, stdout, _ := f.run(t, "verify")
	assert.Equal(t, exitTampered, code)
	assert.NotContains(t, stdout, "trek-audit acknowledge", "a change in the table is no restore")
}

func countAcks(t *testing.T, f *fixture) int {
	t.Helper()
	return f.count(t, "audit_chain_acks")
}

// TestAcknowledgeMigratesNothing: acknowledge reads first as verify does,
// so on a database whose schema is older than this build's (TREK's server
// runs an older library, without audit_chain_acks) it refuses, as verify
// does, rather than migrate it behind the server's back.
func TestAcknowledgeMigratesNothing(t *testing.T) {
	f := newFixture(t, 6)
	f.exec(t, `DELETE FROM audit_log WHERE id > 4`)
	f.exec(t, `DROP TABLE audit_chain_acks`)
	f.exec(t, `DELETE FROM audit_schema_migrations WHERE version = (SELECT MAX(version) FROM audit_schema_migrations)`)
	var before int
	require.NoError(t, f.raw.QueryRow(`SELECT MAX(version) FROM audit_schema_migrations`).Scan(&before))

	code, _, stderr := f.run(t, "acknowledge", "--reason", "restored", "--digest", "0011223344556677")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "open it read-write once")
	var after int
	require.NoError(t, f.raw.QueryRow(`SELECT MAX(version) FROM audit_schema_migrations`).Scan(&after))
	assert.Equal(t, before, after)
	var acks int
	require.NoError(t, f.raw.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name = 'audit_chain_acks'`).Scan(&acks))
	assert.Zero(t, acks, "audit_chain_acks is not made")
}

// TestAcknowledgeSupersedes: a second restore to a backup older than the
// first acknowledgement's record of the chain's last row is reported,
// named as acknowledgeable, and a new acknowledgement supersedes the
// first.
func TestAcknowledgeSupersedes(t *testing.T) {
	f := newFixture(t, 12)
	f.exec(t, `DELETE FROM audit_log WHERE id > 9`)
	code, _, stderr := f.run(t, "acknowledge", "--reason", "first restore", "--digest", showPending(t, f, "To acknowledge: 3 chain heads"))
	require.Equal(t, exitOK, code, stderr)
	f.exec(t, `DELETE FROM audit_log WHERE id > 6`)

	code, stdout, _ := f.run(t, "verify")
	require.Equal(t, exitTampered, code)
	assert.Contains(t, stdout, "acknowledgement 1 recorded the chain's last row at chain position 9")
	assert.Contains(t, stdout, "trek-audit acknowledge shows what")

	digest := showPending(t, f, "supersedes acknowledgement 1, which recorded the chain ending at chain position 9: that record no longer matches the table")
	code, stdout, stderr = f.run(t, "acknowledge", "--reason", "second restore", "--digest", digest)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "Acknowledged 3 chain heads")
	assert.Contains(t, stdout, "supersedes acknowledgement 1, which recorded")
	code, stdout, stderr = f.run(t, "verify")
	require.Equal(t, exitOK, code, stderr)
	assert.Regexp(t, `acknowledged: +6 of those chain heads`, stdout)
}

// showPending runs acknowledge without --reason, checks that it shows
// what there is to acknowledge (want among it) and records nothing, and
// returns the digest it gives.
func showPending(t *testing.T, f *fixture, want string) string {
	t.Helper()
	before := countAcks(t, f)
	code, stdout, stderr := f.run(t, "acknowledge")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, want)
	assert.Equal(t, before, countAcks(t, f), "showing records nothing")
	m := regexp.MustCompile(`--digest ([0-9]+-[0-9a-f]{16})\n`).FindStringSubmatch(stdout)
	require.NotNil(t, m, stdout)
	return m[1]
}

// acknowledge writes to audit_chain_acks only: opening the database
// read-write with the default limits (4 backups) removes none of the
// rotated trek.log files TREK's server keeps (10, say), whose chain heads
// verify reads.
func TestAcknowledgeRemovesNoRotatedLog(t *testing.T) {
	f := newFixture(t, 12)
	f.exec(t, `DELETE FROM audit_log WHERE id > 9`)
	require.NoError(t, f.a.Close()) // the server runs in another process

	dir := filepath.Dir(f.log)
	start := time.Now().UTC().Add(-10 * 24 * time.Hour)
	var rotated []string
	for i := range 6 {
		at := start.Add(time.Duration(i) * 24 * time.Hour)
		name := "trek-" + at.Format("2006-01-02T15-04-05.000") + ".log"
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte("[INFO] an older day's lines\n"), 0o600))
		require.NoError(t, os.Chtimes(p, at, at))
		rotated = append(rotated, name)
	}

	digest := showPending(t, f, "3 chain heads; the chain ends at row 9, chain position 9\n    3 are past the chain's last row: 10-12\n")
	code, stdout, stderr := f.run(t, "acknowledge", "--reason", "alice: restored travel.db", "--digest", digest)
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "Acknowledged 3 chain heads")

	var left []string
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "trek-") {
			left = append(left, e.Name())
		}
	}
	assert.Equal(t, rotated, left)
}

// trek.log moved away by another tool and not yet written again, after a
// restore: verify reads the heads in its rotated files and points to
// acknowledge, which reads them too, rather than refuse for want of
// trek.log itself. With neither trek.log nor a rotated file, --log is
// likely wrong, and acknowledge says so.
func TestAcknowledgeReadsRotatedLogsWithoutTrekLog(t *testing.T) {
	f := newFixture(t, 12)
	f.exec(t, `DELETE FROM audit_log WHERE id > 9`)
	require.NoError(t, f.a.Close())
	rotated := filepath.Join(filepath.Dir(f.log), "trek-"+time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15-04-05.000")+".log")
	require.NoError(t, os.Rename(f.log, rotated))

	code, stdout, stderr := f.run(t, "verify")
	require.Equal(t, exitTampered, code, stderr)
	assert.Contains(t, stdout, "trek-audit acknowledge shows what")
	digest := showPending(t, f, "3 chain heads; the chain ends at row 9, chain position 9\n")
	code, stdout, stderr = f.run(t, "acknowledge", "--reason", "alice: restored travel.db", "--digest", digest)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "Acknowledged 3 chain heads")

	require.NoError(t, os.Remove(rotated))
	code, _, stderr = f.run(t, "acknowledge")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "pass --log with its path")
}
