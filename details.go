package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Limits on what one event may store. Larger values are cut down with a
// marker rather than rejected: an audit event must not be lost because a
// handler attached too much.
const (
	maxDetailsLen  = 64 << 10 // encoded details
	maxResourceLen = 1 << 10
	maxActorLen    = 256
	redactedValue  = "[REDACTED]"
	truncatedMark  = "…[truncated]"

	// maxDetailsDepth bounds how deeply details nest, counting the details
	// object itself. TREK's details are two or three levels deep; a value
	// nested deeper than this is replaced by truncatedMark. Without a bound,
	// details that a host decoded from a user's JSON (encoding/json takes
	// up to 10,000 levels) nest one level deeper once stored under a key:
	// then no JSON decoder of Go reads them back, the admin list shows them
	// as unreadable, and redaction, which must decode them, would refuse
	// the event, so that a user could keep their own action out of the log.
	maxDetailsDepth = 100
)

// DefaultSecretKeys name detail keys whose values are never stored: a detail
// key that contains one of them, ignoring case and every character but
// letters and digits (so "API Key", "api.key" and "x-api-key" all match
// "api_key"), is redacted at any depth. Keys that are exactly "pass", "pin"
// or "otp", so spelled, are redacted too; as parts of a key they are too
// common ("passenger", "footprint") to mean a secret. A struct field is
// secret by its Go name or its json name. Config.SecretKeys adds more.
var DefaultSecretKeys = []string{
	"password", "passwd", "pwd", "secret", "token", "api_key", "apikey",
	"authorization", "bearer", "cookie", "passphrase", "private_key", "client_secret",
	"credential", "jwt", "session_id", "totp", "backup_code", "recovery_code",
	"smtp_pass", "webhook_url", // TREK's own secret settings
	"mfa_code", "auth_code", "otp_code",
}

// exactSecretKeys are secret only as a whole key (see DefaultSecretKeys).
var exactSecretKeys = []string{"pass", "pin", "otp"}

// redactor encodes details and keeps secrets out of them.
type redactor struct {
	needles [][]byte // normalised secret key fragments
	exact   []string // normalised whole keys (exactSecretKeys)
}

func newRedactor(extra []string) redactor {
	var r redactor
	for _, k := range append(slices.Clone(DefaultSecretKeys), extra...) {
		if n := normaliseKey(k); n != "" && !slices.ContainsFunc(r.needles, func(b []byte) bool { return string(b) == n }) {
			r.needles = append(r.needles, []byte(n))
		}
	}
	for _, k := range exactSecretKeys {
		r.exact = append(r.exact, normaliseKey(k))
	}
	return r
}

// normaliseKey folds a key's case and keeps only its letters and digits,
// so that apiKey, API_KEY, "API Key" and api.key all read "apikey". Case
// is folded through the upper case, so that the letters that equal an
// ASCII one but for case (the long s, the Kelvin sign) read as it:
// "PAſſWORD" reads "password".
func normaliseKey(k string) string {
	var b strings.Builder
	for _, r := range k {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToLower(unicode.ToUpper(r)))
		}
	}
	return b.String()
}

func (r *redactor) isSecret(key string) bool {
	n := []byte(normaliseKey(key))
	if slices.Contains(r.exact, string(n)) {
		return true
	}
	for _, needle := range r.needles {
		if bytes.Contains(n, needle) {
			return true
		}
	}
	return false
}

