package audit

// Hostile input and faults: secrets in details, details that cannot be
// stored as they are, and a database or trek.log that refuses to be
// written. Every fault is produced for real (a second writer holding the
// lock, a read-only open, an immutable file, a full database, a log folder
// that is a file, a full device), never by replacing the database or the
// file system with a stand-in. Tests run as root, for whom chmod makes
// nothing read-only, so none of them relies on file modes.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// faultChainKey keeps these tests' chain key out of any shared key file.
var faultChainKey = []byte("fault-tests-chain-key-0123456789")

// faultConfig returns a Config whose files live in a fresh temporary folder
// (<tmp>/travel.db, <tmp>/logs/trek.log) with a short busy timeout.
func faultConfig(t testing.TB) Config {
	t.Helper()
	dir := t.TempDir()
	return Config{
		DBPath:      filepath.Join(dir, "travel.db"),
		LogPath:     filepath.Join(dir, "logs", "trek.log"),
		ChainKey:    faultChainKey,
		BusyTimeout: 100 * time.Millisecond,
	}
}

// faultRow is one stored row, read back as raw text.
type faultRow struct {
	resource, details, username, email sql.NullString
}

// faultRows returns the stored rows by resource.
func faultRows(t testing.TB, path string) map[string]faultRow {
	t.Helper()
	db := openPlainDB(t, path)
	rows, err := db.Query(`SELECT resource, details, actor_username, actor_email FROM audit_log`)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]faultRow{}
	for rows.Next() {
		var r faultRow
		require.NoError(t, rows.Scan(&r.resource, &r.details, &r.username, &r.email))
		out[r.resource.String] = r
	}
	require.NoError(t, rows.Err())
	return out
}

// faultCount returns the number of rows in audit_log.
func faultCount(t testing.TB, path string) int {
	t.Helper()
	var n int
	require.NoError(t, openPlainDB(t, path).QueryRow(`SELECT COUNT(*) FROM audit_log`).Scan(&n))
	return n
}

// faultLog returns trek.log's content, empty if it does not exist yet.
func faultLog(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	require.NoError(t, err)
	return string(b)
}

// faultLogin is an event that needs nothing but a resource to tell it apart.
func faultLogin(resource string, details map[string]any) Event {
	return Event{Action: UserLogin, Actor: Actor{UserID: 7, Email: "alice@example.com"}, Resource: resource, Details: details}
}

