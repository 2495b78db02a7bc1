package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	wikiPath = "testdata/audit-log-wiki.txt"
	// seedPath is the wiki page as the project received it; present in CI.
	seedPath = "../shared/seeds/000_3fef37102526fc41.txt"
)

// parseWikiCatalogue reads the action tables of the wiki page "Audit Log":
// each table starts with the header line "Action key Description" under its
// heading (the last non-empty line before it) and runs to the next blank
// line; a row is the key, one space, the description.
func parseWikiCatalogue(t *testing.T, path string) []ActionInfo {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var (
		out      []ActionInfo
		heading  string
		lastText string
		inTable  bool
	)
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "Action key Description":
			require.NotEmpty(t, lastText, "table without a heading")
			heading, inTable = lastText, true
		case inTable && strings.TrimSpace(line) == "":
			inTable = false
		case inTable:
			key, desc, ok := strings.Cut(line, " ")
			require.True(t, ok, "row %q has no description", line)
			out = append(out, ActionInfo{Action: Action(key), Category: heading, Description: desc})
		}
		if strings.TrimSpace(line) != "" {
			lastText = line
		}
	}
	require.NoError(t, sc.Err())
	return out
}

func TestCatalogueMatchesWikiPage(t *testing.T) {
	want := parseWikiCatalogue(t, wikiPath)
	require.Len(t, want, 46, "the wiki page lists 46 action keys")

	got := Catalogue()
	require.Len(t, got, len(want))
	for i := range want {
		assert.Equal(t, want[i].Action, got[i].Action, "key #%d", i)
		assert.Equal(t, want[i].Category, got[i].Category, "category of %s", want[i].Action)
		assert.Equal(t, want[i].Description, got[i].Description, "description of %s", want[i].Action)
	}

	var headings []string
	for _, info := range want {
		if len(headings) == 0 || headings[len(headings)-1] != info.Category {
			headings = append(headings, info.Category)
		}
	}
	assert.Equal(t, []string{"Authentication", "MFA", "Trips", "Admin actions", "Backups", "MCP", "OAuth", "Integrations"},
		headings, "the page's headings, in order")
}

func TestWikiCopyIsTheSeed(t *testing.T) {
	seed, err := os.ReadFile(seedPath)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("%s is not here (it is in CI)", seedPath)
	}
	require.NoError(t, err)
	ours, err := os.ReadFile(wikiPath)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(seed, ours), "%s differs from %s", wikiPath, filepath.Clean(seedPath))
}

func TestCatalogueLabels(t *testing.T) {
	seen := map[string]Action{}
	for _, info := range Catalogue() {
		label := strings.TrimSpace(info.Label)
		if assert.NotEmpty(t, label, "%s has no label", info.Action) {
			assert.Equal(t, info.Label, label, "label of %s has outer spaces", info.Action)
			assert.NotContains(t, label, "\n", "label of %s", info.Action)
		}
		if prev, dup := seen[label]; dup {
			assert.Failf(t, "labels not unique", "%s and %s share label %q", prev, info.Action, label)
		}
		seen[label] = info.Action
	}
}

func TestCatalogueReturnsACopy(t *testing.T) {
	before := Catalogue()
	mutated := Catalogue()
	for i := range mutated {
		mutated[i].Description = "changed"
		mutated[i].Label = "changed"
		mutated[i].Category = "changed"
		for j := range mutated[i].RequiredDetails {
			mutated[i].RequiredDetails[j] = "changed"
		}
	}
	mutated[0] = ActionInfo{}
	assert.Equal(t, before, Catalogue())

	// The library's own checks are untouched too: trip.create still needs
	// its title.
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	err := a.Record(t.Context(), Event{Action: TripCreate, Details: map[string]any{"changed": "x"}})
	assert.ErrorIs(t, err, ErrMissingDetail)
	assert.NoError(t, a.Record(t.Context(), Event{Action: TripCreate, Details: map[string]any{"title": "Lisbon"}}))
}