// mayHoldSecret is the fast path: a secret key must appear in the encoded
// text, so text that contains no needle needs no redaction. A \u escape
// can spell a key's letters (json.RawMessage and Marshalers pass their
// escapes through), so text with one takes the slow path too.
func (r *redactor) mayHoldSecret(enc []byte) bool {
	if bytes.Contains(enc, []byte(`\u`)) {
		return true
	}
	if bytes.IndexByte(enc, '\\') >= 0 {
		// The other escapes (\f, \n, \", ...) stand for characters that
		// are neither letters nor digits, which a key's reading drops: drop
		// them whole, or their letter would join the key's ("c\fookie").
		enc = dropEscapes(enc)
	}
	n := make([]byte, 0, len(enc))
	for _, c := range enc {
		if c >= utf8.RuneSelf {
			// Non-ASCII can lower-case to ASCII (the Kelvin sign to 'k'):
			// fold it exactly as isSecret does.
			n = []byte(normaliseKey(string(enc)))
			break
		}
		switch {
		case c >= 'A' && c <= 'Z':
			n = append(n, c+'a'-'A')
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			n = append(n, c)
		}
	}
	for _, needle := range r.needles {
		if bytes.Contains(n, needle) {
			return true
		}
	}
	// A whole secret key is a fragment of the text it stands in.
	for _, k := range r.exact {
		if bytes.Contains(n, []byte(k)) {
			return true
		}
	}
	return false
}

// capDepth returns enc with every value that nests deeper than maxDepth
// levels replaced by truncatedMark. enc is JSON as encoding/json writes
// it: valid, with no white space.
func capDepth(enc []byte, maxDepth int) []byte {
	// Nesting n levels deep takes n opening brackets: most details have
	// too few to need the walk.
	if bytes.Count(enc, []byte{'{'})+bytes.Count(enc, []byte{'['}) <= maxDepth {
		return enc
	}
	var out []byte
	copied, depth := 0, 0
	for i := 0; i < len(enc); i++ {
		switch enc[i] {
		case '"':
			i = stringEnd(enc, i)
		case '}', ']':
			depth--
		case '{', '[':
			if depth < maxDepth {
				depth++
				continue
			}
			end := valueEnd(enc, i)
			out = append(out, enc[copied:i]...)
			out = append(out, truncatedJSON...)
			copied, i = end, end-1
		}
	}
	if out == nil {
		return enc
	}
	return append(out, enc[copied:]...)
}

// truncatedJSON is truncatedMark as a JSON string.
var truncatedJSON = []byte(`"` + truncatedMark + `"`)

