package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/trek-go/audit"
)

// TestPruneShowsThenDeletes: TREK's own rows of 2020 go, the library's of
// today stay. Without --reason prune shows what it would delete and
// deletes nothing; with it, it deletes them, and verify shows the record.
// (The library's tests cover the chain's start moving on; here every
// event is of this second, which a time in the past never reaches.)
func TestPruneShowsThenDeletes(t *testing.T) {
	f := newFixture(t, 0,
		trekRow{createdAt: "2020-01-01 00:00:00", action: "user.login"},
		trekRow{createdAt: "2020-01-02 00:00:00", action: "user.login"},
		trekRow{createdAt: "2020-01-03 00:00:00", action: "trip.create"})
	for i := range 4 {
		f.record(t, sampleEvent(i))
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"prune"}, "--before is required"},
		{[]string{"prune", "--before", "last year"}, "want a date such as 2025-01-01"},
		{[]string{"prune", "--before", "2021-01-01", "--reason", "alice\nbob"}, "control character"},
		{[]string{"prune", "--before", "2999-01-01", "--reason", "alice"}, "2999-01-01T00:00:00Z is in the future"},
	} {
		code, _, stderr := f.run(t, tc.args...)
		assert.Equal(t, exitError, code, tc.args)
		assert.Contains(t, stderr, tc.want, tc.args)
	}
	assert.Equal(t, 7, f.count(t, "audit_log"))

	code, stdout, stderr := f.run(t, "prune", "--before", "2021-01-01")
	require.Equal(t, exitOK, code, stderr)
	assert.Equal(t, "To delete:\n"+
		"  3 entries recorded before 2021-01-01T00:00:00Z would be deleted, from 2020-01-01 00:00:00 to 2020-01-03 00:00:00\n"+
		"  the chain would start at row 4, chain position 1\n"+
		"To delete them, once you are sure:\n"+
		"  trek-audit prune --before 2021-01-01T00:00:00Z --reason \"who: why\"\n", stdout)
	assert.Equal(t, 7, f.count(t, "audit_log"))

	code, stdout, stderr = f.run(t, "prune", "--before", "2021-01-01T00:00:00Z", "--reason", "alice: entries are kept for a year")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "Deleted:\n  pruning 1, ")
	assert.Contains(t, stdout, ": alice: entries are kept for a year\n"+
		"    3 entries recorded before 2021-01-01T00:00:00Z were deleted, from 2020-01-01 00:00:00 to 2020-01-03 00:00:00\n"+
		"    the chain starts at row 4, chain position 1\n")
	assert.Equal(t, 4, f.count(t, "audit_log"))

	code, stdout, stderr = f.run(t, "verify")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "OK: the audit log's chain is intact.")
	assert.Contains(t, stdout, "  pruned:         the chain starts at position 1; 0 chain heads of rows deleted by pruning passed over\n")
	assert.Contains(t, stdout, ": alice: entries are kept for a year\n")

	code, stdout, stderr = f.run(t, "verify", "--json")
	require.Equal(t, exitOK, code, stderr)
	var rep audit.VerifyReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	require.Len(t, rep.Prunings, 1)
	assert.Equal(t, int64(3), rep.Prunings[0].Rows)
	assert.Equal(t, "alice: entries are kept for a year", rep.Prunings[0].Reason)

	code, stdout, stderr = f.run(t, "prune", "--before", "2021-01-01", "--reason", "alice: again", "--json")
	require.Equal(t, exitOK, code, stderr)
	var again audit.Pruning
	require.NoError(t, json.Unmarshal([]byte(stdout), &again))
	assert.Zero(t, again.Rows, "nothing left to delete")
	code, stdout, stderr = f.run(t, "prune", "--before", "2021-01-01")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "Nothing to delete: no entry was recorded before 2021-01-01T00:00:00Z")
}

// TestPruneRefusesABrokenChain: deleting rows of a chain that does not
// verify could take the evidence with them; prune says what verify found
// and deletes nothing.
func TestPruneRefusesABrokenChain(t *testing.T) {
	f := newFixture(t, 5, trekRow{createdAt: "2020-01-01 00:00:00", action: "user.login"})
	f.exec(t, `UPDATE audit_log SET resource = 'edited' WHERE id = 2`)

	code, _, stderr := f.run(t, "prune", "--before", "2021-01-01", "--reason", "alice")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "the chain does not verify, and deleting rows could take the evidence with them: changed at row 2")
	assert.Equal(t, 6, f.count(t, "audit_log"))
}
