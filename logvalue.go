package audit

import (
	"encoding"
	"encoding/json"
	"fmt"
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
// Error, MarshalText), and stops at cycles, at maxDetailsDepth levels and
// once it has written limit bytes, so that no value can hang or crash the
// host's logging call, or fill its memory.
type valueWriter struct {
	redact *redactor // nil: nothing redacted
	b      []byte
	limit  int
	path   []pathStep // maps, slices and pointers being written, for cycles
}

// pathStep names a map, slice or pointer being written. The address alone
// would not do: a slice shares it with a shorter one of the same array, a
// struct with a pointer to its first field.
type pathStep struct {
	ptr uintptr
	typ reflect.Type
	len int
}

// maxSortedKeys bounds the map keys valueWriter sorts. A larger map is
// written in Go's order: it is cut at the limit anyway, and sorting a
// million keys for 8 KiB of them would stall the logging call.
const maxSortedKeys = 4096

var (
	stringerType      = reflect.TypeFor[fmt.Stringer]()
	errorType         = reflect.TypeFor[error]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// composite reports whether valueWriter writes x (rather than fmt): a map,
// slice, array or struct, or a pointer to one, whose type is not text of
// its own (a Stringer, an error, a TextMarshaler).
func composite(x any) bool {
	v := reflect.ValueOf(x)
	if !v.IsValid() || ownText(v.Type()) {
		return false
	}
	for v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
		if ownText(v.Type()) {
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

// write appends v at the given depth.
func (w *valueWriter) write(v reflect.Value, depth int) {
	if len(w.b) > w.limit {
		return
	}
	if !v.IsValid() {
		w.b = append(w.b, "null"...)
		return
	}
	if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface || v.Kind() == reflect.Map ||
		v.Kind() == reflect.Slice) && v.IsNil() {
		w.b = append(w.b, "null"...)
		return
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
			w.bytes(v)
			return
		}
		w.b = append(w.b, '[')
		for i := range v.Len() {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.write(v.Index(i), depth+1)
			if len(w.b) > w.limit {
				break
			}
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
		name string
		val  reflect.Value
	}
	var entries []entry
	size := 0
	for it := v.MapRange(); it.Next(); {
		e := entry{w.keyName(it.Key(), depth), it.Value()}
		entries = append(entries, e)
		if size += len(e.name); v.Len() > maxSortedKeys && size > w.limit {
			break // unsorted: enough to fill the limit
		}
	}
	if v.Len() <= maxSortedKeys {
		slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	}
	w.b = append(w.b, '{')
	for n, e := range entries {
		if n > 0 {
			w.b = append(w.b, ',')
		}
		w.member(e.name, e.name, e.val, depth)
		if len(w.b) > w.limit {
			break
		}
	}
	w.b = append(w.b, '}')
}

// keyName is how a map key is named: a string as it is, a number, a bool
// or a type with text of its own as fmt prints it, and any other key (a
// struct, a pointer) as valueWriter writes it, so that a secret in a key
// is redacted too.
func (w *valueWriter) keyName(k reflect.Value, depth int) string {
	switch k.Kind() {
	case reflect.String:
		return cutString(k.String(), maxLogValue)
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return fmt.Sprint(k)
	}
	if k.CanInterface() && ownText(k.Type()) {
		return cutString(leafText(k.Interface()), maxLogValue)
	}
	kw := valueWriter{redact: w.redact, limit: maxLogValue, path: w.path}
	kw.write(k, depth+1)
	return string(kw.b)
}

// bytes writes a []byte or a byte array: JSON in it as JSON, cleaned as
// details are (redacted within), any other bytes as text.
func (w *valueWriter) bytes(v reflect.Value) {
	b := make([]byte, min(v.Len(), maxLogLine+1))
	reflect.Copy(reflect.ValueOf(b), v) // v.Bytes would panic on an array it cannot address
	if len(b) <= maxLogLine && json.Valid(b) {
		enc, err := marshalText(json.RawMessage(b))
		if err == nil && w.redact != nil {
			enc, err = w.redact.clean(enc)
		}
		if err == nil {
			w.b = append(w.b, enc...)
			return
		}
	}
	w.str(string(b))
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
		if !first {
			w.b = append(w.b, ',')
		}
		first = false
		// A field is secret by its Go name or its json name: Password
		// tagged "pw" is a password still.
		w.member(name, f.Name, v.Field(i), depth)
		if len(w.b) > w.limit {
			break
		}
	}
	w.b = append(w.b, '}')
}

// member writes "name":value, the value redacted where name or alias is
// a secret key.
func (w *valueWriter) member(name, alias string, v reflect.Value, depth int) {
	w.str(name)
	w.b = append(w.b, ':')
	if w.redact != nil && (w.redact.isSecret(name) || w.redact.isSecret(alias)) {
		w.str(redactedValue)
		return
	}
	w.write(v, depth+1)
}

// str appends s as a JSON string, cut to what the limit leaves room for:
// a long string is not copied whole for a few kilobytes of it.
func (w *valueWriter) str(s string) {
	s = cutString(s, max(w.limit-len(w.b), len(truncatedMark))+1)
	enc, _ := marshalText(s) // a string always encodes
	w.b = append(w.b, enc...)
}

// leafText is a value of a type with text of its own, as slog writes it.
func leafText(x any) (s string) {
	if t, ok := x.(encoding.TextMarshaler); ok {
		defer func() {
			if p := recover(); p != nil {
				s = fmt.Sprintf("!PANIC: %v", p)
			}
		}()
		b, err := t.MarshalText()
		if err != nil {
			return "!ERROR:" + err.Error()
		}
		return string(b)
	}
	return fmt.Sprint(x) // Stringer, error; fmt catches their panics
}