// TestRejectedEventsWriteNothing checks every way Record refuses an event:
// the error, what its message names, and that neither a row nor a log line
// appears.
func TestRejectedEventsWriteNothing(t *testing.T) {
	cfg := testConfig(t)
	cfg.LogLevel = "debug"
	cfg.ExtraActions = []ActionInfo{{Action: "trip.archive", Category: "Trips", Description: "Trip archived",
		Label: "archived trip", RequiredDetails: []string{"tripId"}}}
	a := openAuditor(t, cfg)
	db := openTestDB(t, cfg.DBPath)

	cases := []struct {
		name    string
		event   Event
		wantErr error
		names   []string // what the message must mention
	}{
		{"key outside the catalogue", Event{Action: "trip.archived"}, ErrUnknownAction, []string{"trip.archived"}},
		{"empty key", Event{Action: ""}, ErrUnknownAction, []string{`""`}},
		{"key in the wrong case", Event{Action: "USER.LOGIN"}, ErrUnknownAction, []string{"USER.LOGIN"}},
		{"trip.create without title", Event{Action: TripCreate, Details: map[string]any{"tripId": 12}},
			ErrMissingDetail, []string{"trip.create", "title"}},
		{"trip.create with a nil title", Event{Action: TripCreate, Details: map[string]any{"title": nil}},
			ErrMissingDetail, []string{"trip.create", "title"}},
		{"trip.create without details", Event{Action: TripCreate}, ErrMissingDetail, []string{"trip.create", "title"}},
		// Present, but saying nothing: stored, it would read {"title":null}.
		{"trip.create with a nil *string title", Event{Action: TripCreate, Details: map[string]any{"title": (*string)(nil)}},
			ErrMissingDetail, []string{"trip.create", "title"}},
		{"trip.create with a blank title", Event{Action: TripCreate, Details: map[string]any{"title": " \t"}},
			ErrMissingDetail, []string{"trip.create", "title"}},
		{"trip.create with a JSON null title", Event{Action: TripCreate, Details: map[string]any{"title": json.RawMessage(" null ")}},
			ErrMissingDetail, []string{"trip.create", "title"}},
		{"trip.create with an empty title of the host's own string type", Event{Action: TripCreate,
			Details: map[string]any{"title": hostTitle("")}}, ErrMissingDetail, []string{"trip.create", "title"}},
		{"trip.create with a pointer to a blank title of the host's own string type", Event{Action: TripCreate,
			Details: map[string]any{"title": new(hostTitle(" "))}}, ErrMissingDetail, []string{"trip.create", "title"}},
		{"trip.delete with nil slices", Event{Action: TripDelete, Details: map[string]any{"tripId": []int(nil), "trip": map[string]any(nil)}},
			ErrMissingDetail, []string{"trip.delete", "tripId", `"trip"`}},
		{"trip.update with only tripId, trip and owner",
			Event{Action: TripUpdate, Details: map[string]any{"tripId": 12, "trip": "Lisbon", "owner": "alice"}},
			ErrMissingDetail, []string{"trip.update", "changed field"}},
		{"trip.update without tripId", Event{Action: TripUpdate, Details: map[string]any{"title": "Porto"}},
			ErrMissingDetail, []string{"trip.update", "tripId"}},
		{"trip.copy missing newTripId", Event{Action: TripCopy, Details: map[string]any{"sourceTripId": 12, "title": "Lisbon"}},
			ErrMissingDetail, []string{"trip.copy", "newTripId"}},
		{"trip.copy missing sourceTripId", Event{Action: TripCopy, Details: map[string]any{"newTripId": 13}},
			ErrMissingDetail, []string{"trip.copy", "sourceTripId"}},
		{"trip.delete missing trip", Event{Action: TripDelete, Details: map[string]any{"tripId": 12, "owner": "alice"}},
			ErrMissingDetail, []string{"trip.delete", `"trip"`}},
		{"trip.delete missing tripId", Event{Action: TripDelete, Details: map[string]any{"trip": "Lisbon"}},
			ErrMissingDetail, []string{"trip.delete", "tripId"}},
		{"mcp.tool_call with empty resource", Event{Action: MCPToolCall}, ErrMissingDetail, []string{"mcp.tool_call", "resource"}},
		{"mcp.tool_call with a blank resource", Event{Action: MCPToolCall, Resource: " \t"}, ErrMissingDetail,
			[]string{"mcp.tool_call", "resource"}},
		{"extra action missing its required detail", Event{Action: "trip.archive"}, ErrMissingDetail,
			[]string{"trip.archive", "tripId"}},
		// Followed pointer by pointer, it would never end: the stack
		// would run out, a crash no recover catches.
		{"trip.create with a title that points at itself", Event{Action: TripCreate, Details: map[string]any{"title": selfPointer()}},
			ErrInvalidEvent, []string{"title"}},
		{"trip.create with a title at the end of 200 pointers to nil", Event{Action: TripCreate, Details: map[string]any{"title": pointersToNil(200)}},
			ErrMissingDetail, []string{"trip.create", "title"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := a.Record(t.Context(), tc.event)
			require.ErrorIs(t, err, tc.wantErr)
			for _, s := range tc.names {
				assert.Contains(t, err.Error(), s)
			}
			assert.Zero(t, countRows(t, db), "rows")
			assert.Empty(t, readLog(t, cfg.LogPath), "trek.log")
		})
	}

	t.Run("extra action with its detail is accepted", func(t *testing.T) {
		require.NoError(t, a.Record(t.Context(), Event{Action: "trip.archive", Details: map[string]any{"tripId": 12}}))
		rows := readRows(t, db)
		require.Len(t, rows, 1)
		assert.Equal(t, "trip.archive", rows[0].Action)
		info := linesWithPrefix(eventLines(logLines(t, cfg.LogPath)), "[INFO] ")
		require.Len(t, info, 1)
		assert.Contains(t, info[0], " anonymous archived trip ")
	})
}