func TestSecretsAreRedactedInDatabaseAndLog(t *testing.T) {
	type creds struct {
		Username string `json:"username"`
		Password string `json:"password"`
		APIKey   string // no tag: encoded as "APIKey"
	}
	cases := []struct {
		name    string
		details map[string]any
		secrets []string // must appear nowhere: not in the row, not in trek.log
		want    string   // the stored details, exactly
	}{
		{"every default key at the top level",
			map[string]any{"password": "s1", "passwd": "s2", "secret": "s3", "token": "s4", "api_key": "s5",
				"apikey": "s6", "authorization": "s7", "cookie": "s8", "passphrase": "s9", "private_key": "s10",
				"client_secret": "s11", "user": "bob"},
			[]string{`"s1"`, `"s2"`, `"s3"`, `"s4"`, `"s5"`, `"s6"`, `"s7"`, `"s8"`, `"s9"`, `"s10"`, `"s11"`},
			`{"password":"[REDACTED]","passwd":"[REDACTED]","secret":"[REDACTED]","token":"[REDACTED]",
			  "api_key":"[REDACTED]","apikey":"[REDACTED]","authorization":"[REDACTED]","cookie":"[REDACTED]",
			  "passphrase":"[REDACTED]","private_key":"[REDACTED]","client_secret":"[REDACTED]","user":"bob"}`},
		{"keys in any case and spelling",
			map[string]any{"Password": "hunter2", "NEW_PASSWORD": "hunter3", "apiKey": "AK-1", "API-KEY": "AK-2",
				"clientSecret": "CS-1", "Set-Cookie": "sid=abc", "refreshToken": "RT-1", "privateKey": "PK-1",
				"X-Authorization": "Bearer xyz"},
			[]string{"hunter2", "hunter3", "AK-1", "AK-2", "CS-1", "sid=abc", "RT-1", "PK-1", "Bearer xyz"},
			`{"Password":"[REDACTED]","NEW_PASSWORD":"[REDACTED]","apiKey":"[REDACTED]","API-KEY":"[REDACTED]",
			  "clientSecret":"[REDACTED]","Set-Cookie":"[REDACTED]","refreshToken":"[REDACTED]",
			  "privateKey":"[REDACTED]","X-Authorization":"[REDACTED]"}`},
		{"nested maps at any depth",
			map[string]any{"oidc": map[string]any{"issuer": "https://id.example", "client_secret": "deep-1",
				"extra": map[string]any{"level3": map[string]any{"token": "deep-2", "keep": 1}}}},
			[]string{"deep-1", "deep-2"},
			`{"oidc":{"issuer":"https://id.example","client_secret":"[REDACTED]",
			  "extra":{"level3":{"token":"[REDACTED]","keep":1}}}}`},
		{"maps inside slices",
			map[string]any{"webhooks": []any{map[string]any{"url": "https://a.example", "secret": "wh-1"},
				[]any{map[string]any{"Authorization": "wh-2"}}}},
			[]string{"wh-1", "wh-2"},
			`{"webhooks":[{"url":"https://a.example","secret":"[REDACTED]"},[{"Authorization":"[REDACTED]"}]]}`},
		{"a secret key's whole value, object or array",
			map[string]any{"tokens": []any{"t-1", "t-2"}, "secret_config": map[string]any{"a": "t-3"}, "pin_token": 4321},
			[]string{"t-1", "t-2", "t-3", "4321"},
			`{"tokens":"[REDACTED]","secret_config":"[REDACTED]","pin_token":"[REDACTED]"}`},
		{"struct values are encoded first, then redacted",
			map[string]any{"login": creds{Username: "bob", Password: "st-1", APIKey: "st-2"},
				"list": []creds{{Username: "eve", Password: "st-3"}}},
			[]string{"st-1", "st-2", "st-3"},
			`{"login":{"username":"bob","password":"[REDACTED]","APIKey":"[REDACTED]"},
			  "list":[{"username":"eve","password":"[REDACTED]","APIKey":"[REDACTED]"}]}`},
		{"map[string]string values",
			map[string]any{"headers": map[string]string{"Cookie": "ms-1", "Accept": "text/html"},
				"oauth": map[string]string{"access_token": "ms-2", "scope": "read"}},
			[]string{"ms-1", "ms-2"},
			`{"headers":{"Cookie":"[REDACTED]","Accept":"text/html"},"oauth":{"access_token":"[REDACTED]","scope":"read"}}`},
		{"keys added through Config.SecretKeys",
			map[string]any{"ssn": "123-45-6789", "Mother_Maiden-Name": "Smith", "city": "Lisbon"},
			[]string{"123-45-6789", "Smith"},
			`{"ssn":"[REDACTED]","Mother_Maiden-Name":"[REDACTED]","city":"Lisbon"}`},
		{"a key that is a secret only once lower-cased as Unicode (KELVIN SIGN)",
			// strings.ToLower("\u212a") is "k": the library's own rule
			// calls "to\u212aen" a secret key, so it must be redacted.
			map[string]any{"to\u212aen": "kelvin-1"},
			[]string{"kelvin-1"},
			`{"to\u212aen":"[REDACTED]"}`},
		{"keys written with spaces, dots or other separators",
			map[string]any{"API Key": "sep-1", "api.key": "sep-2", "private key": "sep-3", "session.id": "sep-4",
				"smtp.pass": "sep-5", "Pass Word": "sep-6", "x/api/key": "sep-7"},
			[]string{"sep-1", "sep-2", "sep-3", "sep-4", "sep-5", "sep-6", "sep-7"},
			`{"API Key":"[REDACTED]","api.key":"[REDACTED]","private key":"[REDACTED]","session.id":"[REDACTED]",
			  "smtp.pass":"[REDACTED]","Pass Word":"[REDACTED]","x/api/key":"[REDACTED]"}`},
		{"short secret names as whole keys (nodemailer's auth.pass, one-time codes)",
			map[string]any{"smtp": map[string]any{"auth": map[string]any{"user": "mailer", "pass": "ex-1"}},
				"PIN": "ex-2", "otp": "ex-3", "mfa_code": "ex-4"},
			[]string{"ex-1", "ex-2", "ex-3", "ex-4"},
			`{"smtp":{"auth":{"user":"mailer","pass":"[REDACTED]"}},"PIN":"[REDACTED]","otp":"[REDACTED]","mfa_code":"[REDACTED]"}`},
		{"keys that merely resemble secrets are kept",
			map[string]any{"key": "k", "author": "a", "passing": true, "passenger": "Ana", "footprint": "f",
				"pinned": true, "country_code": "PT"},
			nil,
			`{"key":"k","author":"a","passing":true,"passenger":"Ana","footprint":"f","pinned":true,"country_code":"PT"}`},
	}

	cfg := faultConfig(t)
	cfg.LogLevel = "debug"
	cfg.SecretKeys = []string{"ssn", "mother-maiden_name"}
	a := openAuditor(t, cfg)
	ctx := context.Background()
	for i, c := range cases {
		require.NoError(t, a.Record(ctx, faultLogin("secret-case-"+string(rune('a'+i)), c.details)), c.name)
	}
	require.NoError(t, a.Close())
	rows := faultRows(t, cfg.DBPath)
	// The chain-head lines hold random hex, where a short secret such as
	// "4321" can turn up by chance: look at the events' lines.
	logText := strings.Join(eventLines(logLines(t, cfg.LogPath)), "\n")
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			row, ok := rows["secret-case-"+string(rune('a'+i))]
			require.True(t, ok, "row missing")
			require.True(t, row.details.Valid)
			assert.JSONEq(t, c.want, row.details.String, "stored details")
			for _, s := range c.secrets {
				assert.NotContains(t, row.details.String, s, "secret in the database")
				assert.False(t, strings.Contains(logText, s), "secret %s in trek.log", s)
			}
			// The [DEBUG] line carries exactly what the database holds.
			var want any
			require.NoError(t, json.Unmarshal([]byte(row.details.String), &want))
			found := false
			for _, line := range strings.Split(logText, "\n") {
				i := strings.IndexByte(line, '{')
				if !strings.HasPrefix(line, "[DEBUG] ") || i < 0 {
					continue
				}
				var got any
				if json.Unmarshal([]byte(line[i:]), &got) == nil && assert.ObjectsAreEqual(want, got) {
					found = true
					break
				}
			}
			assert.True(t, found, "no [DEBUG] line with the stored details %s", row.details.String)
		})
	}
}

