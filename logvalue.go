package audit

import (
	"encoding"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// valueWriter writes a map, slice, array or struct that the host logs as
// JSON text, with what lies under secret keys (map keys, struct field names
// and their json names) redacted, as in details. It walks the value itself
// rather than handing it to encoding/json: a logging call must not run a
// type's MarshalJSON, which may take a lock the caller holds or call
// itself. It calls only what slog's own handlers call on a value (String,
// Error, MarshalText), and bounds what it does, so that no value can hang
// or crash the host's logging call, or fill its memory: it stops at
// cycles, at maxDetailsDepth levels (pointer steps included), after
// maxWalkSteps values (map keys included), and at limit bytes, and what it
// writes is always whole JSON.
type valueWriter struct {
	redact *redactor // nil: nothing redacted
	b      []byte
	limit  int
	// steps counts the values visited and read the bytes of []byte values
	// looked at; both are shared with the writers of map keys.
	steps, read *int
	path        []pathStep // maps, slices and pointers being written, for cycles
}

// pathStep names a map, slice or pointer being written. The address alone
// would not do: a slice shares it with a shorter one of the same array, a
// struct with a pointer to its first field.
type pathStep struct {
	ptr uintptr
	typ reflect.Type
	len int
}

const (
	// maxSortedKeys bounds the map keys valueWriter sorts. A larger map is
	// written in Go's order: it is cut at the limit anyway.
	maxSortedKeys = 4096
	// maxWalkSteps bounds the values one walk visits, so that its time
	// does not depend on the value's size or shape.
	maxWalkSteps = 1 << 14
	// maxKeyName bounds a map key's name.
	maxKeyName = 256
	// walkReserve is the room kept under maxLogValue for what follows the
	// limit: the value being ended and up to maxDetailsDepth closing
	// brackets.
	walkReserve = 256
)

// logValueJSON writes x, for which composite is true, as LogHandler writes
// it: JSON of at most maxLogValue bytes, redacted as details are.
func logValueJSON(redact *redactor, x any) string {
	steps, read := 0, 0
	w := valueWriter{redact: redact, limit: maxLogValue - walkReserve, steps: &steps, read: &read}
	w.write(reflect.ValueOf(x), 1)
	return string(w.b)
}

var (
	stringerType      = reflect.TypeFor[fmt.Stringer]()
	errorType         = reflect.TypeFor[error]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	byteType          = reflect.TypeFor[byte]()
)

// composite reports whether valueWriter writes x (rather than fmt): a map,
// slice, array or struct, or a pointer to one, whose type is not text of
// its own (a Stringer, an error, a TextMarshaler).
func composite(x any) bool {
	v := reflect.ValueOf(x)
	if !v.IsValid() || ownText(v.Type()) {
		return false
	}
	for range maxDetailsDepth { // a pointer type may point to itself
		if v.Kind() != reflect.Pointer || v.IsNil() {
			break
		}
		if v = v.Elem(); ownText(v.Type()) {
			return false
		}
	}
	switch v.Kind() {
	case reflect.Map, reflect.Slice, reflect.Array, reflect.Struct:
		return true
	}
	return false
}

// ownText reports whether values of t print as text of their own.
func ownText(t reflect.Type) bool {
	return t.Implements(stringerType) || t.Implements(errorType) || t.Implements(textMarshalerType)
}

// full reports whether the walk must write no further element.
func (w *valueWriter) full() bool {
	return len(w.b) >= w.limit || *w.steps > maxWalkSteps
}

// write appends one JSON value for v, at the given depth.
func (w *valueWriter) write(v reflect.Value, depth int) {
	*w.steps++
	if w.full() {
		w.str(truncatedMark)
		return
	}
	if !v.IsValid() {
		w.b = append(w.b, "null"...)
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice:
		if v.IsNil() {
			w.b = append(w.b, "null"...)
			return
		}
	}
	if v.CanInterface() {
		switch x := v.Interface().(type) {
		case slog.Value:
			w.slogValue(x, depth)
			return
		case slog.Attr:
			w.slogValue(slog.GroupValue(x), depth)
			return
		}
	}
	if v.CanInterface() && ownText(v.Type()) {
		w.str(leafText(v.Interface()))
		return
	}
	if depth >= maxDetailsDepth {
		w.str(truncatedMark)
		return
	}
	switch {
	case v.Kind() == reflect.Pointer || v.Kind() == reflect.Map || (v.Kind() == reflect.Slice && v.Len() > 0):
		step := pathStep{v.Pointer(), v.Type(), 0}
		if v.Kind() != reflect.Pointer {
			step.len = v.Len()
		}
		if slices.Contains(w.path, step) {
			w.str("[cycle]")
			return
		}
		w.path = append(w.path, step)
		defer func() { w.path = w.path[:len(w.path)-1] }()
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		// Each step counts towards the depth: a chain of pointers
		// writes nothing that the limit could stop.
		w.write(v.Elem(), depth+1)
	case reflect.Map:
		w.writeMap(v, depth)
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			w.bytes(v, depth)
			return
		}
		w.b = append(w.b, '[')
		for i := range v.Len() {
			if w.full() {
				break
			}
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.write(v.Index(i), depth+1)
		}
		w.b = append(w.b, ']')
	case reflect.Struct:
		w.writeStruct(v, depth)
	case reflect.Bool:
		w.b = strconv.AppendBool(w.b, v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		w.b = strconv.AppendInt(w.b, v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		w.b = strconv.AppendUint(w.b, v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			w.str(strconv.FormatFloat(f, 'g', -1, 64))
		} else {
			w.b = strconv.AppendFloat(w.b, f, 'g', -1, 64)
		}
	case reflect.String:
		w.str(v.String())
	default: // complex numbers, channels, funcs
		w.str(fmt.Sprint(v))
	}
}

func (w *valueWriter) writeMap(v reflect.Value, depth int) {
	type entry struct {
		name   string
		secret bool
		val    reflect.Value
	}
	var entries []entry
	size := 0
	for it := v.MapRange(); it.Next(); {
		if *w.steps > maxWalkSteps || (v.Len() > maxSortedKeys && size > w.limit) {
			break // unsorted: enough to fill the limit
		}
		name, secret := w.keyName(it.Key(), depth)
		entries = append(entries, entry{name, secret, it.Value()})
		size += len(name)
	}
	if v.Len() <= maxSortedKeys {
		slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	}
	w.b = append(w.b, '{')
	for n, e := range entries {
		if w.full() {
			break
		}
		if n > 0 {
			w.b = append(w.b, ',')
		}
		w.member(e.name, e.secret, e.val, depth)
	}
	w.b = append(w.b, '}')
}

// keyName is how a map key is named, and whether the value it keys is
// secret. Text (a string, bytes, a type with text of its own, through
// pointers and interfaces) names it as it is, and is read as a detail key
// is, whole, before it is cut; a number or a bool is named as fmt prints
// it. Any other key (a struct) is named as valueWriter writes it, which
// redacts what is secret within it: such a name says nothing of the value.
func (w *valueWriter) keyName(k reflect.Value, depth int) (name string, secret bool) {
	*w.steps++
	for range maxDetailsDepth {
		if (k.Kind() != reflect.Interface && k.Kind() != reflect.Pointer) || k.IsNil() ||
			(k.CanInterface() && ownText(k.Type())) {
			break
		}
		k = k.Elem()
	}
	text := func(s string) (string, bool) { return cutString(s, maxKeyName), w.secret(s) }
	switch k.Kind() {
	case reflect.String:
		return text(k.String())
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return fmt.Sprint(k), false
	case reflect.Array:
		if k.Type().Elem() == byteType && k.Len() <= maxKeyName {
			b := make([]byte, k.Len())
			reflect.Copy(reflect.ValueOf(b), k)
			return text(string(b))
		}
	}
	if k.IsValid() && k.CanInterface() && ownText(k.Type()) {
		return text(leafText(k.Interface()))
	}
	kw := valueWriter{redact: w.redact, limit: maxKeyName, steps: w.steps, read: w.read, path: w.path}
	kw.write(k, depth+1)
	return string(kw.b), false
}

// bytes writes a []byte or a byte array: JSON in it as JSON, cleaned as
// details are (redacted within, nesting cut where the value's own depth
// ends), any other bytes as text.
func (w *valueWriter) bytes(v reflect.Value, depth int) {
	// Bytes cost their length to look at, whatever little of them is
	// written: the walk looks at no more than maxLogLine of them.
	if *w.read += v.Len(); *w.read > maxLogLine {
		w.str(truncatedMark)
		return
	}
	b := make([]byte, v.Len())
	if v.Type().Elem() == byteType {
		reflect.Copy(reflect.ValueOf(b), v) // v.Bytes would panic on an array it cannot address
	} else {
		for i := range b { // a named byte type
			b[i] = byte(v.Index(i).Uint())
		}
	}
	switch enc, isJSON, err := cleanJSONBytes(w.redact, b, maxDetailsDepth-depth); {
	case !isJSON:
		w.str(string(b))
	case err != nil:
		w.str(redactedValue)
	case len(enc) > max(w.limit-len(w.b), 0):
		w.str(truncatedMark)
	default:
		w.b = append(w.b, enc...)
	}
}

// cleanJSONBytes is b, if it is JSON, cleaned as details are: invalid
// UTF-8 replaced, nesting past maxDepth levels cut, secrets redacted (with
// a redactor). isJSON is false for any other bytes; err is set where JSON
// could not be cleaned.
func cleanJSONBytes(redact *redactor, b []byte, maxDepth int) (enc []byte, isJSON bool, err error) {
	if !json.Valid(b) {
		return nil, false, nil
	}
	enc, err = marshalText(json.RawMessage(b))
	if err == nil && redact != nil {
		enc, err = redact.clean(enc, maxDepth)
	}
	return enc, true, err
}

func (w *valueWriter) writeStruct(v reflect.Value, depth int) {
	t := v.Type()
	w.b = append(w.b, '{')
	first := true
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Name
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == "-" {
			continue
		} else if tag != "" {
			name = tag
		}
		if w.full() {
			break
		}
		if !first {
			w.b = append(w.b, ',')
		}
		first = false
		// A field is secret by its Go name or its json name: Password
		// tagged "pw" is a password still.
		w.member(name, w.secret(name) || w.secret(f.Name), v.Field(i), depth)
	}
	w.b = append(w.b, '}')
}

// secret reports whether name is a secret key.
// slogValue writes a slog.Value held in a map, a slice or a struct (a
// slog.Attr as a group of one): a group as an object whose members are
// redacted as a map's are, anything else as its value. Its String method
// would write them as text, secrets and all.
func (w *valueWriter) slogValue(v slog.Value, depth int) {
	v = v.Resolve()
	if v.Kind() != slog.KindGroup {
		w.write(reflect.ValueOf(v.Any()), depth)
		return
	}
	w.b = append(w.b, '{')
	for n, a := range v.Group() {
		if w.full() {
			break
		}
		if n > 0 {
			w.b = append(w.b, ',')
		}
		w.member(a.Key, w.secret(a.Key), reflect.ValueOf(a.Value), depth)
	}
	w.b = append(w.b, '}')
}

func (w *valueWriter) secret(name string) bool {
	return w.redact != nil && w.redact.isSecret(name)
}

// member writes "name":value, the value redacted if secret.
func (w *valueWriter) member(name string, secret bool, v reflect.Value, depth int) {
	w.str(name)
	w.b = append(w.b, ':')
	if secret {
		w.str(redactedValue)
		return
	}
	w.write(v, depth+1)
}

// str appends s as a JSON string of no more than the room the limit
// leaves (at least enough for the truncation mark): a long string is cut,
// as text before it is encoded, then again while its escapes make it too
// long.
func (w *valueWriter) str(s string) {
	room := max(w.limit-len(w.b), len(truncatedMark)+8)
	for n := room; ; n /= 2 {
		enc, _ := marshalText(cutString(s, n)) // a string always encodes
		if len(enc) <= room || n == 0 {
			w.b = append(w.b, enc...)
			return
		}
	}
}

// leafText is a value of a type with text of its own, as slog writes it.
// fmt catches a String method's panic, but not a panic whose value panics
// in turn when fmt prints it: that one is caught here.
func leafText(x any) (s string) {
	defer func() {
		if p := recover(); p != nil {
			s = "!PANIC"
			defer func() { recover() }() // p may panic once more as it is printed
			s = fmt.Sprintf("!PANIC: %v", p)
		}
	}()
	if t, ok := x.(encoding.TextMarshaler); ok {
		b, err := t.MarshalText()
		if err != nil {
			return "!ERROR:" + err.Error()
		}
		return string(b)
	}
	return fmt.Sprint(x) // Stringer, error; fmt catches their panics
}
