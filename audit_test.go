package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var sqliteTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`)

// parseCreatedAt reads a created_at value the library wrote and checks it is
// UTC text in TREK's form, within [from, to].
func parseCreatedAt(t *testing.T, s string, from, to time.Time) time.Time {
	t.Helper()
	require.Regexp(t, sqliteTimeRE, s)
	ts, err := time.Parse(sqliteTimeLayout, s)
	require.NoError(t, err)
	assert.False(t, ts.Before(from.Truncate(time.Second)), "created_at %s before the call (%s)", s, from)
	assert.False(t, ts.After(to), "created_at %s after the call (%s)", s, to)
	return ts
}

func TestRecordRoundTripsEveryCatalogueKey(t *testing.T) {
	actor := Actor{UserID: 7, Username: "alice", Email: "alice@example.com"}
	for _, level := range []string{"info", "debug"} {
		t.Run("LOG_LEVEL="+level, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.LogLevel = level
			a := openAuditor(t, cfg)

			cat := Catalogue()
			events := make([]Event, len(cat))
			start := time.Now().UTC()
			for i, info := range cat {
				e := validEvent(info)
				e.Actor, e.IP = actor, "203.0.113.9"
				events[i] = e
				require.NoError(t, a.Record(t.Context(), e), "%s", info.Action)
			}
			end := time.Now().UTC()
			require.NoError(t, a.Close())

			rows := readRows(t, openTestDB(t, cfg.DBPath))
			require.Len(t, rows, len(cat))
			perEvent := 1
			if level == "debug" {
				perEvent = 2
			}
			lines := eventLines(logLines(t, cfg.LogPath))
			require.Len(t, lines, perEvent*len(cat))

			for i, info := range cat {
				r, e := rows[i], events[i]
				assert.Equal(t, string(info.Action), r.Action)
				assert.Equal(t, sql.NullInt64{Int64: 7, Valid: true}, r.UserID, "%s user_id", info.Action)
				assert.Equal(t, sql.NullString{String: e.Resource, Valid: true}, r.Resource, "%s resource", info.Action)
				assert.Equal(t, sql.NullString{String: "203.0.113.9", Valid: true}, r.IP, "%s ip", info.Action)
				assert.Equal(t, sql.NullString{String: "alice", Valid: true}, r.ActorUsername, "%s actor_username", info.Action)
				assert.Equal(t, sql.NullString{String: "alice@example.com", Valid: true}, r.ActorEmail, "%s actor_email", info.Action)
				if e.Details == nil {
					assert.False(t, r.Details.Valid, "%s: no details must be NULL, got %q", info.Action, r.Details.String)
				} else {
					want, err := json.Marshal(e.Details)
					require.NoError(t, err)
					assert.JSONEq(t, string(want), r.Details.String, "%s details", info.Action)
				}
				created := parseCreatedAt(t, r.CreatedAt, start, end)

				logTime := created.Format(logTimeLayout)
				assert.Equal(t, fmtInfoLine(logTime, actor.Email, info.Label, logSubject(e), "203.0.113.9"),
					lines[i*perEvent], "%s [INFO] line", info.Action)
				if perEvent == 2 {
					details := "null"
					if r.Details.Valid {
						details = r.Details.String
					}
					assert.Equal(t, fmt.Sprintf("[DEBUG] %s AUDIT %s userId=7 %s", logTime, info.Action, details),
						lines[i*perEvent+1], "%s [DEBUG] line", info.Action)
				}
			}
		})
	}
}

// TestInfoLinesAsWritten pins whole [INFO] lines, written out by hand from
// the contract's example (section 5) rather than built from the
// catalogue's labels, so a label or a format that drifts is caught.
func TestInfoLinesAsWritten(t *testing.T) {
	alice := Actor{UserID: 7, Username: "alice", Email: "alice@example.com"}
	cases := []struct {
		name  string
		event Event
		want  string // with <t> for the time
	}{
		{"the contract's example", Event{Action: TripCreate, Actor: alice, Resource: "trip:12",
			Details: map[string]any{"title": "Lisbon"}, IP: "203.0.113.9"},
			`[INFO] <t> alice@example.com created trip "Lisbon" ip=203.0.113.9`},
		{"a trip named in details.trip", Event{Action: TripDelete, Actor: alice, Resource: "trip:12",
			Details: map[string]any{"tripId": 12, "trip": "Porto"}, IP: "2001:db8::1"},
			`[INFO] <t> alice@example.com deleted trip "Porto" ip=2001:db8::1`},
		{"a failed login, anonymous, no IP", Event{Action: UserLoginFailed},
			`[INFO] <t> anonymous failed to log in ip=-`},
		{"a username when there is no email", Event{Action: BackupCreate, Actor: Actor{UserID: 3, Username: "bob"},
			Resource: "backup-2026-04-20.zip", IP: "198.51.100.7"},
			`[INFO] <t> bob created backup "backup-2026-04-20.zip" ip=198.51.100.7`},
		{"a user known by id alone", Event{Action: AdminUserDelete, Actor: Actor{UserID: 9}, Resource: "user:12"},
			`[INFO] <t> user#9 deleted user "user:12" ip=-`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			a := openAuditor(t, cfg)
			require.NoError(t, a.Record(t.Context(), tc.event))
			lines := eventLines(logLines(t, cfg.LogPath))
			require.Len(t, lines, 1)
			const at = len("[INFO] ")
			require.Greater(t, len(lines[0]), at+len(logTimeLayout))
			_, err := time.Parse(logTimeLayout, lines[0][at:at+len(logTimeLayout)])
			require.NoError(t, err, lines[0])
			got := lines[0][:at] + "<t>" + lines[0][at+len(logTimeLayout):]
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestLogTimesFollowTZWhileDatabaseStaysUTC(t *testing.T) {
	cfg := testConfig(t)
	cfg.TZ = "Europe/Berlin"
	cfg.LogLevel = "debug"
	a := openAuditor(t, cfg)
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)

	start := time.Now().UTC()
	require.NoError(t, a.Record(t.Context(), Event{Action: TripCreate,
		Actor:   Actor{UserID: 7, Username: "alice", Email: "alice@example.com"},
		Details: map[string]any{"title": "Lisbon", "tripId": 12}, IP: "203.0.113.9"}))
	end := time.Now().UTC()

	rows := readRows(t, openTestDB(t, cfg.DBPath))
	require.Len(t, rows, 1)
	created := parseCreatedAt(t, rows[0].CreatedAt, start, end)
	_, offset := created.In(berlin).Zone()
	require.NotZero(t, offset, "Berlin is never at UTC, so the shift must show")

	logTime := created.In(berlin).Format(logTimeLayout)
	assert.Equal(t, []string{
		`[INFO] ` + logTime + ` alice@example.com created trip "Lisbon" ip=203.0.113.9`,
		`[DEBUG] ` + logTime + ` AUDIT trip.create userId=7 {"title":"Lisbon","tripId":12}`,
	}, eventLines(logLines(t, cfg.LogPath)))

	page, err := a.List(t.Context(), Query{})
	require.NoError(t, err)
	require.Len(t, page.Entries, 1)
	assert.Equal(t, created.Format("2006-01-02T15:04:05Z"), page.Entries[0].CreatedAt)
}