func TestUnencodableDetailsAreRejectedNamingTheKey(t *testing.T) {
	type node struct {
		Name string
		Next *node
	}
	loop := &node{Name: "a"}
	loop.Next = loop
	selfMap := map[string]any{"a": 1}
	selfMap["again"] = selfMap
	selfSlice := []any{1, nil}
	selfSlice[1] = selfSlice

	cases := []struct {
		name    string
		details map[string]any
		key     string // the key the error must name
	}{
		{"a channel", map[string]any{"ok": 1, "ch": make(chan int)}, "ch"},
		{"a func", map[string]any{"callback": func() {}, "z": "fine"}, "callback"},
		{"NaN", map[string]any{"ratio": math.NaN()}, "ratio"},
		{"infinity", map[string]any{"limit": math.Inf(1)}, "limit"},
		{"a complex number", map[string]any{"z": complex(1, 2)}, "z"},
		{"a channel nested in a map", map[string]any{"outer": map[string]any{"inner": make(chan struct{})}}, "outer"},
		{"a func nested in a slice", map[string]any{"hooks": []any{"a", func() {}}}, "hooks"},
		{"a struct field that is a channel", map[string]any{"conn": struct{ C chan int }{make(chan int)}}, "conn"},
		{"a pointer cycle", map[string]any{"list": loop}, "list"},
		{"a map that contains itself", map[string]any{"m": selfMap}, "m"},
		{"a slice that contains itself", map[string]any{"s": selfSlice}, "s"},
		// encoding/json passes these panics on: Record must not.
		{"a Marshaler that panics", map[string]any{"ok": 1, "bad": panickyMarshaler{}}, "bad"},
		{"an embedded nil pointer to a Marshaler", map[string]any{"when": struct{ *time.Time }{}}, "when"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := faultConfig(t)
			cfg.LogLevel = "debug"
			a := openAuditor(t, cfg)
			err := a.Record(context.Background(), faultLogin("bad-details", c.details))
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidEvent)
			assert.Contains(t, err.Error(), `"`+c.key+`"`, "the error names the key")

			st := a.Stats()
			assert.Equal(t, uint64(1), st.Rejected)
			assert.Equal(t, map[string]uint64{"invalid_event": 1}, st.RejectedBy)
			assert.Zero(t, st.Recorded)
			assert.Zero(t, st.StoreErrors)

			require.NoError(t, a.Close())
			assert.Zero(t, faultCount(t, cfg.DBPath), "nothing stored")
			assert.Empty(t, faultLog(t, cfg.LogPath), "nothing logged")
		})
	}
}

// faultRepeat returns s repeated until it is at least n bytes long.
func faultRepeat(s string, n int) string { return strings.Repeat(s, n/len(s)+1) }

func TestOversizeDetailsAreCutWithAMarker(t *testing.T) {
	manyKeys := map[string]any{}
	for i := range 2000 {
		manyKeys[fmt.Sprintf("key%04d", i)] = strings.Repeat("v", 100)
	}
	manyLongKeys := map[string]any{}
	for i := range 12 {
		// A control character is written as \u0001: the encoded key is
		// six times as long.
		manyLongKeys["k"+strconv.Itoa(i)+strings.Repeat("\x01", 6000)] = 1
	}
	cases := []struct {
		name    string
		details map[string]any
		kept    map[string]any // keys that must come through unchanged
		cut     string         // a key whose string value must be a cut-down prefix
	}{
		{"one long string beside small values",
			map[string]any{"notes": faultRepeat("lorem ipsum ", 100<<10), "tripId": 12, "small": "keep"},
			map[string]any{"tripId": float64(12), "small": "keep"}, "notes"},
		{"a long string of multi-byte runes",
			map[string]any{"text": faultRepeat("Ærø ∑ 🚀 ", 90<<10)},
			nil, "text"},
		{"a long string whose every rune is escaped in JSON",
			map[string]any{"esc": faultRepeat("\x01\u2028\\", 90<<10), "small": "keep"},
			map[string]any{"small": "keep"}, "esc"},
		{"a long string of HTML characters, stored as they are",
			map[string]any{"html": faultRepeat("<&>", 90<<10), "small": "keep"},
			map[string]any{"small": "keep"}, "html"},
		{"a long string of control characters",
			map[string]any{"ctl": faultRepeat("\x01\x02\x1b", 90<<10)},
			nil, "ctl"},
		{"thousands of small keys",
			manyKeys, map[string]any{"key0000": strings.Repeat("v", 100)}, ""},
		{"a large nested object",
			map[string]any{"tree": map[string]any{"a": faultRepeat("x", 70<<10)}, "small": "keep"},
			map[string]any{"small": "keep"}, ""},
		{"long keys whose every rune is escaped in JSON",
			manyLongKeys, nil, ""},
	}
	cfg := faultConfig(t)
	cfg.LogLevel = "debug"
	a := openAuditor(t, cfg)
	for i, c := range cases {
		require.NoError(t, a.Record(context.Background(), faultLogin("big-"+strconv.Itoa(i), c.details)), c.name)
	}
	require.NoError(t, a.Close())
	rows := faultRows(t, cfg.DBPath)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			orig, err := marshalText(c.details)
			require.NoError(t, err)
			require.Greater(t, len(orig), maxDetailsLen, "the case must be over the limit")
			require.NotContains(t, string(orig), `\u003c`, "'<' is written as it is, as TREK's JSON.stringify does")
			row := rows["big-"+strconv.Itoa(i)]
			require.True(t, row.details.Valid, "details stored")
			stored := row.details.String
			assert.LessOrEqual(t, len(stored), maxDetailsLen, "stored details are at most 64 KiB")
			assert.True(t, utf8.ValidString(stored), "valid UTF-8")
			var got map[string]any
			require.NoError(t, json.Unmarshal([]byte(stored), &got), "a JSON object")
			assert.Equal(t, true, got["_truncated"])
			assert.Equal(t, float64(len(orig)), got["_original_size"])
			for k, v := range c.kept {
				assert.Equal(t, v, got[k], "key %q kept", k)
			}
			if c.cut != "" {
				s, ok := got[c.cut].(string)
				require.True(t, ok, "%q kept as a string", c.cut)
				prefix, marked := strings.CutSuffix(s, truncatedMark)
				assert.True(t, marked, "%q ends with the truncation mark", c.cut)
				assert.True(t, strings.HasPrefix(c.details[c.cut].(string), prefix), "%q is a prefix of the original", c.cut)
				assert.NotEmpty(t, prefix)
			}
		})
	}
}