// stringEnd returns the index of the quote that closes the JSON string
// whose opening quote is at enc[i].
func stringEnd(enc []byte, i int) int {
	for i++; i < len(enc); i++ {
		switch enc[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return len(enc)
}

// valueEnd returns the index just past the object or array that opens at
// enc[i].
func valueEnd(enc []byte, i int) int {
	depth := 0
	for ; i < len(enc); i++ {
		switch enc[i] {
		case '"':
			i = stringEnd(enc, i)
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return i + 1
			}
		}
	}
	return len(enc)
}

// dropEscapes returns JSON text without its two-character escapes.
func dropEscapes(enc []byte) []byte {
	out := make([]byte, 0, len(enc))
	for i := 0; i < len(enc); i++ {
		if enc[i] == '\\' {
			i++
			continue
		}
		out = append(out, enc[i])
	}
	return out
}

// encode returns the JSON object to store for details: nil for no details,
// secrets redacted, invalid UTF-8 replaced, at most maxDetailsLen bytes. A
// value that JSON cannot encode is an error that names its key.
//
// keep names the keys that truncation must keep before all others: the
// details the action requires.
func (r *redactor) encode(details map[string]any, keep ...string) ([]byte, error) {
	if len(details) == 0 {
		return nil, nil
	}
	enc, err := marshalText(details)
	if err != nil {
		return nil, unencodable(details, err)
	}
	if renamed := r.renamedSecrets(details); len(renamed) > 0 {
		r = &redactor{needles: r.needles, exact: append(slices.Clip(r.exact), renamed...)}
	}
	if enc, err = r.clean(enc, maxDetailsDepth); err != nil {
		return nil, fmt.Errorf("details: %w", err)
	}
	if len(enc) > maxDetailsLen {
		return truncateDetails(enc, keep)
	}
	return enc, nil
}

// clean makes JSON text fit to keep, in the database or in trek.log:
// invalid UTF-8 replaced, nesting past maxDepth levels cut, and the values
// under secret keys redacted.
func (r *redactor) clean(enc []byte, maxDepth int) ([]byte, error) {
	if !utf8.Valid(enc) {
		// Only text from a json.RawMessage or a Marshaler gets here:
		// encoding/json passes its bytes on as they are. Outside strings
		// JSON is ASCII, so this replaces bytes within strings only.
		enc = bytes.ToValidUTF8(enc, []byte("\uFFFD"))
	}
	enc = capDepth(enc, maxDepth)
	if !r.mayHoldSecret(enc) {
		return enc, nil
	}
	var tree any
	dec := json.NewDecoder(bytes.NewReader(enc))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	r.scrub(tree)
	return marshalText(tree)
}

// marshalText encodes v as JSON the way TREK's JSON.stringify does, without
// encoding/json's \u003c-style escapes for '<', '>' and '&': details are
// stored as text, not embedded in HTML, and a \u escape left in the text
// then always means something the redaction must look at (mayHoldSecret).
// Its encoders are pooled, so that it allocates what json.Marshal does.
// A value whose own encoding panics (a Marshaler that panics, a struct that
// embeds a nil pointer to one) is an error: encoding/json passes such a
// panic on, and an event must not take its caller down with it.
func marshalText(v any) (out []byte, err error) {
	t := textEncoders.Get().(*textEncoder)
	t.buf.Reset()
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("encoding panicked: %v", p) // t is dropped, not pooled
		}
	}()
	if err := t.enc.Encode(v); err != nil {
		textEncoders.Put(t)
		return nil, err
	}
	out = bytes.Clone(bytes.TrimSuffix(t.buf.Bytes(), []byte("\n")))
	if t.buf.Cap() <= 2*maxDetailsLen { // not one huge event's buffer
		textEncoders.Put(t)
	}
	return out, nil
}

type textEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var textEncoders = sync.Pool{New: func() any {
	t := &textEncoder{}
	t.enc = json.NewEncoder(&t.buf)
	t.enc.SetEscapeHTML(false)
	return t
}}

// renamedSecrets returns, normalised, the json names of the struct fields
// in details that are secret by their Go name alone: Password tagged "pw"
// is a password still, as LogHandler takes it. The JSON keeps only "pw",
// so the redaction of these details takes it for a secret key, wherever
// it stands in them: more is redacted, never less. Only values that are
// not plain (a struct, a pointer, a map or slice of them) are looked at,
// as deep as details are kept.
func (r *redactor) renamedSecrets(details map[string]any) []string {
	var names []string
	for _, v := range details {
		switch v.(type) {
		case nil, string, bool, int, int64, float64, json.Number:
			continue
		}
		r.renamedIn(reflect.ValueOf(v), 0, &names)
	}
	return names
}

// renamedIn adds to names those of renamedSecrets in v, depth levels down.
func (r *redactor) renamedIn(v reflect.Value, depth int, names *[]string) {
	if !v.IsValid() || depth > maxDetailsDepth {
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			r.renamedIn(v.Elem(), depth+1, names)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() && !f.Anonymous {
				continue // encoding/json leaves it out
			}
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if tag == "-" {
				continue
			}
			if n := normaliseKey(tag); n != "" && !f.Anonymous && r.isSecret(f.Name) && !r.isSecret(tag) {
				*names = append(*names, n)
			}
			r.renamedIn(v.Field(i), depth+1, names)
		}
	case reflect.Map, reflect.Slice, reflect.Array:
		if plainKind(v.Type().Elem().Kind()) {
			return
		}
		if v.Kind() == reflect.Map {
			for it := v.MapRange(); it.Next(); {
				r.renamedIn(it.Value(), depth+1, names)
			}
			return
		}
		for i := range v.Len() {
			r.renamedIn(v.Index(i), depth+1, names)
		}
	}
}