func TestConcurrentRecordsAreAllStoredAndLogged(t *testing.T) {
	const goroutines, perGoroutine = 64, 1000
	const total = goroutines * perGoroutine
	cfg := testConfig(t)
	a := openAuditor(t, cfg)

	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			actor := Actor{UserID: int64(g + 1), Email: fmt.Sprintf("u%d@example.com", g)}
			for i := range perGoroutine {
				err := a.Record(t.Context(), Event{Action: UserLogin, Actor: actor,
					Resource: fmt.Sprintf("%d/%d", g, i), IP: "203.0.113.9"})
				if err != nil {
					errs <- fmt.Errorf("goroutine %d, event %d: %w", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	assert.EqualValues(t, total, a.Stats().Recorded)
	require.NoError(t, a.Close())

	db := openTestDB(t, cfg.DBPath)
	assert.EqualValues(t, total, countRows(t, db))
	var distinct int
	require.NoError(t, db.QueryRow(`SELECT COUNT(DISTINCT resource) FROM audit_log`).Scan(&distinct))
	assert.Equal(t, total, distinct, "every event stored once")

	lines := logLines(t, cfg.LogPath)
	info := eventLines(lines)
	perActor := map[string]int{}
	for _, l := range info {
		require.True(t, strings.HasPrefix(l, "[INFO] "), "unexpected line %q", l)
		if f := strings.Fields(l); assert.GreaterOrEqual(t, len(f), 3, "line %q", l) {
			perActor[f[2]]++
		}
	}
	assert.Equal(t, total, len(info), "[INFO] event lines")
	assert.Len(t, perActor, goroutines)
	for who, n := range perActor {
		assert.Equal(t, perGoroutine, n, "lines of %s", who)
	}
}

func TestCloseWhileRecording(t *testing.T) {
	const goroutines = 16
	const closeAfter = 500 // successful Records before Close is called
	cfg := testConfig(t)
	a := openAuditor(t, cfg)

	var ok atomic.Int64
	reached := make(chan struct{})
	final := make(chan error, goroutines) // each goroutine's first error
	for g := range goroutines {
		go func() {
			for i := 0; ; i++ {
				err := a.Record(t.Context(), Event{Action: UserLogin, Resource: fmt.Sprintf("%d/%d", g, i)})
				if err != nil {
					final <- err
					return
				}
				if ok.Add(1) == closeAfter {
					close(reached)
				}
			}
		}()
	}
	select {
	case <-reached:
	case err := <-final:
		require.FailNow(t, "Record failed before Close", "%v", err)
	}
	require.NoError(t, a.Close())
	for range goroutines {
		assert.ErrorIs(t, <-final, ErrClosed)
	}
	stored := ok.Load()
	assert.GreaterOrEqual(t, stored, int64(closeAfter))

	rejected := a.Stats().Rejected
	// Whatever the event: a host that stops on ErrClosed must learn it.
	for _, e := range []Event{{Action: UserLogin}, {Action: "no.such"}, {Action: TripCreate}, {Action: UserLogin, IP: "10.0.0.1:80"}} {
		assert.ErrorIs(t, a.Record(t.Context(), e), ErrClosed, "Record of %+v after Close", e)
	}
	assert.Equal(t, rejected, a.Stats().Rejected, "a closed Auditor counts nothing more")
	assert.NoError(t, a.Close(), "second Close")

	db := openTestDB(t, cfg.DBPath)
	assert.Equal(t, stored, countRows(t, db), "rows == Records that returned nil")
	var distinct int64
	require.NoError(t, db.QueryRow(`SELECT COUNT(DISTINCT resource) FROM audit_log`).Scan(&distinct))
	assert.Equal(t, stored, distinct)
	assert.EqualValues(t, stored, len(linesWithPrefix(eventLines(logLines(t, cfg.LogPath)), "[INFO] ")),
		"[INFO] lines == Records that returned nil")
}

func TestDetailsRedactSecrets(t *testing.T) {
	cfg := testConfig(t)
	cfg.LogLevel = "debug"
	cfg.SecretKeys = []string{"pin"}
	a := openAuditor(t, cfg)
	db := openTestDB(t, cfg.DBPath)

	secrets := []string{"hunter2", "k-123", "cs-456", "tok-789", "0000", "basic-abc", "k-321", "pw-2"}
	details := map[string]any{
		"Password":     "hunter2",
		"API-Key":      "k-123",
		"clientSecret": "cs-456",
		"nested": map[string]any{
			"list": []any{map[string]any{"access_token": "tok-789", "keep": "visible-1"}},
			"keep": "visible-2",
			"deeper": map[string]any{"headers": map[string]any{"Authorization": "basic-abc"},
				"APIKEY": "k-321", "pass_word": "pw-2"},
		},
		"door_PIN": "0000",
		"note":     "visible-3",
		"count":    3,
	}
	require.NoError(t, a.Record(t.Context(), Event{Action: SettingsAppUpdate, Details: details}))

	rows := readRows(t, db)
	require.Len(t, rows, 1)
	assert.JSONEq(t, `{
		"Password": "[REDACTED]",
		"API-Key": "[REDACTED]",
		"clientSecret": "[REDACTED]",
		"nested": {
			"list": [{"access_token": "[REDACTED]", "keep": "visible-1"}],
			"keep": "visible-2",
			"deeper": {"headers": {"Authorization": "[REDACTED]"}, "APIKEY": "[REDACTED]", "pass_word": "[REDACTED]"}
		},
		"door_PIN": "[REDACTED]",
		"note": "visible-3",
		"count": 3
	}`, rows[0].Details.String)
	// The chain-head lines hold random hex, where a short secret such as
	// "0000" can turn up by chance: look at the events' lines.
	logText := strings.Join(eventLines(logLines(t, cfg.LogPath)), "\n")
	for _, s := range secrets {
		assert.NotContains(t, rows[0].Details.String, s)
		assert.NotContains(t, logText, s)
	}
	assert.Equal(t, "hunter2", details["Password"], "the caller's map is not changed")
}

// TestDetailsRedactFieldsSecretByTheirGoName: a struct field is secret by
// its Go name as by its json name, as LogHandler takes it: Password tagged
// "pw" is a password still, wherever the struct stands in the details.
func TestDetailsRedactFieldsSecretByTheirGoName(t *testing.T) {
	type creds struct {
		User     string `json:"user"`
		Password string `json:"pw"`
		Token    string `json:"t,omitempty"`
		Hidden   string `json:"-"`
		inner    string
	}
	type wrapper struct {
		creds
		Items []*creds         `json:"items"`
		ByKey map[string]creds `json:"by_key"`
	}
	cfg := testConfig(t)
	cfg.LogLevel = "debug"
	a := openAuditor(t, cfg)
	db := openTestDB(t, cfg.DBPath)
	secret := func(i int) creds {
		return creds{User: "bob", Password: fmt.Sprintf("hunter%d", i), Token: fmt.Sprintf("tok%d", i), inner: "not encoded"}
	}
	require.NoError(t, a.Record(t.Context(), Event{Action: SettingsAppUpdate, Details: map[string]any{
		"creds":   secret(1),
		"pointer": &wrapper{creds: secret(2), Items: []*creds{nil, ptr(secret(3))}, ByKey: map[string]creds{"a": secret(4)}},
		"list":    []any{map[string]any{"deep": secret(5)}},
		"note":    "visible",
	}}))

	rows := readRows(t, db)
	require.Len(t, rows, 1)
	assert.JSONEq(t, `{
		"creds": {"user": "bob", "pw": "[REDACTED]", "t": "[REDACTED]"},
		"pointer": {"user": "bob", "pw": "[REDACTED]", "t": "[REDACTED]",
			"items": [null, {"user": "bob", "pw": "[REDACTED]", "t": "[REDACTED]"}],
			"by_key": {"a": {"user": "bob", "pw": "[REDACTED]", "t": "[REDACTED]"}}},
		"list": [{"deep": {"user": "bob", "pw": "[REDACTED]", "t": "[REDACTED]"}}],
		"note": "visible"
	}`, rows[0].Details.String)
	logText := strings.Join(eventLines(logLines(t, cfg.LogPath)), "\n")
	for i := 1; i <= 5; i++ {
		assert.NotContains(t, logText, fmt.Sprintf("hunter%d", i))
		assert.NotContains(t, logText, fmt.Sprintf("tok%d", i))
	}
}

// TestRedactedDetailStaysOutOfTheLogLine: the [INFO] line names a trip by
// its title or trip detail; under a key the host made secret, that detail
// is redacted in the line as in the stored details, and the line names the
// next detail it may use, or the resource.
func TestRedactedDetailStaysOutOfTheLogLine(t *testing.T) {
	const secret = "Operation Nightjar"
	cases := []struct {
		name    string
		keys    []string // Config.SecretKeys
		event   Event
		subject string // what the line names instead
	}{
		{"trip.create with its title secret", []string{"title"},
			Event{Action: TripCreate, Resource: "trip:12", Details: map[string]any{"title": secret, "tripId": 12}}, "trip:12"},
		{"trip.delete with its trip secret", []string{"Trip"},
			Event{Action: TripDelete, Resource: "trip:13", Details: map[string]any{"tripId": 13, "trip": secret}}, "trip:13"},
		{"trip.update with its new title secret names the trip", []string{"title"},
			Event{Action: TripUpdate, Resource: "trip:14", Details: map[string]any{"tripId": 14, "trip": "Lisbon", "title": secret}}, "Lisbon"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.LogLevel = "debug"
			cfg.SecretKeys = tc.keys
			a := openAuditor(t, cfg)
			db := openTestDB(t, cfg.DBPath)
			require.NoError(t, a.Record(t.Context(), tc.event))

			rows := readRows(t, db)
			require.Len(t, rows, 1)
			assert.NotContains(t, rows[0].Details.String, secret)
			lines := eventLines(logLines(t, cfg.LogPath))
			assert.NotContains(t, strings.Join(lines, "\n"), secret)
			info := linesWithPrefix(lines, "[INFO] ")
			require.Len(t, info, 1)
			assert.Contains(t, info[0], ` "`+tc.subject+`" `)
		})
	}
}

// TestDetailsRedactEscapedKeys: a json.RawMessage or a json.Marshaler is
// copied into the details as it encodes itself, \u escapes and all, so a
// host forwarding a client's JSON body could carry a secret under a key
// whose letters are escapes.
func TestDetailsRedactEscapedKeys(t *testing.T) {
	cfg := testConfig(t)
	cfg.LogLevel = "debug"
	a := openAuditor(t, cfg)
	db := openTestDB(t, cfg.DBPath)
	require.NoError(t, a.Record(t.Context(), Event{Action: SettingsAppUpdate, Details: map[string]any{
		"body":  json.RawMessage(`{"pass\u0077ord":"hunter2","user":"alice"}`),
		"other": json.RawMessage(`{"\u0054OKEN":"tok-789"}`),
	}}))
	rows := readRows(t, db)
	require.Len(t, rows, 1)
	assert.JSONEq(t, `{"body":{"password":"[REDACTED]","user":"alice"},"other":{"TOKEN":"[REDACTED]"}}`, rows[0].Details.String)
	logText := strings.Join(eventLines(logLines(t, cfg.LogPath)), "\n")
	for _, s := range []string{"hunter2", "tok-789"} {
		assert.NotContains(t, rows[0].Details.String, s)
		assert.NotContains(t, logText, s)
	}
}

// TestDetailsRedactTREKSecretSettings: TREK's admin settings mask exactly
// these keys (smtp_pass, admin_webhook_url, admin_ntfy_token, brevo_api_key);
// settings.app_update events carry settings keys, so the defaults must cover
// them.
func TestDetailsRedactTREKSecretSettings(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	db := openTestDB(t, cfg.DBPath)
	require.NoError(t, a.Record(t.Context(), Event{Action: SettingsAppUpdate, Details: map[string]any{
		"smtp_host":         "mail.example.com",
		"smtp_pass":         "smtp-secret",
		"admin_webhook_url": "https://discord.com/api/webhooks/1/hook-secret",
		"admin_ntfy_token":  "ntfy-secret",
		"brevo_api_key":     "brevo-secret",
	}}))
	rows := readRows(t, db)
	require.Len(t, rows, 1)
	for _, s := range []string{"smtp-secret", "hook-secret", "ntfy-secret", "brevo-secret"} {
		assert.NotContains(t, rows[0].Details.String, s)
	}
	assert.Contains(t, rows[0].Details.String, "mail.example.com")
}

// TestDetailsRedactKeysThatLowerCaseToASCII: a key is secret "ignoring
// case" (strings.ToLower), and the Kelvin sign U+212A lower-cases to 'k'.
func TestDetailsRedactKeysThatLowerCaseToASCII(t *testing.T) {
	cfg := testConfig(t)
	cfg.LogLevel = "debug"
	a := openAuditor(t, cfg)
	db := openTestDB(t, cfg.DBPath)
	r := newRedactor(nil)
	// The Kelvin sign lower-cases to k; the long s upper-cases to S, and
	// equals s but for case (strings.EqualFold), without lower-casing to it.
	require.True(t, r.isSecret("API_\u212AEY"), "the library itself calls this key secret")
	require.True(t, r.isSecret("PA\u017F\u017FWORD"))
	require.NoError(t, a.Record(t.Context(), Event{Action: SettingsAppUpdate, Details: map[string]any{
		"API_\u212AEY":       "kelvin-value", // no secret word in the value either
		"PA\u017F\u017FWORD": "long-s-value",
	}}))
	rows := readRows(t, db)
	require.Len(t, rows, 1)
	for _, secret := range []string{"kelvin-value", "long-s-value"} {
		assert.NotContains(t, rows[0].Details.String, secret)
		assert.NotContains(t, string(readLog(t, cfg.LogPath)), secret)
	}
}

func TestUnencodableDetailsAreRejected(t *testing.T) {
	cyclicMap := map[string]any{}
	cyclicMap["self"] = cyclicMap
	cyclicSlice := make([]any, 1)
	cyclicSlice[0] = cyclicSlice
	cases := []struct {
		name  string
		value any
	}{
		{"channel", make(chan int)},
		{"function", func() {}},
		{"NaN", math.NaN()},
		{"infinity", math.Inf(1)},
		{"map containing itself", cyclicMap},
		{"slice containing itself", cyclicSlice},
		{"channel nested in a map", map[string]any{"inner": make(chan int)}},
	}
	cfg := testConfig(t)
	cfg.LogLevel = "debug"
	a := openAuditor(t, cfg)
	db := openTestDB(t, cfg.DBPath)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := a.Record(t.Context(), Event{Action: SettingsAppUpdate,
				Details: map[string]any{"fine": 1, "bad_value": tc.value}})
			require.ErrorIs(t, err, ErrInvalidEvent)
			assert.Contains(t, err.Error(), `"bad_value"`)
			assert.Zero(t, countRows(t, db))
			assert.Empty(t, readLog(t, cfg.LogPath))
		})
	}
}