func TestLongFieldsAreCutAndInvalidUTF8Replaced(t *testing.T) {
	cases := []struct {
		name  string
		event Event
		check func(t *testing.T, r faultRow)
	}{
		{"a resource over 1 KiB is cut with a marker",
			Event{Action: BackupDelete, Resource: faultRepeat("backup-2026.zip/", 5000)},
			func(t *testing.T, r faultRow) {
				assert.LessOrEqual(t, len(r.resource.String), maxResourceLen)
				prefix, marked := strings.CutSuffix(r.resource.String, truncatedMark)
				assert.True(t, marked, "ends with the truncation mark")
				assert.True(t, strings.HasPrefix(faultRepeat("backup-2026.zip/", 5000), prefix))
			}},
		{"a resource of multi-byte runes is cut on a rune boundary",
			Event{Action: BackupDelete, Resource: faultRepeat("€🚀", 3000)},
			func(t *testing.T, r faultRow) {
				assert.LessOrEqual(t, len(r.resource.String), maxResourceLen)
				assert.True(t, utf8.ValidString(r.resource.String))
				assert.True(t, strings.HasSuffix(r.resource.String, truncatedMark))
			}},
		{"a resource of exactly 1 KiB is kept whole",
			Event{Action: BackupDelete, Resource: strings.Repeat("r", maxResourceLen)},
			func(t *testing.T, r faultRow) {
				assert.Equal(t, strings.Repeat("r", maxResourceLen), r.resource.String)
			}},
		{"invalid UTF-8 in the resource",
			Event{Action: BackupDelete, Resource: "trip\xff\xfe-12"},
			func(t *testing.T, r faultRow) {
				assert.Equal(t, "trip\uFFFD-12", r.resource.String, "a run of bad bytes becomes one U+FFFD")
			}},
		{"invalid UTF-8 in the actor snapshot",
			Event{Action: UserLogin, Actor: Actor{UserID: 3, Username: "al\xc3ice", Email: "bob\x80@example.com"}, Resource: "utf8-actor"},
			func(t *testing.T, r faultRow) {
				assert.Equal(t, "al\uFFFDice", r.username.String)
				assert.Equal(t, "bob\uFFFD@example.com", r.email.String)
			}},
		{"invalid UTF-8 in detail keys and values, at any depth",
			Event{Action: UserLogin, Resource: "utf8-details", Details: map[string]any{
				"k\xff": "v\x80", "nested": map[string]any{"x": []any{"\xc0\xafdot"}}, "bytes": string([]byte{0xed, 0xa0, 0x80})}},
			func(t *testing.T, r faultRow) {
				assert.JSONEq(t, `{"k\ufffd":"v\ufffd","nested":{"x":["\ufffd\ufffddot"]},"bytes":"\ufffd\ufffd\ufffd"}`, r.details.String)
			}},
	}
	cfg := faultConfig(t)
	cfg.LogLevel = "debug"
	a := openAuditor(t, cfg)
	for _, c := range cases {
		require.NoError(t, a.Record(context.Background(), c.event), c.name)
	}
	require.NoError(t, a.Close())
	rows := faultRows(t, cfg.DBPath)
	require.Len(t, rows, len(cases))
	byResource := map[string]faultRow{}
	for _, r := range rows {
		byResource[r.resource.String] = r
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := cleanText(c.event.Resource, maxResourceLen)
			r, ok := byResource[want]
			require.True(t, ok, "row missing")
			for _, f := range []sql.NullString{r.resource, r.details, r.username, r.email} {
				assert.True(t, utf8.ValidString(f.String), "stored text is valid UTF-8: %q", f.String)
			}
			c.check(t, r)
		})
	}
	logText := faultLog(t, cfg.LogPath)
	assert.True(t, utf8.ValidString(logText), "trek.log is valid UTF-8")
	for _, line := range strings.Split(strings.TrimSuffix(logText, "\n"), "\n") {
		assert.True(t, strings.HasPrefix(line, "[INFO] ") || strings.HasPrefix(line, "[DEBUG] "), "a whole line: %q", line)
	}
}

// faultConnector opens TREK's database the way a host hands it to the
// library through Config.DB, with two switches a test can flip for the
// connections it opens from then on: open the file read-only (SQLite's
// mode=ro, the state it falls back to when the file is write-protected), or
// cap the database at a number of pages (PRAGMA max_page_count, which makes
// SQLite answer "database or disk is full" as it does when the disk is).
type faultConnector struct {
	rw, ro    string
	readOnly  atomic.Bool
	pageLimit atomic.Int64 // 0: no cap
	drv       *sqlite3.SQLiteDriver

	mu    sync.Mutex
	conns []*sqlite3.SQLiteConn // every connection opened, for capping live ones
}

func newFaultConnector(path string) *faultConnector {
	c := &faultConnector{
		rw: "file:" + path + "?_journal_mode=WAL&_busy_timeout=5000",
		ro: "file:" + path + "?mode=ro&_busy_timeout=5000",
	}
	c.drv = &sqlite3.SQLiteDriver{ConnectHook: func(conn *sqlite3.SQLiteConn) error {
		c.mu.Lock()
		c.conns = append(c.conns, conn)
		c.mu.Unlock()
		if n := c.pageLimit.Load(); n > 0 {
			_, err := conn.Exec("PRAGMA max_page_count = "+strconv.FormatInt(n, 10), nil)
			return err
		}
		return nil
	}}
	return c
}

func (c *faultConnector) Connect(context.Context) (driver.Conn, error) {
	if c.readOnly.Load() {
		return c.drv.Open(c.ro)
	}
	return c.drv.Open(c.rw)
}

func (c *faultConnector) Driver() driver.Driver { return c.drv }

// open returns the host's handle, closed when the test ends.
func (c *faultConnector) open(t testing.TB) *sql.DB {
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db
}

