package audit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostileName is what whoever can write to travel.db can put in a schema
// name or a trigger's message: a terminal escape (clear the screen, set
// the title), then a line break and a forged log line.
const hostileName = "t\x1b[2J\x1b]0;owned\x07\n[INFO] 2026-04-20T10:11:53 admin@example.com deleted user \"bob\" ip=203.0.113.9"

// sqlIdent quotes s as an SQLite identifier.
func sqlIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// assertShowable fails when s holds a character a terminal or a reader of
// log lines would act on.
func assertShowable(t *testing.T, s string) {
	t.Helper()
	assert.True(t, printableText(s), "not printable: %q", s)
	assert.NotContains(t, s, "\n")
	assert.NotContains(t, s, "\x1b")
}

func TestSafeError(t *testing.T) {
	sentinel := errors.New("audit: sentinel")
	for _, c := range []struct {
		name, text, want string
	}{
		{"printable text passes as it is", `inserting: "x" is \n not a line break`, `inserting: "x" is \n not a line break`},
		{"a line break", "a\nb", `a\nb`},
		{"a terminal escape and BEL", "a\x1b[2J\x07", `a\x1b[2J\a`},
		{"a bidi override", "a\u202eb", `a\u202eb`},
		{"invalid UTF-8", "a\xffb", `a\xffb`},
		{"a character past the BMP stays", "a😀b", "a😀b"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := safeError(fmt.Errorf("%w: %s", sentinel, c.text))
			assert.Equal(t, "audit: sentinel: "+c.want, err.Error())
			assert.ErrorIs(t, err, sentinel, "the chain is kept")
		})
	}
	t.Run("a printable error is returned itself", func(t *testing.T) {
		err := errors.New("audit: database error: inserting: disk I/O error")
		assert.Same(t, err, safeError(err))
		assert.NoError(t, safeError(nil))
	})
	t.Run("a long error is cut and marked", func(t *testing.T) {
		err := safeError(errors.New(strings.Repeat("é", errTextMax)))
		assert.LessOrEqual(t, len(err.Error()), errTextMax)
		assert.True(t, strings.HasSuffix(err.Error(), truncatedMark))
	})
}

func TestQuoted(t *testing.T) {
	assert.Equal(t, `"user.login"`, quoted("user.login"))
	assert.Equal(t, `"a\nb\x1b"`, quoted("a\nb\x1b"))
	long := quoted(strings.Repeat("\x1b", 1<<20))
	assert.Less(t, len(long), 4*quotedMax+len(truncatedMark)+2, "a megabyte of key is not repeated into the error")
	assert.Contains(t, long, truncatedMark)
}

// Names in the schema are chosen by whoever can write to travel.db: a
// trigger on audit_chain_acks, which makes every Open refuse the table
// (read-write, as TREK's server opens it, and read-only, as trek-audit
// does), and a generated column on audit_log, which Verify refuses. The
// errors name them, escaped.
func TestSchemaNamesInErrorsAreEscaped(t *testing.T) {
	t.Run("a trigger on audit_chain_acks, at Open", func(t *testing.T) {
		cfg := testConfig(t)
		a := openAuditor(t, cfg)
		require.NoError(t, a.Record(context.Background(), Event{Action: UserLogin}))
		require.NoError(t, a.Close())
		_, err := openPlainDB(t, cfg.DBPath).Exec(`CREATE TRIGGER ` + sqlIdent(hostileName) + ` AFTER INSERT ON audit_chain_acks BEGIN SELECT 1; END`)
		require.NoError(t, err)
		for _, ro := range []bool{false, true} {
			c := cfg
			c.ReadOnly = ro
			a, err := Open(c)
			if a != nil {
				a.Close()
			}
			require.ErrorIs(t, err, ErrStore, "read-only %v", ro)
			assertShowable(t, err.Error())
			assert.Contains(t, err.Error(), `triggers "t\x1b[2J\x1b]0;owned\a\n[INFO]`, "the name is shown, escaped")
		}
	})
	t.Run("a generated column on audit_log, at Verify", func(t *testing.T) {
		cfg := testConfig(t)
		a := openAuditor(t, cfg)
		require.NoError(t, a.Record(context.Background(), Event{Action: UserLogin}))
		_, err := openPlainDB(t, cfg.DBPath).Exec(`ALTER TABLE audit_log ADD COLUMN ` + sqlIdent(hostileName) + ` GENERATED ALWAYS AS (1) VIRTUAL`)
		require.NoError(t, err)
		_, err = a.Verify(context.Background())
		require.ErrorIs(t, err, ErrVerify)
		assertShowable(t, err.Error())
		assert.Contains(t, err.Error(), `generated or hidden columns "t\x1b[2J`)
	})
}

// A trigger's RAISE chooses SQLite's message, which Record's error and
// Stats().LastError carry: TREK's server logs every audit error.
func TestTriggerMessageInRecordErrorIsEscaped(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	require.NoError(t, a.Record(context.Background(), Event{Action: UserLogin}))
	_, err := openPlainDB(t, cfg.DBPath).Exec(`CREATE TRIGGER refuse BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, '` +
		strings.ReplaceAll(hostileName, `'`, `''`) + `'); END`)
	require.NoError(t, err)

	err = a.Record(context.Background(), Event{Action: UserLoginFailed, Details: map[string]any{"email": "x@example.com"}})
	require.ErrorIs(t, err, ErrStore)
	assertShowable(t, err.Error())
	assert.Contains(t, err.Error(), `t\x1b[2J`, "SQLite's message is kept, escaped")
	assertShowable(t, a.Stats().LastError)
	assert.Equal(t, err.Error(), ErrStore.Error()+": "+a.Stats().LastError)
}

// Record's refusals quote the caller's text, escaped and cut: an action
// key not checked yet (a read-only Auditor refuses before it looks), an
// unknown one, and the key of a detail JSON cannot encode.
func TestRefusalsQuoteTheCallersTextEscapedAndCut(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	huge := strings.Repeat("\x1b", 1<<20)
	for _, c := range []struct {
		name  string
		event Event
		want  error
	}{
		{"an unknown action key", Event{Action: Action("x\n[INFO] forged\x1b[2J")}, ErrUnknownAction},
		{"a megabyte of action key", Event{Action: Action(huge)}, ErrUnknownAction},
		{"a detail key JSON cannot encode", Event{Action: UserLogin, Details: map[string]any{huge: math.NaN()}}, ErrInvalidEvent},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := a.Record(context.Background(), c.event)
			require.ErrorIs(t, err, c.want)
			assertShowable(t, err.Error())
			assert.Less(t, len(err.Error()), 1<<10)
		})
	}
	t.Run("an action key at a read-only Auditor", func(t *testing.T) {
		require.NoError(t, a.Close())
		cfg.ReadOnly = true
		ro := openAuditor(t, cfg)
		err := ro.Record(context.Background(), Event{Action: Action("x\n[INFO] forged\x1b[2J")})
		require.ErrorIs(t, err, ErrReadOnly)
		assertShowable(t, err.Error())
		assert.Contains(t, err.Error(), `"x\n[INFO] forged\x1b[2J" not recorded`)
	})
}