// hostileMarshaler fails, or panics, with text a user may have typed.
type hostileMarshaler struct{ panics bool }

const hostileText = "bad value\n[INFO] 2026-04-20T10:11:53 admin@example.com logged in ip=-\x1b[2J"

func (m hostileMarshaler) MarshalJSON() ([]byte, error) {
	if m.panics {
		panic(hostileText)
	}
	return nil, errors.New(hostileText)
}

// TestRecordErrorsAreEscaped: a host's Marshaler may put anything in its
// error or its panic; Record's error carries it escaped, on one line, as
// every error of the library does, since TREK's server logs them.
func TestRecordErrorsAreEscaped(t *testing.T) {
	a := openAuditor(t, testConfig(t))
	for _, m := range []hostileMarshaler{{}, {panics: true}} {
		err := a.Record(t.Context(), Event{Action: SettingsAppUpdate, Details: map[string]any{"value": m}})
		require.ErrorIs(t, err, ErrInvalidEvent)
		assert.NotContains(t, err.Error(), "\n")
		assert.NotContains(t, err.Error(), "\x1b")
		assert.Contains(t, err.Error(), `bad value\n[INFO]`, "escaped, not dropped")
	}
}

func TestLargeDetailsAreTruncated(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	db := openTestDB(t, cfg.DBPath)

	t.Run("one huge string", func(t *testing.T) {
		details := map[string]any{"title": "Lisbon", "notes": strings.Repeat("é", 50_000)}
		orig, err := json.Marshal(details)
		require.NoError(t, err)
		require.NoError(t, a.Record(t.Context(), Event{Action: TripCreate, Details: details}))
		rows := readRows(t, db)
		stored := rows[len(rows)-1].Details.String
		assert.LessOrEqual(t, len(stored), 64<<10)
		assert.True(t, utf8.ValidString(stored))
		var got map[string]any
		require.NoError(t, json.Unmarshal([]byte(stored), &got))
		assert.Equal(t, true, got["_truncated"])
		assert.EqualValues(t, len(orig), got["_original_size"])
		assert.Equal(t, "Lisbon", got["title"])
		notes, _ := got["notes"].(string)
		assert.NotEmpty(t, notes)
		assert.True(t, strings.HasPrefix(notes, strings.Repeat("é", 100)), "notes keep their beginning")
	})
	t.Run("many keys", func(t *testing.T) {
		details := map[string]any{}
		for i := range 2000 {
			details[fmt.Sprintf("k%04d", i)] = strings.Repeat("x", 100)
		}
		orig, err := json.Marshal(details)
		require.NoError(t, err)
		require.NoError(t, a.Record(t.Context(), Event{Action: SettingsAppUpdate, Details: details}))
		rows := readRows(t, db)
		stored := rows[len(rows)-1].Details.String
		assert.LessOrEqual(t, len(stored), 64<<10)
		var got map[string]any
		require.NoError(t, json.Unmarshal([]byte(stored), &got))
		assert.Equal(t, true, got["_truncated"])
		assert.EqualValues(t, len(orig), got["_original_size"])
	})
	t.Run("just under the limit is kept whole", func(t *testing.T) {
		details := map[string]any{"notes": strings.Repeat("y", 60<<10)}
		orig, err := json.Marshal(details)
		require.NoError(t, err)
		require.NoError(t, a.Record(t.Context(), Event{Action: SettingsAppUpdate, Details: details}))
		rows := readRows(t, db)
		assert.Equal(t, string(orig), rows[len(rows)-1].Details.String)
	})
}