// capPages sets the page cap for new connections and on every connection
// opened so far, as a disk that fills up or gets room again affects the
// connections already open. n == 0 lifts the cap. The writer is idle when
// tests call this (between two Record calls), so no statement is running on
// these connections; one the pool has closed answers with an error, which
// is of no concern here.
func (c *faultConnector) capPages(n int64) {
	c.pageLimit.Store(n)
	if n == 0 {
		n = math.MaxInt32
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.Exec("PRAGMA max_page_count = "+strconv.FormatInt(n, 10), nil)
	}
}

// faultChattr sets or clears the immutable attribute of a file, the one
// kind of read-only that binds root, and binds even a descriptor already
// open for writing (ext4, xfs, btrfs). It skips the test where chattr is
// missing or not permitted (no CAP_LINUX_IMMUTABLE, or a file system
// without the attribute).
func faultChattr(t *testing.T, path string, immutable bool) {
	t.Helper()
	flag := "-i"
	if immutable {
		flag = "+i"
	}
	out, err := exec.Command("chattr", flag, path).CombinedOutput()
	if err != nil {
		if immutable {
			t.Skipf("chattr +i not available here: %v %s", err, out)
		}
		t.Errorf("chattr -i %s: %v %s", path, err, out)
	}
}

// faultImmutable is a fault that makes path immutable (see faultChattr)
// and a clear that lifts it. Should the test end first, a cleanup lifts it
// too, or TempDir could not remove the file.
func faultImmutable(path string) (inject, clear func(*testing.T)) {
	inject = func(t *testing.T) {
		faultChattr(t, path, true)
		t.Cleanup(func() {
			if _, err := os.Stat(path); err == nil {
				faultChattr(t, path, false)
			}
		})
	}
	return inject, func(t *testing.T) { faultChattr(t, path, false) }
}

// faultFolderAsFile is a fault that puts a plain file where the folder dir
// was, and a clear that makes it an empty folder again.
func faultFolderAsFile(dir string) (inject, clear func(*testing.T)) {
	inject = func(t *testing.T) {
		require.NoError(t, os.RemoveAll(dir))
		require.NoError(t, os.WriteFile(dir, []byte("not a folder"), 0o600))
	}
	clear = func(t *testing.T) {
		require.NoError(t, os.Remove(dir))
		require.NoError(t, os.Mkdir(dir, 0o750))
	}
	return inject, clear
}

// faultWhen says when a fault scenario's fault comes.
type faultWhen int

const (
	faultAfterFirstEvent faultWhen = iota // one event recorded and logged first
	faultAfterOpen                        // before any event: trek.log not opened yet
	faultBeforeOpen                       // already there when the Auditor opens
)

// faultScenario is one way the database or trek.log refuses to be written.
type faultScenario struct {
	cfg           Config
	when          faultWhen
	inject, clear func(t *testing.T)
	details       map[string]any // of the events recorded during the fault
	dbPath        string         // the database file, when cfg.DB is the host's handle
}