// plainKind reports whether values of kind k hold no struct field.
func plainKind(k reflect.Kind) bool {
	return k >= reflect.Bool && k <= reflect.Complex128 || k == reflect.String
}

// scrub replaces, in place, every value under a secret key.
func (r *redactor) scrub(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if r.isSecret(k) {
				v[k] = redactedValue
			} else {
				r.scrub(x)
			}
		}
	case []any:
		for _, x := range v {
			r.scrub(x)
		}
	}
}

// unencodable finds the detail key whose value JSON refused.
func unencodable(details map[string]any, err error) error {
	keys := make([]string, 0, len(details))
	for k := range details {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if _, kerr := marshalText(details[k]); kerr != nil {
			return fmt.Errorf("detail %s cannot be encoded as JSON: %w", quoted(k), kerr)
		}
	}
	return fmt.Errorf("details cannot be encoded as JSON: %w", err)
}

// truncateDetails keeps the top-level keys that fit, in order, shortens a
// string that does not, and marks the result with _truncated and
// _original_size so a reader knows it is not the whole. Sizes are those of
// the encoding: JSON escaping can make a key or a string up to six times as
// long as its text.
func truncateDetails(enc []byte, keep []string) ([]byte, error) {
	var tree map[string]json.RawMessage
	if err := json.Unmarshal(enc, &tree); err != nil {
		return nil, fmt.Errorf("details: %w", err)
	}
	keys := make([]string, 0, len(tree))
	for k := range tree {
		keys = append(keys, k)
	}
	// The required details first, so that none is dropped after Record
	// checked it was there; then the rest in order.
	slices.SortFunc(keys, func(a, b string) int {
		ka, kb := slices.Contains(keep, a), slices.Contains(keep, b)
		switch {
		case ka && !kb:
			return -1
		case kb && !ka:
			return 1
		}
		return strings.Compare(a, b)
	})
	out := map[string]any{"_truncated": true, "_original_size": len(enc)}
	budget := maxDetailsLen - 256 // room for the markers and punctuation
	omitted := 0
	for _, k := range keys {
		if k == "_truncated" || k == "_original_size" || k == "_omitted_keys" {
			omitted++ // the markers must say what they say, whatever the host named its keys
			continue
		}
		v := tree[k]
		ek, _ := marshalText(k) // the key as written, escapes and all
		cost := len(ek) + len(v) + 2
		if cost <= budget {
			out[k] = v
			budget -= cost
			continue
		}
		var s string
		if json.Unmarshal(v, &s) == nil && budget > len(ek)+64 {
			cut, b := cutToFit(s, (budget-len(ek)-2)/2) // leave room for the keys after it
			out[k] = cut
			budget -= len(ek) + len(b) + 2
			continue
		}
		omitted++
	}
	if omitted > 0 {
		out["_omitted_keys"] = omitted
	}
	res, err := marshalText(out)
	if err == nil && len(res) > maxDetailsLen { // a guard: never store more than the limit
		res, err = marshalText(map[string]any{"_truncated": true, "_original_size": len(enc), "_omitted_keys": len(keys)})
	}
	return res, err
}

// cutToFit shortens s, with the truncation mark, until its JSON encoding is
// at most n bytes, and returns it with that encoding.
func cutToFit(s string, n int) (string, []byte) {
	for m := n; ; m = m * 2 / 3 {
		c := cutString(s, m)
		b, _ := marshalText(c)
		if len(b) <= n || m == 0 {
			return c, b
		}
	}
}

// cutString shortens s to at most n bytes on a rune boundary, with a marker.
func cutString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n -= len(truncatedMark)
	if n < 0 {
		n = 0
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + truncatedMark
}

// cleanText makes a free-text field safe to store: invalid UTF-8 replaced,
// at most n bytes. Escaping for the log line happens when the line is
// written; the database keeps the text as it was typed.
func cleanText(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return cutString(s, n)
}
