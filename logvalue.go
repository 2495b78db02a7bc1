package audit

import (
	"encoding"
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
	path   []uintptr // maps, slices and pointers being written, for cycles
}

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
		p := v.Pointer()
		if slices.Contains(w.path, p) {
			w.str("[cycle]")
			return
		}
		w.path = append(w.path, p)
		defer func() { w.path = w.path[:len(w.path)-1] }()
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		w.write(v.Elem(), depth)
	case reflect.Map:
		w.writeMap(v, depth)
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			w.str(string(v.Bytes()))
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
	keys := v.MapKeys()
	names := make([]string, len(keys))
	order := make([]int, len(keys))
	for i, k := range keys {
		names[i], order[i] = fmt.Sprint(k), i
	}
	slices.SortFunc(order, func(a, b int) int {
		switch {
		case names[a] < names[b]:
			return -1
		case names[a] > names[b]:
			return 1
		}
		return 0
	})
	w.b = append(w.b, '{')
	for n, i := range order {
		if n > 0 {
			w.b = append(w.b, ',')
		}
		w.member(names[i], names[i], v.MapIndex(keys[i]), depth)
		if len(w.b) > w.limit {
			break
		}
	}
	w.b = append(w.b, '}')
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

// str appends s as a JSON string.
func (w *valueWriter) str(s string) {
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