// nestedJSON returns JSON text that nests depth levels, objects within
// arrays within objects, with the object {key: "leaf"} innermost.
func nestedJSON(depth int, key string) string {
	var open, closing strings.Builder
	for i := 1; i < depth; i++ {
		if i%2 == 1 {
			open.WriteString(`{"a":`)
			closing.WriteString(`}`)
		} else {
			open.WriteString(`[`)
			closing.WriteString(`]`)
		}
	}
	inner, _ := json.Marshal(map[string]string{key: "leaf"})
	s := open.String() + string(inner)
	c := []byte(closing.String())
	slices.Reverse(c)
	return s + string(c)
}

// jsonDepth returns how deeply the valid JSON text s nests.
func jsonDepth(t testing.TB, s string) int {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	depth, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return deepest
		}
		require.NoError(t, err)
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			deepest = max(deepest, depth)
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
}

func TestDeeplyNestedDetailsAreCut(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	db := openTestDB(t, cfg.DBPath)

	// A host that records a request's JSON body as it was decoded: Go's
	// decoder takes 10,000 levels, and the details object adds one.
	decoded := func(t *testing.T, depth int, key string) any {
		var v any
		require.NoError(t, json.Unmarshal([]byte(nestedJSON(depth, key)), &v))
		return v
	}
	cases := []struct {
		name      string
		body      func(t *testing.T) any
		wantWhole bool
	}{
		{"at the limit, kept whole", func(t *testing.T) any { return decoded(t, maxDetailsDepth-1, "note") }, true},
		{"one level past it", func(t *testing.T) any { return decoded(t, maxDetailsDepth, "note") }, false},
		{"as deep as Go decodes", func(t *testing.T) any { return decoded(t, 10_000, "note") }, false},
		{"as deep as Go decodes, a secret inside", func(t *testing.T) any { return decoded(t, 10_000, "token") }, false},
		{"raw JSON as deep as Go encodes, a secret inside", func(t *testing.T) any {
			return json.RawMessage(nestedJSON(10_000, "password"))
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body(t)
			require.NoError(t, a.Record(t.Context(), Event{Action: SettingsAppUpdate,
				Details: map[string]any{"body": body, "setting": "theme"}}))

			rows := readRows(t, db)
			stored := rows[len(rows)-1].Details.String
			assert.LessOrEqual(t, jsonDepth(t, stored), maxDetailsDepth)
			page, err := a.List(t.Context(), Query{Limit: 1})
			require.NoError(t, err)
			require.Len(t, page.Entries, 1)
			var got map[string]any
			require.NoError(t, json.Unmarshal(page.Entries[0].Details, &got), "the list reads the details")
			assert.Equal(t, "theme", got["setting"])
			if tc.wantWhole {
				want, err := json.Marshal(map[string]any{"body": body, "setting": "theme"})
				require.NoError(t, err)
				assert.JSONEq(t, string(want), stored)
				return
			}
			// (Not assert.Contains: its message would print the whole text.)
			assert.True(t, strings.Contains(stored, `"`+truncatedMark+`"`), "the cut is marked")
			assert.False(t, strings.Contains(stored, "leaf"), "what nests past the limit is gone")
		})
	}
}

