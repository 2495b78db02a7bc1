package main

import (
	"encoding/json"
	"testing"
	"time"

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
		{[]string{"prune"}, "--before (or --keep) is required"},
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

// TestKeepAge: --keep's ages, counted back from a fixed now to the
// second, and the ages it refuses.
func TestKeepAge(t *testing.T) {
	now := time.Date(2028, 2, 29, 12, 30, 15, 900_000_000, time.FixedZone("CET", 3600))
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return v
	}
	for _, tc := range []struct {
		age  string
		want time.Time
	}{
		{"1y", at("2027-03-01T11:30:15Z")}, // a year before 29 February: AddDate's 1 March
		{"4y", at("2024-02-29T11:30:15Z")},
		{"52w", at("2027-03-02T11:30:15Z")},
		{"365d", at("2027-03-01T11:30:15Z")},
		{"1d", at("2028-02-28T11:30:15Z")},
		{"720h", at("2028-01-30T11:30:15Z")},
		{"1h30m", at("2028-02-29T10:00:15Z")},
		{"1.5s", at("2028-02-29T11:30:14Z")},
		{"2000y", at("0028-02-29T11:30:15Z")},
	} {
		got, err := keepAge(tc.age, now)
		if assert.NoError(t, err, tc.age) {
			assert.Equal(t, tc.want, got, tc.age)
			assert.Equal(t, time.UTC, got.Location(), tc.age)
		}
	}
	for _, tc := range []struct{ age, want string }{
		{"", "want an age such as 1y"},
		{"y", "want an age such as 1y"},
		{"1x", "want an age such as 1y"},
		{"1.5d", "want an age such as 1y"},
		{"-1d", "want an age such as 1y"},
		{"+1d", "want an age such as 1y"},
		{" 1d", "want an age such as 1y"},
		{"1 d", "want an age such as 1y"},
		{"1D", "want an age such as 1y"},
		{"-5h", "want an age such as 1y"},
		{"0d", "of more than nothing"},
		{"0y", "of more than nothing"},
		{"0s", "of at least a second"},
		{"500ms", "of at least a second"},
		{"1000001d", "1000001 is more than 1000000"},
		{"99999999999999999999d", "want an age such as 1y"},
		{"3000y", "3000y reaches back before the year 1"},
		{"9999999999h", "want an age such as 1y"}, // past time.Duration's range
	} {
		_, err := keepAge(tc.age, now)
		if assert.Error(t, err, tc.age) {
			assert.Contains(t, err.Error(), tc.want, tc.age)
		}
	}
}

// TestPruneKeep: --keep deletes what is older than the age, as --before
// the time it stands for would, and says which time that is; it and
// --before exclude each other.
func TestPruneKeep(t *testing.T) {
	f := newFixture(t, 0,
		trekRow{createdAt: "2020-01-01 00:00:00", action: "user.login"},
		trekRow{createdAt: "2020-01-02 00:00:00", action: "user.login"})
	for i := range 3 {
		f.record(t, sampleEvent(i))
	}

	code, _, stderr := f.run(t, "prune", "--keep", "1y", "--before", "2021-01-01")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "give --before or --keep, not both")
	code, _, stderr = f.run(t, "prune", "--keep", "a year")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, `invalid value "a year" for flag -keep: want an age such as 1y`)

	from := time.Now().UTC().Truncate(time.Second).AddDate(-1, 0, 0)
	code, stdout, stderr := f.run(t, "prune", "--keep", "1y", "--json")
	to := time.Now().UTC().Truncate(time.Second).AddDate(-1, 0, 0)
	require.Equal(t, exitOK, code, stderr)
	var plan audit.Pruning
	require.NoError(t, json.Unmarshal([]byte(stdout), &plan))
	before, err := time.Parse(time.RFC3339, plan.Before)
	require.NoError(t, err, plan.Before)
	assert.False(t, before.Before(from) || before.After(to), "%s is not a year before the run (%s to %s)", before, from, to)
	assert.Equal(t, int64(2), plan.Rows)
	assert.Zero(t, plan.ID, "shown, not deleted")
	assert.Equal(t, 5, f.count(t, "audit_log"))

	code, stdout, stderr = f.run(t, "prune", "--keep", "1y", "--reason", "cron: entries are kept for a year")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "2 entries recorded before ")
	assert.Contains(t, stdout, " were deleted, from 2020-01-01 00:00:00 to 2020-01-02 00:00:00\n")
	assert.Equal(t, 3, f.count(t, "audit_log"))
}