func TestFaultsAreReportedCountedAndRecovered(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(t *testing.T) faultScenario
		wantIs error
		// wantMsg are what the error and Stats().LastError must say; "$LOG"
		// stands for the log path.
		wantMsg []string
		stored  bool // events recorded during the fault are in the database (log faults)
	}{
		{
			name: "database locked by another writer past the busy timeout",
			setup: func(t *testing.T) faultScenario {
				cfg := faultConfig(t)
				var release func()
				return faultScenario{cfg: cfg,
					inject: func(t *testing.T) { release = faultHoldLock(t, cfg.DBPath) },
					clear:  func(*testing.T) { release() }}
			},
			wantIs: ErrStore, wantMsg: []string{"locked"},
		},
		{
			name: "database opened read-only, then made writable",
			setup: func(t *testing.T) faultScenario {
				cfg := faultConfig(t)
				// TREK's database, with the library's tables, exists.
				a, err := Open(cfg)
				require.NoError(t, err)
				require.NoError(t, a.Close())
				c := newFaultConnector(cfg.DBPath)
				path := cfg.DBPath
				cfg.DB, cfg.DBPath = c.open(t), ""
				return faultScenario{cfg: cfg, dbPath: path, when: faultBeforeOpen,
					inject: func(*testing.T) { c.readOnly.Store(true) },
					clear:  func(*testing.T) { c.readOnly.Store(false) }}
			},
			wantIs: ErrStore, wantMsg: []string{"read-only"},
		},
		{
			name: "database file immutable when the Auditor opens, then writable",
			setup: func(t *testing.T) faultScenario {
				cfg := faultConfig(t)
				a, err := Open(cfg)
				require.NoError(t, err)
				require.NoError(t, a.Close())
				// SQLite cannot open the file for writing, so it opens it
				// read-only, as for a write-protected file.
				inject, clear := faultImmutable(cfg.DBPath)
				return faultScenario{cfg: cfg, when: faultBeforeOpen, inject: inject, clear: clear}
			},
			wantIs: ErrStore, wantMsg: []string{"read-only"},
		},
		{
			name: "WAL file made immutable under the open connection",
			setup: func(t *testing.T) faultScenario {
				cfg := faultConfig(t)
				inject, clear := faultImmutable(cfg.DBPath + "-wal")
				return faultScenario{cfg: cfg, inject: inject, clear: clear}
			},
			wantIs: ErrStore, wantMsg: []string{"read-only"},
		},
		{
			name: "database full",
			setup: func(t *testing.T) faultScenario {
				cfg := faultConfig(t)
				c := newFaultConnector(cfg.DBPath)
				path := cfg.DBPath
				cfg.DB, cfg.DBPath = c.open(t), ""
				return faultScenario{cfg: cfg, dbPath: path,
					// Room for no new page: a 20 KB value needs several.
					details: map[string]any{"blob": faultRepeat("0123456789abcdef", 20<<10)},
					inject: func(t *testing.T) {
						var pages int64
						require.NoError(t, openPlainDB(t, path).QueryRow(`PRAGMA page_count`).Scan(&pages))
						c.capPages(pages)
					},
					clear: func(*testing.T) { c.capPages(0) }}
			},
			wantIs: ErrStore, wantMsg: []string{"full"},
		},
		{
			name: "log folder replaced by a file before trek.log is opened",
			setup: func(t *testing.T) faultScenario {
				cfg := faultConfig(t)
				inject, clear := faultFolderAsFile(filepath.Dir(cfg.LogPath))
				return faultScenario{cfg: cfg, when: faultAfterOpen, inject: inject, clear: clear}
			},
			wantIs: ErrLogWrite, wantMsg: []string{"$LOG"}, stored: true,
		},
		{
			name: "log folder replaced by a file while trek.log is open",
			setup: func(t *testing.T) faultScenario {
				cfg := faultConfig(t)
				// The open descriptor still takes writes, into a file
				// nobody can read any more: that must not pass for success.
				inject, clear := faultFolderAsFile(filepath.Dir(cfg.LogPath))
				return faultScenario{cfg: cfg, inject: inject, clear: clear}
			},
			wantIs: ErrLogWrite, wantMsg: []string{"$LOG"}, stored: true,
		},
		{
			name: "log folder made immutable before trek.log is created",
			setup: func(t *testing.T) faultScenario {
				cfg := faultConfig(t)
				inject, clear := faultImmutable(filepath.Dir(cfg.LogPath))
				return faultScenario{cfg: cfg, when: faultAfterOpen, inject: inject, clear: clear}
			},
			wantIs: ErrLogWrite, wantMsg: []string{"$LOG", "not permitted"}, stored: true,
		},
		{
			name: "trek.log made immutable while open",
			setup: func(t *testing.T) faultScenario {
				cfg := faultConfig(t)
				inject, clear := faultImmutable(cfg.LogPath)
				return faultScenario{cfg: cfg, inject: inject, clear: clear}
			},
			wantIs: ErrLogWrite, wantMsg: []string{"$LOG", "not permitted"}, stored: true,
		},
		{
			name: "trek.log open on a device that is full",
			setup: func(t *testing.T) faultScenario {
				if fi, err := os.Stat("/dev/full"); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
					t.Skip("no /dev/full here")
				}
				cfg := faultConfig(t)
				return faultScenario{cfg: cfg, when: faultBeforeOpen,
					inject: func(t *testing.T) {
						require.NoError(t, os.MkdirAll(filepath.Dir(cfg.LogPath), 0o750))
						require.NoError(t, os.Symlink("/dev/full", cfg.LogPath))
					},
					// The operator frees the space: trek.log is a plain file again.
					clear: func(t *testing.T) { require.NoError(t, os.Remove(cfg.LogPath)) }}
			},
			wantIs: ErrLogWrite, wantMsg: []string{"$LOG", "no space left"}, stored: true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sc := c.setup(t)
			ctx := context.Background()
			if sc.when == faultBeforeOpen {
				sc.inject(t)
			}
			a := openAuditor(t, sc.cfg)
			var want []string // resources that must be stored
			if sc.when == faultAfterFirstEvent {
				require.NoError(t, a.Record(ctx, faultLogin("before", nil)))
				want = append(want, "before")
			}
			if sc.when != faultBeforeOpen {
				sc.inject(t)
			}

			// During the fault: each Record says what failed, and the
			// failure is counted.
			start := time.Now()
			const during = 3
			for i := range during {
				res := "during-" + strconv.Itoa(i)
				err := a.Record(ctx, faultLogin(res, sc.details))
				require.Error(t, err, "Record during the fault")
				assert.ErrorIs(t, err, c.wantIs)
				assert.NotErrorIs(t, err, ErrReplaced, "a fault that clears is worth a retry")
				for _, m := range c.wantMsg {
					assert.Contains(t, err.Error(), strings.ReplaceAll(m, "$LOG", sc.cfg.LogPath))
				}
				if c.stored {
					want = append(want, res)
				}
			}
			st := a.Stats()
			if c.wantIs == ErrStore {
				assert.Equal(t, uint64(during), st.StoreErrors, "StoreErrors")
				assert.Zero(t, st.LogErrors, "LogErrors")
			} else {
				assert.Equal(t, uint64(during), st.LogErrors, "LogErrors")
				assert.Zero(t, st.StoreErrors, "StoreErrors")
			}
			assert.Equal(t, uint64(len(want)), st.Recorded, "Recorded counts what was committed")
			assert.Zero(t, st.Rejected, "a fault is not a rejected event")
			assert.Zero(t, st.QueueDepth)
			for _, m := range c.wantMsg {
				assert.Contains(t, st.LastError, strings.ReplaceAll(m, "$LOG", sc.cfg.LogPath), "LastError")
			}
			assert.WithinRange(t, st.LastErrorAt, start.Add(-time.Second), time.Now().Add(time.Second), "LastErrorAt")

			// The fault clears: recording resumes with the same Auditor.
			sc.clear(t)
			for i := range during {
				res := "after-" + strconv.Itoa(i)
				if assert.NoError(t, a.Record(ctx, faultLogin(res, sc.details)), "Record once the fault is gone") {
					want = append(want, res)
				}
			}
			st2 := a.Stats()
			assert.Equal(t, st.StoreErrors, st2.StoreErrors, "no new store errors")
			assert.Equal(t, st.LogErrors, st2.LogErrors, "no new log errors")
			assert.Equal(t, uint64(len(want)), st2.Recorded)
			require.NoError(t, a.Close())

			// Every event whose Record returned nil is stored; a store
			// fault stores none of its events, so retrying is safe.
			dbPath := sc.dbPath
			if dbPath == "" {
				dbPath = sc.cfg.DBPath
			}
			rows := faultRows(t, dbPath)
			for _, res := range want {
				assert.Contains(t, rows, res, "stored")
			}
			assert.Len(t, rows, len(want), "nothing else stored")
			logText := faultLog(t, sc.cfg.LogPath)
			for i := range during {
				assert.Contains(t, logText, `"after-`+strconv.Itoa(i)+`"`, "logged once the fault is gone")
			}
		})
	}
}