func TestFreeTextIsCutAndMadeValid(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	db := openTestDB(t, cfg.DBPath)

	long := strings.Repeat("€", 1000) // 3000 bytes
	require.NoError(t, a.Record(t.Context(), Event{Action: BackupDelete, Resource: long}))
	require.NoError(t, a.Record(t.Context(), Event{Action: TripCreate,
		Actor:    Actor{UserID: 3, Username: "bob\xff", Email: "bob\xfe@example.com"},
		Resource: "trip\xff\xfe:12", Details: map[string]any{"title": "caf\xe9", "note": "\xff"}}))
	rows := readRows(t, db)
	require.Len(t, rows, 2)

	res := rows[0].Resource.String
	assert.LessOrEqual(t, len(res), 1<<10, "resource cut to 1 KiB")
	assert.True(t, utf8.ValidString(res))
	assert.True(t, strings.HasPrefix(res, strings.Repeat("€", 300)), "resource keeps its beginning")

	r := rows[1]
	for name, s := range map[string]string{"resource": r.Resource.String,
		"actor_username": r.ActorUsername.String, "actor_email": r.ActorEmail.String} {
		assert.True(t, utf8.ValidString(s), "%s %q", name, s)
		assert.Contains(t, s, "\uFFFD", "%s: invalid bytes replaced", name)
	}
	assert.True(t, utf8.ValidString(r.Details.String), "details %q", r.Details.String)
	assert.True(t, strings.HasPrefix(r.Resource.String, "trip") && strings.HasSuffix(r.Resource.String, ":12"),
		r.Resource.String)
	var got map[string]string
	require.NoError(t, json.Unmarshal([]byte(r.Details.String), &got))
	assert.Equal(t, map[string]string{"title": "caf\uFFFD", "note": "\uFFFD"}, got)
	assert.True(t, utf8.Valid(readLog(t, cfg.LogPath)), "trek.log is valid UTF-8")
}