// TestRequiredDetailThatSaysNothingIsMissing: a required detail that the
// host hands over already encoded, or as a value that encodes itself, is
// judged by what it encodes to. Nothing, JSON null, a blank string, or an
// encoding that fails is no title: the event is refused as missing it, and
// neither a row nor a log line is written.
func TestRequiredDetailThatSaysNothingIsMissing(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	db := openTestDB(t, cfg.DBPath)

	cases := []struct {
		name  string
		value any
		cause string // what the error says of an encoding that failed
	}{
		{"json.RawMessage of blank text", json.RawMessage("  "), ""},
		{"json.RawMessage of nothing", json.RawMessage{}, ""},
		{"json.RawMessage of a blank JSON string", json.RawMessage(`" \t "`), ""},
		{"json.RawMessage of a blank JSON string spelled in escapes", json.RawMessage(`"\u0020\u00a0"`), ""},
		{"empty []byte, which encodes to \"\"", []byte{}, ""},
		{"Marshaler giving null", jsonMarshaler{out: "null"}, ""},
		{"Marshaler giving a blank JSON string", jsonMarshaler{out: `"  "`}, ""},
		{"pointer to a Marshaler giving null", &jsonMarshaler{out: " null "}, ""},
		{"Marshaler that fails", jsonMarshaler{err: errors.New("no title yet")}, "no title yet"},
		{"Marshaler that panics", jsonMarshaler{panics: true}, "title not loaded"},
		{"TextMarshaler giving empty text", textMarshaler{}, ""},
		{"TextMarshaler giving blank text", textMarshaler{out: "\n "}, ""},
		{"TextMarshaler that fails", textMarshaler{err: errors.New("no title yet")}, "no title yet"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := a.Record(t.Context(), Event{Action: TripCreate, Details: map[string]any{"title": tc.value, "tripId": 12}})
			require.ErrorIs(t, err, ErrMissingDetail)
			assert.Contains(t, err.Error(), "title")
			assert.Contains(t, err.Error(), tc.cause)
			assert.Zero(t, countRows(t, db), "rows")
			assert.Empty(t, readLog(t, cfg.LogPath), "trek.log")
		})
	}

	// The same values saying something are titles.
	for i, v := range []any{json.RawMessage(` "Lisbon" `), []byte("Lisbon"), jsonMarshaler{out: `"Lisbon"`},
		&jsonMarshaler{out: `{"name":"Lisbon"}`}, textMarshaler{out: "Lisbon"}} {
		require.NoError(t, a.Record(t.Context(), Event{Action: TripCreate, Details: map[string]any{"title": v}}), "value %d", i)
	}
	assert.EqualValues(t, 5, countRows(t, db))
}