// faultHoldLock takes TREK's write lock on the database from a second
// handle, as TREK's own server does during a long write, and returns the
// function that releases it.
func faultHoldLock(t *testing.T, path string) (release func()) {
	t.Helper()
	hold, err := openPlainDB(t, path).Conn(context.Background())
	require.NoError(t, err)
	_, err = hold.ExecContext(context.Background(), "BEGIN IMMEDIATE")
	require.NoError(t, err)
	return func() {
		_, err := hold.ExecContext(context.Background(), "COMMIT")
		require.NoError(t, err)
		require.NoError(t, hold.Close())
	}
}

func TestStatsShowQueueDepthAndQueueTimeouts(t *testing.T) {
	t.Run("events wait in the queue while the writer waits for the lock", func(t *testing.T) {
		cfg := faultConfig(t)
		cfg.BusyTimeout = time.Minute // the writer waits for the lock, never gives up here
		cfg.MaxBatch = 1              // so it holds exactly one event while it waits
		a := openAuditor(t, cfg)
		obs := &memBatchObserver{store: a.store, batches: make(chan int, 16)}
		a.store = obs
		queued := make(chan struct{}, 16)
		a.queued = func() { queued <- struct{}{} }
		release := faultHoldLock(t, cfg.DBPath)

		const n = 5
		errs := make(chan error, n)
		record := func(i int) {
			go func() { errs <- a.Record(context.Background(), faultLogin("queued-"+strconv.Itoa(i), nil)) }()
		}
		// One event is with the writer, which waits for the lock; the
		// others wait in the queue.
		record(0)
		require.Equal(t, 1, <-obs.batches)
		for i := 1; i < n; i++ {
			record(i)
		}
		for range n {
			<-queued
		}
		assert.Equal(t, n-1, a.Stats().QueueDepth)
		release()
		for range n {
			assert.NoError(t, <-errs)
		}
		st := a.Stats()
		assert.Zero(t, st.QueueDepth)
		assert.Equal(t, uint64(n), st.Recorded)
		assert.Zero(t, st.StoreErrors, "waiting for the lock within the busy timeout is no error")
		assert.Empty(t, st.LastError)
	})

	t.Run("a full queue rejects events whose context ends", func(t *testing.T) {
		cfg := faultConfig(t)
		cfg.BusyTimeout = time.Minute
		cfg.MaxBatch = 1
		cfg.QueueSize = 1
		a := openAuditor(t, cfg)
		release := faultHoldLock(t, cfg.DBPath)

		// While the lock is held, the writer holds one event and the queue
		// one more: of these five, at least three find no room.
		const n = 5
		type result struct {
			res string
			err error
		}
		results := make(chan result, n)
		for i := range n {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				res := "maybe-" + strconv.Itoa(i)
				results <- result{res, a.Record(ctx, faultLogin(res, nil))}
			}()
		}
		var got []result
		timedOut := 0
		for timedOut < n-2 {
			r := <-results
			got = append(got, r)
			if r.err != nil {
				timedOut++
			}
		}
		release()
		for len(got) < n {
			got = append(got, <-results)
		}
		var stored []string
		timedOut = 0
		for _, r := range got {
			if r.err == nil {
				stored = append(stored, r.res)
				continue
			}
			timedOut++
			assert.ErrorIs(t, r.err, context.DeadlineExceeded)
			assert.Contains(t, r.err.Error(), "queue full")
		}
		st := a.Stats()
		assert.Equal(t, uint64(timedOut), st.Rejected)
		assert.Equal(t, map[string]uint64{"queue_timeout": uint64(timedOut)}, st.RejectedBy)
		assert.Equal(t, uint64(len(stored)), st.Recorded)
		require.NoError(t, a.Close())
		rows := faultRows(t, cfg.DBPath)
		assert.Len(t, rows, len(stored), "only the events that got into the queue are stored")
		for _, res := range stored {
			assert.Contains(t, rows, res)
		}
	})
}

func TestStatsCountRejectedEventsByReason(t *testing.T) {
	cfg := faultConfig(t)
	a := openAuditor(t, cfg)
	ctx := context.Background()
	bad := []struct {
		e      Event
		reason string
	}{
		{Event{Action: "user.teleport"}, "unknown_action"},
		{Event{Action: "user.teleport"}, "unknown_action"},
		{Event{Action: TripCreate}, "missing_detail"},
		{Event{Action: MCPToolCall}, "missing_detail"},
		{Event{Action: TripDelete, Details: map[string]any{"tripId": 1}}, "missing_detail"},
		{Event{Action: UserLogin, IP: "not-an-ip"}, "invalid_event"},
		{Event{Action: UserLogin, Details: map[string]any{"f": func() {}}}, "invalid_event"},
	}
	want := map[string]uint64{}
	for _, b := range bad {
		require.Error(t, a.Record(ctx, b.e))
		want[b.reason]++
	}
	require.NoError(t, a.Record(ctx, faultLogin("good", nil)))
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	// A cancelled context alone does not reject an event the queue has room for.
	require.NoError(t, a.Record(canceled, faultLogin("good-cancelled-ctx", nil)))

	st := a.Stats()
	assert.Equal(t, want, st.RejectedBy)
	assert.Equal(t, uint64(len(bad)), st.Rejected)
	assert.Equal(t, uint64(2), st.Recorded)
	assert.Zero(t, st.StoreErrors)
	assert.Zero(t, st.LogErrors)
	assert.Empty(t, st.LastError, "a rejected event is the caller's error, not a fault")
	assert.True(t, st.LastErrorAt.IsZero())
	require.NoError(t, a.Close())
	assert.Equal(t, 2, faultCount(t, cfg.DBPath))
}