func TestEventIP(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	db := openTestDB(t, cfg.DBPath)

	for _, ip := range []string{"not-an-ip", "203.0.113.9:443", "203.0.113.9\n", "[2001:db8::1]", "999.1.1.1",
		"203.0.113.9, 10.0.0.1", "not an ip\x00 <script>"} {
		t.Run("invalid "+strconv.Quote(ip), func(t *testing.T) {
			err := a.Record(t.Context(), Event{Action: UserLogin, IP: ip})
			require.ErrorIs(t, err, ErrInvalidEvent)
			assert.Contains(t, err.Error(), strconv.Quote(ip))
			assert.Zero(t, countRows(t, db))
			assert.Empty(t, readLog(t, cfg.LogPath))
		})
		// A host that puts a header it read itself into the context gets
		// the same answer: nothing but an address is stored.
		t.Run("invalid in the context "+strconv.Quote(ip), func(t *testing.T) {
			err := a.Record(WithClientIP(t.Context(), ip), Event{Action: UserLogin})
			require.ErrorIs(t, err, ErrInvalidEvent)
			assert.Contains(t, err.Error(), "WithClientIP")
			assert.Contains(t, err.Error(), strconv.Quote(ip))
			assert.Zero(t, countRows(t, db))
			assert.Empty(t, readLog(t, cfg.LogPath))
		})
	}
	t.Run("an address with a port is named as such", func(t *testing.T) {
		err := a.Record(WithClientIP(t.Context(), "203.0.113.9:51234"), Event{Action: UserLogin})
		require.ErrorIs(t, err, ErrInvalidEvent)
		assert.Contains(t, err.Error(), "with a port")
	})
	t.Run("a long invalid IP is cut short in the error", func(t *testing.T) {
		err := a.Record(WithClientIP(t.Context(), strings.Repeat("x", 1<<20)), Event{Action: UserLogin})
		require.ErrorIs(t, err, ErrInvalidEvent)
		assert.Less(t, len(err.Error()), 300)
	})

	cases := []struct {
		name, ctxIP, eventIP, want string
	}{
		{"IPv4-mapped IPv6 stored as IPv4", "", "::ffff:203.0.113.9", "203.0.113.9"},
		{"IPv6 in canonical form", "", "2001:DB8:0:0::1", "2001:db8::1"},
		{"zone dropped", "", "fe80::1%eth0", "fe80::1"},
		{"client IP from the context", "198.51.100.4", "", "198.51.100.4"},
		{"context IP made canonical", "::ffff:198.51.100.4", "", "198.51.100.4"},
		{"Event.IP wins over the context", "198.51.100.4", "203.0.113.9", "203.0.113.9"},
		{"no IP at all", "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			if tc.ctxIP != "" {
				ctx = WithClientIP(ctx, tc.ctxIP)
			}
			require.NoError(t, a.Record(ctx, Event{Action: UserLogin, IP: tc.eventIP}))
			rows := readRows(t, db)
			last := rows[len(rows)-1]
			assert.Equal(t, sql.NullString{String: tc.want, Valid: tc.want != ""}, last.IP)
			lines := linesWithPrefix(eventLines(logLines(t, cfg.LogPath)), "[INFO] ")
			want := " ip=" + tc.want
			if tc.want == "" {
				want = " ip=-"
			}
			assert.True(t, strings.HasSuffix(lines[len(lines)-1], want), "%q should end with %q", lines[len(lines)-1], want)
		})
	}
}

func TestActorResolution(t *testing.T) {
	alice := Actor{UserID: 1, Username: "alice", Email: "alice@example.com"}
	bob := Actor{UserID: 2, Username: "bob", Email: "bob@example.com"}
	cases := []struct {
		name      string
		ctxActor  *Actor
		event     Actor
		trekUsers bool // the database has TREK's users table with carol as user 3
		wantID    int64
		wantName  string
		wantEmail string
		wantWho   string // the actor field of the [INFO] line; "": any but anonymous
	}{
		{"Event.Actor wins over the context", &bob, alice, false, 1, "alice", "alice@example.com", "alice@example.com"},
		{"context actor when Event.Actor is zero", &bob, Actor{}, false, 2, "bob", "bob@example.com", "bob@example.com"},
		{"anonymous without either", nil, Actor{}, false, 0, "", "", "anonymous"},
		{"anonymous context actor stays anonymous", &Actor{}, Actor{}, false, 0, "", "", "anonymous"},
		{"ID only, filled from TREK's users table", nil, Actor{UserID: 3}, true, 3, "carol", "carol@example.com",
			"carol@example.com"},
		{"ID only, context actor, filled from users", &Actor{UserID: 3}, Actor{}, true, 3, "carol", "carol@example.com",
			"carol@example.com"},
		{"given snapshot not overwritten from users", nil, Actor{UserID: 3, Username: "carol-then",
			Email: "carol-then@example.com"}, true, 3, "carol-then", "carol-then@example.com", "carol-then@example.com"},
		// The user row is gone (the deletion was recorded after it): user_id
		// is stored NULL, as ON DELETE SET NULL would have left it, and the
		// line still names the user by id.
		{"ID of a user not in users", nil, Actor{UserID: 9}, true, 0, "", "", "user#9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			if tc.trekUsers {
				createTrekDB(t, cfg.DBPath, map[int64]string{3: "carol"})
			}
			a := openAuditor(t, cfg)
			ctx := t.Context()
			if tc.ctxActor != nil {
				ctx = WithActor(ctx, *tc.ctxActor)
			}
			require.NoError(t, a.Record(ctx, Event{Action: UserPasswordChange, Actor: tc.event}))
			rows := readRows(t, openTestDB(t, cfg.DBPath))
			require.Len(t, rows, 1)
			assert.Equal(t, sql.NullInt64{Int64: tc.wantID, Valid: tc.wantID != 0}, rows[0].UserID)
			assert.Equal(t, sql.NullString{String: tc.wantName, Valid: tc.wantName != ""}, rows[0].ActorUsername)
			assert.Equal(t, sql.NullString{String: tc.wantEmail, Valid: tc.wantEmail != ""}, rows[0].ActorEmail)
			lines := eventLines(logLines(t, cfg.LogPath))
			require.Len(t, lines, 1)
			f := strings.Fields(lines[0])
			require.GreaterOrEqual(t, len(f), 3)
			if tc.wantWho == "" {
				assert.NotEqual(t, "anonymous", f[2])
			} else {
				assert.Equal(t, tc.wantWho, f[2])
			}
		})
	}

	t.Run("ID only, no users table: not anonymous", func(t *testing.T) {
		cfg := testConfig(t)
		a := openAuditor(t, cfg)
		require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin, Actor: Actor{UserID: 7}}))
		rows := readRows(t, openTestDB(t, cfg.DBPath))
		require.Len(t, rows, 1)
		assert.Equal(t, sql.NullInt64{Int64: 7, Valid: true}, rows[0].UserID)
		assert.False(t, rows[0].ActorUsername.Valid)
		lines := eventLines(logLines(t, cfg.LogPath))
		require.Len(t, lines, 1)
		assert.NotContains(t, lines[0], "anonymous")
	})
}

func TestOpenRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(*Config)
		value string // the message must name it
	}{
		{"LOG_LEVEL", func(c *Config) { c.LogLevel = "verbose" }, "verbose"},
		{"TZ", func(c *Config) { c.TZ = "Mars/Olympus_Mons" }, "Mars/Olympus_Mons"},
		{"Synchronous", func(c *Config) { c.Synchronous = "sometimes" }, "sometimes"},
		{"TRUST_PROXY word", func(c *Config) { c.TrustProxy = "maybe" }, "maybe"},
		{"TRUST_PROXY negative", func(c *Config) { c.TrustProxy = "-1" }, "-1"},
		{"TRUST_PROXY bad CIDR", func(c *Config) { c.TrustProxy = "10.0.0.0/33" }, "10.0.0.0/33"},
		{"QueueSize negative", func(c *Config) { c.QueueSize = -7 }, "QueueSize must be 1 to 1048576, got -7"},
		{"MaxBatch negative", func(c *Config) { c.MaxBatch = -4 }, "MaxBatch must be 1 to 1048576, got -4"},
		{"BusyTimeout negative", func(c *Config) { c.BusyTimeout = -time.Second }, "BusyTimeout"},
		{"BusyTimeout under SQLite's millisecond", func(c *Config) { c.BusyTimeout = 500 * time.Microsecond }, "500µs"},
		// Too large: a queue or batch made at Open (a panic, past
		// makechan's range), a size lumberjack counts in an int64 of
		// bytes, a timeout SQLite would read as none.
		{"QueueSize huge", func(c *Config) { c.QueueSize = 1 << 62 }, "QueueSize"},
		{"MaxBatch huge", func(c *Config) { c.MaxBatch = 1 << 62 }, "MaxBatch"},
		{"LogMaxSizeMB huge", func(c *Config) { c.LogMaxSizeMB = 1 << 44 }, "LogMaxSizeMB"},
		{"BusyTimeout past SQLite's int", func(c *Config) { c.BusyTimeout = (1<<32 + 1) * time.Millisecond }, "BusyTimeout"},
		{"LogPath a folder", func(c *Config) { must(os.MkdirAll(c.LogPath, 0o750)) }, "is a folder, not trek.log"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			tc.edit(&cfg)
			a, err := Open(cfg)
			if a != nil {
				a.Close()
			}
			require.ErrorIs(t, err, ErrBadConfig)
			assert.Contains(t, err.Error(), tc.value)
		})
	}
}

// must panics with err: for a test table's setup, which has no t.
func must(err error) {
	if err != nil {
		panic(err)
	}
}

// TestRefusedOpenLeavesNoFolderBehind: an Open refused for its key or its
// database removes the folders it made for trek.log and the database.
func TestRefusedOpenLeavesNoFolderBehind(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  func(root string) Config
	}{
		{"a key too short", func(root string) Config {
			return Config{DBPath: filepath.Join(root, "data", "travel.db"), ChainKey: []byte("short")}
		}},
		{"a key file that cannot be read", func(root string) Config {
			must(os.WriteFile(filepath.Join(root, "keys"), nil, 0o600)) // a file where its folder should be
			return Config{DBPath: filepath.Join(root, "data", "travel.db"), ChainKeyFile: filepath.Join(root, "keys", ".audit_key")}
		}},
		{"a file that is not a database", func(root string) Config {
			must(os.WriteFile(filepath.Join(root, "travel.db"), []byte("not SQLite at all, only text long enough to be read as a header"), 0o600))
			return Config{DBPath: filepath.Join(root, "travel.db"), LogPath: filepath.Join(root, "logs", "deeper", "trek.log")}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			cfg := c.cfg(root)
			before, err := os.ReadDir(root)
			require.NoError(t, err)
			_, err = Open(cfg)
			require.Error(t, err)
			after, err := os.ReadDir(root)
			require.NoError(t, err)
			assert.Equal(t, before, after)
		})
	}
	t.Run("the error names the database that is not one", func(t *testing.T) {
		root := t.TempDir()
		path := filepath.Join(root, "travel.db")
		must(os.WriteFile(path, []byte("not SQLite at all, only text long enough to be read as a header"), 0o600))
		_, err := Open(Config{DBPath: path})
		require.ErrorIs(t, err, ErrStore)
		assert.Contains(t, err.Error(), path)
	})
}

// TestTZAsTheCLibraryReadsIt: a leading ':' is dropped, and what follows
// may be a zone file's path, as glibc, Node and Go's runtime read TZ.
func TestTZAsTheCLibraryReadsIt(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	for _, tz := range []string{"Europe/Berlin", ":Europe/Berlin"} {
		loc, err := loadTZ(tz)
		require.NoError(t, err, tz)
		assert.Equal(t, berlin.String(), loc.String(), tz)
	}
	if _, err := os.Stat("/usr/share/zoneinfo/Europe/Berlin"); err == nil {
		loc, err := loadTZ(":/usr/share/zoneinfo/Europe/Berlin")
		require.NoError(t, err)
		at := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
		assert.Equal(t, at.In(berlin).Format(time.RFC3339), at.In(loc).Format(time.RFC3339))
	}
	loc, err := loadTZ(":")
	require.NoError(t, err)
	assert.Equal(t, time.UTC, loc)
	_, err = loadTZ(":/no/such/zone")
	assert.Error(t, err)
}

// TestTZRefusesPOSIXRules pins what the README says of TZ: a POSIX rule,
// which the C library would read as an offset, is no zone's name and is
// refused by Open, naming TZ; one that is also a zone's name is that zone.
func TestTZRefusesPOSIXRules(t *testing.T) {
	for _, tz := range []string{"UTC0", "JST-9", ":JST-9", "GMT+2", "CET-1CEST,M3.5.0,M10.5.0/3"} {
		t.Run(tz, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.TZ = tz
			a, err := Open(cfg)
			if a != nil {
				a.Close()
			}
			require.ErrorIs(t, err, ErrBadConfig)
			assert.Contains(t, err.Error(), "TZ")
		})
	}
	loc, err := loadTZ("EST5EDT")
	require.NoError(t, err)
	assert.Equal(t, "EST5EDT", loc.String())
}

