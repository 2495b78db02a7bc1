package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTopLevelUsage(t *testing.T) {
	cleanEnv(t)
	cases := []struct {
		name     string
		args     []string
		code     int
		inStdout bool // the command list goes to stdout (asked for) or stderr (a mistake)
	}{
		{"no arguments lists the commands as an error", nil, exitError, false},
		{"-h lists the commands", []string{"-h"}, exitOK, true},
		{"--help lists the commands", []string{"--help"}, exitOK, true},
		{"help lists the commands", []string{"help"}, exitOK, true},
		{"an unknown command is an error", []string{"frobnicate"}, exitError, false},
		{"an unknown global flag is an error", []string{"--nope", "list"}, exitError, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, context.Background(), tc.args...)
			assert.Equal(t, tc.code, code)
			out := stderr
			if tc.inStdout {
				out = stdout
			}
			for _, cmd := range commands {
				assert.Contains(t, out, "  "+cmd.name+" ")
			}
			assert.Contains(t, out, "-db")
		})
	}
}

func TestEveryCommandExplainsItself(t *testing.T) {
	cleanEnv(t)
	for _, cmd := range commands {
		for _, args := range [][]string{{cmd.name, "-h"}, {cmd.name, "--help"}, {"help", cmd.name}} {
			t.Run(args[0]+" "+args[1], func(t *testing.T) {
				code, stdout, stderr := runCLI(t, context.Background(), args...)
				assert.Equal(t, exitOK, code)
				assert.Empty(t, stderr)
				assert.Contains(t, stdout, "Usage: trek-audit "+cmd.name)
				assert.Contains(t, stdout, "Example:\n  trek-audit "+cmd.name+" ")
				assert.Contains(t, stdout, "-db string", "the global flags are listed too")
			})
		}
	}
}

func TestBadFlagsExit2(t *testing.T) {
	f := newFixture(t, 3)
	cases := []struct {
		name, want string
		args       []string
	}{
		{"a flag the command lacks", "flag provided but not defined: -follow", []string{"list", "--follow"}},
		{"a number that is not one", `invalid value "many" for flag -limit`, []string{"list", "--limit", "many"}},
		{"a time that is not RFC 3339", "RFC 3339", []string{"list", "--since", "yesterday"}},
		{"a stray argument", `unexpected argument "extra"`, []string{"list", "extra"}},
		{"an action filter that is no key", "not an action key", []string{"list", "--action", "user.LOGIN!"}},
		{"since after until", "since must be before until", []string{"export", "--since", "2026-02-01T00:00:00Z", "--until", "2026-01-01T00:00:00Z"}},
		{"an unknown export format", `--format "xml"`, []string{"export", "--format", "xml"}},
		{"a negative tail count", "-n must be", []string{"tail", "-n", "-1"}},
		// 0 would read as no filter at all, and list every user's entries.
		{"user 0", "must be a positive integer", []string{"list", "--user", "0"}},
		{"a negative user", "must be a positive integer", []string{"export", "--user", "-3"}},
		{"a user that is no number", "must be a positive integer", []string{"tail", "--user", "alice"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := f.run(t, tc.args...)
			assert.Equal(t, exitError, code)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, tc.want)
		})
	}
}

// Every command that reads the database refuses a path where there is
// none, and leaves no file behind: audit.Open and SQLite would create one.
func TestMissingDatabaseIsNotCreated(t *testing.T) {
	cleanEnv(t)
	for _, cmd := range []string{"verify", "list", "tail", "export", "stats"} {
		t.Run(cmd, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "data", "travel.db")
			code, stdout, stderr := runCLI(t, context.Background(), cmd, "--db", db, "--log", filepath.Join(dir, "trek.log"))
			assert.Equal(t, exitError, code)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, "no database at "+db)
			assert.False(t, fileExists(t, db))
			assert.False(t, fileExists(t, filepath.Join(dir, "data")), "not even its folder")
		})
	}
}

func TestPathsFromEnvironment(t *testing.T) {
	f := newFixture(t, 4)
	t.Setenv("AUDIT_DB_PATH", f.db)
	t.Setenv("AUDIT_LOG_PATH", f.log)
	code, stdout, stderr := runCLI(t, context.Background(), "verify", "--json")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, `"checked": 4`)
	assert.Regexp(t, `"anchors": [1-9]`, stdout, "the anchors came from AUDIT_LOG_PATH")

	// Without --log or AUDIT_LOG_PATH, trek.log is looked for where TREK
	// keeps it: logs/trek.log beside the database.
	t.Setenv("AUDIT_LOG_PATH", "")
	code, stdout, stderr = runCLI(t, context.Background(), "verify", "--json")
	require.Equal(t, exitOK, code, stderr)
	assert.Regexp(t, `"anchors": [1-9]`, stdout)

	// The global flags before the command override the environment.
	code, _, stderr = runCLI(t, context.Background(), "--db", filepath.Join(f.dir, "nope.db"), "list")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "nope.db")
}

// Whoever can write to travel.db names a trigger on audit_chain_acks with
// a terminal escape and a line break: every command that opens the
// database refuses it and names it on stderr, escaped, so that it can
// neither act on the operator's terminal nor print lines that pass for
// the command's own.
func TestErrorsFromTheDatabaseAreEscaped(t *testing.T) {
	f := newFixture(t, 3)
	name := "t\x1b[2J\x1b]0;owned\x07\nOK: the audit log's chain is intact."
	f.exec(t, `CREATE TRIGGER "`+strings.ReplaceAll(name, `"`, `""`)+`" AFTER INSERT ON audit_chain_acks BEGIN SELECT 1; END`)
	require.NoError(t, f.a.Close())

	for _, args := range [][]string{{"list"}, {"tail"}, {"export"}, {"verify"}, {"acknowledge"}, {"prune", "--before", "2021-01-01"}} {
		t.Run(args[0], func(t *testing.T) {
			code, _, stderr := f.run(t, args...)
			assert.Equal(t, exitError, code)
			assert.Contains(t, stderr, `triggers "t\x1b[2J\x1b]0;owned\a\nOK: the audit log's chain is intact."`)
			assert.NotContains(t, stderr, "\x1b")
			assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
		})
	}
}