func TestHugeTitleKeepsTheLogLineBrief(t *testing.T) {
	cfg := faultConfig(t)
	cfg.LogMaxSizeMB = 1 // a line longer than this cannot be written at all
	a := openAuditor(t, cfg)
	ctx := context.Background()
	title := faultRepeat("Lisbon ", 2<<20)
	require.NoError(t, a.Record(ctx, Event{Action: TripCreate, Details: map[string]any{"title": title}}),
		"a 2 MB title is stored and logged, not an error")
	require.NoError(t, a.Record(ctx, Event{Action: BackupCreate, Resource: "after-the-title"}))
	require.NoError(t, a.Close())

	var info []string
	for _, line := range strings.Split(faultLog(t, cfg.LogPath), "\n") {
		if strings.HasPrefix(line, "[INFO] ") && !strings.Contains(line, " AUDIT-CHAIN ") {
			info = append(info, line)
		}
	}
	require.Len(t, info, 2, "one line per event")
	assert.Contains(t, info[0], ` created trip "Lisbon Lisbon`)
	assert.LessOrEqual(t, len(info[0]), 4<<10, "the summary is brief, not the whole title")
	assert.Contains(t, info[1], `"after-the-title"`)
	assert.Equal(t, uint64(0), a.Stats().LogErrors)
}

// TestReadOnlyDataFolder: a data folder nobody may write to stops Open with
// an error that says so, and once the folder is writable again Open and
// Record work. A folder made read-only under a running Auditor does not stop
// it: the database and its WAL are open files already, so there is no fault
// to report until the next start.
func TestReadOnlyDataFolder(t *testing.T) {
	cfg := faultConfig(t)
	dataDir := filepath.Join(filepath.Dir(cfg.DBPath), "data")
	require.NoError(t, os.Mkdir(dataDir, 0o750))
	cfg.DBPath = filepath.Join(dataDir, "travel.db")

	faultChattr(t, dataDir, true)
	t.Cleanup(func() { exec.Command("chattr", "-i", dataDir).Run() })
	_, err := Open(cfg)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrStore)
	assert.Contains(t, err.Error(), "read-only")
	assert.NoFileExists(t, cfg.DBPath)

	faultChattr(t, dataDir, false)
	a := openAuditor(t, cfg)
	require.NoError(t, a.Record(t.Context(), faultLogin("before", nil)))

	faultChattr(t, dataDir, true)
	require.NoError(t, a.Record(t.Context(), faultLogin("while read-only", nil)))
	faultChattr(t, dataDir, false)
	require.NoError(t, a.Close())
	assert.Equal(t, 2, faultCount(t, cfg.DBPath))
}

// panickyMarshaler's encoding panics, as a host's buggy MarshalJSON may.
type panickyMarshaler struct{}

func (panickyMarshaler) MarshalJSON() ([]byte, error) { panic("MarshalJSON failed") }

// A handler's event too large to store whole is cut down, but never below
// the details its action requires: Record checked they were there.
func TestTruncationKeepsRequiredDetails(t *testing.T) {
	cfg := faultConfig(t)
	a := openAuditor(t, cfg)
	// "places" sorts before "trip" and "tripId", and its 65,251 bytes of
	// JSON fit the budget with 3 bytes to spare; "zzz" takes the whole
	// past the limit.
	places := make([]int, 0, 10875)
	for i := range cap(places) {
		places = append(places, 10000+i)
	}
	enc, err := json.Marshal(places)
	require.NoError(t, err)
	require.Len(t, enc, 65251)
	require.NoError(t, a.Record(context.Background(), Event{Action: TripDelete,
		Details: map[string]any{"owner": "alice", "places": places, "tripId": 12, "trip": "Lisbon", "zzz": strings.Repeat("z", 1000)}}))
	require.NoError(t, a.Close())
	rows := readRows(t, openPlainDB(t, cfg.DBPath))
	require.Len(t, rows, 1)
	var d map[string]any
	require.NoError(t, json.Unmarshal([]byte(rows[0].Details.String), &d))
	assert.Equal(t, true, d["_truncated"])
	assert.EqualValues(t, 12, d["tripId"])
	assert.Equal(t, "Lisbon", d["trip"])
	assert.LessOrEqual(t, len(rows[0].Details.String), maxDetailsLen)
}

// TestTruncationMarkersAreTheLibrarys: a handler's details may use the
// markers' names; once cut down, the stored details still say truthfully
// that they were, and the handler's keys of those names count as omitted.
func TestTruncationMarkersAreTheLibrarys(t *testing.T) {
	r := newRedactor(nil)
	enc, err := r.encode(map[string]any{"_truncated": false, "_original_size": 1, "_omitted_keys": "none",
		"notes": strings.Repeat("x", 100<<10)})
	require.NoError(t, err)
	var d map[string]any
	require.NoError(t, json.Unmarshal(enc, &d))
	assert.Less(t, len(d["notes"].(string)), 100<<10, "notes was cut")
	assert.Equal(t, true, d["_truncated"])
	assert.Greater(t, d["_original_size"], float64(100<<10))
	assert.Equal(t, float64(3), d["_omitted_keys"], "the handler's three keys of the markers' names")

	// Not cut down, the handler's keys are its own.
	enc, err = r.encode(map[string]any{"_truncated": false})
	require.NoError(t, err)
	assert.JSONEq(t, `{"_truncated":false}`, string(enc))
}