// jsonMarshaler encodes itself as out, or fails with err, or panics.
type jsonMarshaler struct {
	out    string
	err    error
	panics bool
}

func (m jsonMarshaler) MarshalJSON() ([]byte, error) {
	if m.panics {
		panic("title not loaded")
	}
	return []byte(m.out), m.err
}

// textMarshaler encodes itself as the JSON string of out, or fails with err.
type textMarshaler struct {
	out string
	err error
}

func (m textMarshaler) MarshalText() ([]byte, error) { return []byte(m.out), m.err }

// hostTitle is a string type of a host's own, as TREK's handlers may use.
type hostTitle string

// pointersToNil is a chain of n pointers, each to an interface that holds
// the next, ending in nil: finite, and saying nothing.
func pointersToNil(n int) any {
	var v any
	for range n {
		p := new(any)
		*p = v
		v = p
	}
	return v
}

// selfPointer is a pointer to an interface that holds the pointer itself.
func selfPointer() *any {
	p := new(any)
	*p = p
	return p
}

func TestOpenRejectsBadExtraActions(t *testing.T) {
	cases := []struct {
		name  string
		extra ActionInfo
	}{
		{"redefines a catalogue key", ActionInfo{Action: UserLogin, Category: "Authentication", Description: "x"}},
		{"empty key", ActionInfo{Action: "", Category: "Trips"}},
		{"upper case", ActionInfo{Action: "Trip.Archive", Category: "Trips"}},
		{"starts with a digit", ActionInfo{Action: "1trip.archive", Category: "Trips"}},
		{"starts with a dot", ActionInfo{Action: ".hidden", Category: "Trips"}},
		{"starts with an underscore", ActionInfo{Action: "_trip.archive", Category: "Trips"}},
		{"contains a space", ActionInfo{Action: "trip archive", Category: "Trips"}},
		{"contains a newline", ActionInfo{Action: "trip.archive\n", Category: "Trips"}},
		{"contains a hyphen", ActionInfo{Action: "trip.archive-all", Category: "Trips"}},
		{"longer than 64 bytes", ActionInfo{Action: Action("trip." + strings.Repeat("a", 60)), Category: "Trips"}},
		{"no category", ActionInfo{Action: "trip.archive"}},
		{"blank category", ActionInfo{Action: "trip.archive", Category: "  "}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.ExtraActions = []ActionInfo{tc.extra}
			a, err := Open(cfg)
			if a != nil {
				a.Close()
			}
			assert.ErrorIs(t, err, ErrBadAction)
			assert.Nil(t, a)
		})
	}

	t.Run("the same extra key twice", func(t *testing.T) {
		cfg := testConfig(t)
		x := ActionInfo{Action: "trip.archive", Category: "Trips"}
		cfg.ExtraActions = []ActionInfo{x, x}
		_, err := Open(cfg)
		assert.ErrorIs(t, err, ErrBadAction)
	})
}

// TestExtraActionLabelCannotBreakALine: a label is part of every line of its
// events, so a label with a line break must be refused at Open or escaped
// when written; either way one event stays one line.
func TestExtraActionLabelCannotBreakALine(t *testing.T) {
	cfg := testConfig(t)
	cfg.ExtraActions = []ActionInfo{{Action: "trip.archive", Category: "Trips",
		Label: "archived trip\n[INFO] 2026-01-01T00:00:00 admin@example.com logged in ip=1.2.3.4"}}
	a, err := Open(cfg)
	if err != nil {
		assert.ErrorIs(t, err, ErrBadAction)
		return
	}
	t.Cleanup(func() { a.Close() })
	require.NoError(t, a.Record(t.Context(), Event{Action: "trip.archive"}))
	require.NoError(t, a.Close())
	lines := eventLines(logLines(t, cfg.LogPath))
	assert.Len(t, lines, 1, "one event, one line: %q", lines)
}