func TestConfigFromEnv(t *testing.T) {
	t.Setenv("TRUST_PROXY", "2")
	t.Setenv("LOG_LEVEL", "debug")
	t.Setenv("TZ", "Europe/Berlin")
	t.Setenv("AUDIT_DB_PATH", "/srv/trek/data/travel.db")
	t.Setenv("AUDIT_LOG_PATH", "/srv/trek/data/logs/trek.log")
	cfg := ConfigFromEnv()
	assert.Equal(t, "2", cfg.TrustProxy)
	assert.Equal(t, "debug", cfg.LogLevel)
	assert.Equal(t, "Europe/Berlin", cfg.TZ)
	assert.Equal(t, "/srv/trek/data/travel.db", cfg.DBPath)
	assert.Equal(t, "/srv/trek/data/logs/trek.log", cfg.LogPath)
}

func TestDefaultsCreateTREKLayout(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, v := range []string{"TRUST_PROXY", "LOG_LEVEL", "TZ", "AUDIT_DB_PATH", "AUDIT_LOG_PATH"} {
		t.Setenv(v, "")
	}
	a, err := Open(ConfigFromEnv())
	require.NoError(t, err)
	require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin, Actor: Actor{UserID: 1, Email: "a@example.com"}}))
	require.NoError(t, a.Close())

	for _, p := range []string{DefaultDBPath, DefaultLogPath} {
		fi, err := os.Stat(filepath.Join(dir, p))
		if assert.NoError(t, err, p) {
			assert.Positive(t, fi.Size(), p)
		}
	}
	assert.Equal(t, "data/travel.db", DefaultDBPath)
	assert.Equal(t, "data/logs/trek.log", DefaultLogPath)
	db := openTestDB(t, filepath.Join(dir, "data", "travel.db"))
	assert.EqualValues(t, 1, countRows(t, db))
	lines := eventLines(logLines(t, filepath.Join(dir, "data", "logs", "trek.log")))
	require.Len(t, lines, 1)
	assert.Regexp(t, `^\[INFO\] \S+ a@example.com logged in ip=-$`, lines[0])
}

// TestLogPathFollowsTheDatabase: with only the database's path given (as
// AUDIT_DB_PATH), trek.log is where TREK keeps it beside that database,
// which is where trek-audit looks for it, and verify finds its heads.
func TestLogPathFollowsTheDatabase(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("AUDIT_LOG_PATH", "")
	dir := t.TempDir()
	t.Setenv("AUDIT_DB_PATH", filepath.Join(dir, "travel.db"))
	cfg := ConfigFromEnv()
	a, err := Open(cfg)
	require.NoError(t, err)
	require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin, Actor: Actor{UserID: 1}}))
	require.NoError(t, a.Close())

	lines := logLines(t, filepath.Join(dir, "logs", "trek.log"))
	require.Len(t, eventLines(lines), 1)
	_, err = os.Stat("data")
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing in the working directory")

	cfg.ReadOnly = true
	ro, err := Open(cfg)
	require.NoError(t, err)
	defer ro.Close()
	rep, err := ro.Verify(t.Context())
	require.NoError(t, err)
	assert.True(t, rep.Intact)
	assert.Equal(t, 1, rep.Anchors)
}

// The library holds one connection of a host's pool for writing. A pool of
// one would leave none for TREK's own queries or the admin list, which
// would wait for it until Close: Open refuses it. Two are enough.
func TestHostPoolSize(t *testing.T) {
	dir := t.TempDir()
	host := createTrekDB(t, filepath.Join(dir, "travel.db"), map[int64]string{1: "alice"})
	cfg := Config{DB: host, LogPath: filepath.Join(dir, "trek.log"), ChainKeyFile: filepath.Join(dir, ".audit_key")}

	host.SetMaxOpenConns(1)
	_, err := Open(cfg)
	require.ErrorIs(t, err, ErrBadConfig)
	assert.Contains(t, err.Error(), "SetMaxOpenConns(1)")

	host.SetMaxOpenConns(2)
	a := openAuditor(t, cfg)
	require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin, Actor: Actor{UserID: 1}}))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // a hang fails, not blocks the run
	defer cancel()
	page, err := a.List(ctx, Query{})
	require.NoError(t, err)
	assert.EqualValues(t, 1, page.Total)
	_, err = host.ExecContext(ctx, `UPDATE users SET username = 'alicia' WHERE id = 1`)
	require.NoError(t, err, "TREK's own write")
}

// TestAFaultOnAFullHostPoolFailsTheBatch: after a fault the library gives
// its writer connection back and takes a new one for the next batch. With
// the host's pool at its limit at the fault, so that the library could
// hold none meanwhile, and then held by the host alone, that batch waits
// no longer than the busy timeout and fails, rather than hold its callers,
// and Close, until the host lets go; once it does, recording resumes.
func TestAFaultOnAFullHostPoolFailsTheBatch(t *testing.T) {
	dir := t.TempDir()
	host := createTrekDB(t, filepath.Join(dir, "travel.db"), map[int64]string{1: "alice"})
	host.SetMaxOpenConns(2)
	cfg := Config{DB: host, LogPath: filepath.Join(dir, "trek.log"), ChainKeyFile: filepath.Join(dir, ".audit_key"),
		BusyTimeout: 200 * time.Millisecond}
	a := openAuditor(t, cfg)
	require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin}))
	faultOn(t, filepath.Join(dir, "travel.db"))
	var held []*sql.Conn
	take := func() {
		c, err := host.Conn(t.Context())
		require.NoError(t, err)
		held = append(held, c)
	}
	take() // the pool is full: the writer's and this one
	require.Error(t, a.Record(t.Context(), Event{Action: UserLogin, Resource: "fault"}))
	take() // the writer's, given back
	done := make(chan error, 1)
	go func() {
		done <- a.Record(context.Background(), Event{Action: UserLogin, Resource: "while the pool is full"})
	}()
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrStore)
		assert.Contains(t, err.Error(), "opening the database")
	case <-time.After(time.Minute): // a watchdog, not a wait: the batch fails after the busy timeout
		for _, c := range held {
			c.Close()
		}
		require.FailNow(t, "Record waits for a connection of the host's pool for good")
	}
	for _, c := range held {
		require.NoError(t, c.Close())
	}
	require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin, Resource: "once the host let go"}))
}
