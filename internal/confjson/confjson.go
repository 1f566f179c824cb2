// Package confjson reads a filter's JSON configuration strictly: every value is
// checked for its type, unknown and duplicate keys are refused, and every error
// names the JSON path of the offending value, for example
// `policies[1].rules[0].to[0].operation.paths[2]: empty string`.
//
// It exists because a typo in a security filter's configuration must never
// silently disable a rule. It is used once, at plugin start; nothing here is on
// the per-request path.
package confjson

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/tidwall/gjson"
)

// Node is one value of a configuration document together with its JSON path.
// The zero Node is a missing value at the root.
type Node struct {
	v    gjson.Result
	path string
}

// Parse validates data as JSON and returns its root, which must be an object.
// Empty input is an empty object: a plugin with no configuration gets defaults.
func Parse(data []byte) (Node, error) {
	if len(trimSpace(data)) == 0 {
		return Node{v: gjson.Parse("{}")}, nil
	}
	if !gjson.ValidBytes(data) {
		return Node{}, errors.New("configuration: invalid JSON")
	}
	root := Node{v: gjson.ParseBytes(data)}
	if !root.v.IsObject() {
		return Node{}, errors.New("configuration: must be a JSON object")
	}
	return root, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}

// Path is the JSON path of n, e.g. `rules[0].match`; the root is "".
func (n Node) Path() string { return n.path }

// Exists reports whether the value is present (a JSON null counts as absent).
func (n Node) Exists() bool { return n.v.Exists() && n.v.Type != gjson.Null }

// Raw is the value's JSON text.
func (n Node) Raw() string { return n.v.Raw }

// Errorf returns an error prefixed with n's path.
func (n Node) Errorf(format string, args ...any) error {
	p := n.path
	if p == "" {
		p = "configuration"
	}
	return fmt.Errorf("%s: %s", p, fmt.Sprintf(format, args...))
}

func (n Node) child(key string, v gjson.Result) Node {
	p := key
	if n.path != "" {
		p = n.path + "." + key
	}
	return Node{v: v, path: p}
}

// Get returns the member key of an object (missing if absent). Keys are
// matched literally: gjson's path syntax is never applied to them.
func (n Node) Get(key string) Node {
	var found gjson.Result
	if n.v.IsObject() {
		n.v.ForEach(func(k, v gjson.Result) bool {
			if k.String() == key {
				found = v
				return false
			}
			return true
		})
	}
	return n.child(key, found)
}

// Object checks that n is an object holding only the given keys, each at most
// once. A missing n is accepted: callers decide whether it is required.
func (n Node) Object(known ...string) error {
	if !n.Exists() {
		return nil
	}
	if !n.v.IsObject() {
		return n.Errorf("must be an object")
	}
	var err error
	seen := make(map[string]bool, len(known))
	n.v.ForEach(func(k, _ gjson.Result) bool {
		key := k.String()
		if seen[key] {
			err = n.child(key, gjson.Result{}).Errorf("duplicate key")
			return false
		}
		seen[key] = true
		for _, want := range known {
			if key == want {
				return true
			}
		}
		err = n.child(key, gjson.Result{}).Errorf("unknown key")
		return false
	})
	return err
}

// Members returns the members of an object in document order, refusing
// duplicate keys. Used for user-named maps such as tiers or weights.
func (n Node) Members() ([]Member, error) {
	if !n.Exists() {
		return nil, nil
	}
	if !n.v.IsObject() {
		return nil, n.Errorf("must be an object")
	}
	var (
		out []Member
		err error
	)
	seen := map[string]bool{}
	n.v.ForEach(func(k, v gjson.Result) bool {
		key := k.String()
		if seen[key] {
			err = n.child(key, v).Errorf("duplicate key")
			return false
		}
		seen[key] = true
		out = append(out, Member{Key: key, Value: n.child(key, v)})
		return true
	})
	return out, err
}

// Member is one key and value of an object.
type Member struct {
	Key   string
	Value Node
}

// Array returns the elements of an array; a missing value is an empty array.
func (n Node) Array() ([]Node, error) {
	if !n.Exists() {
		return nil, nil
	}
	if !n.v.IsArray() {
		return nil, n.Errorf("must be an array")
	}
	elems := n.v.Array()
	out := make([]Node, len(elems))
	for i, e := range elems {
		out[i] = Node{v: e, path: n.path + "[" + strconv.Itoa(i) + "]"}
	}
	return out, nil
}

// String returns a required, non-empty string.
func (n Node) String() (string, error) {
	if !n.Exists() {
		return "", n.Errorf("required")
	}
	return n.OptString("")
}

// OptString returns a string, or def when the value is missing. A present
// value must be a non-empty string.
func (n Node) OptString(def string) (string, error) {
	if !n.Exists() {
		return def, nil
	}
	if n.v.Type != gjson.String {
		return "", n.Errorf("must be a string")
	}
	if n.v.Str == "" {
		return "", n.Errorf("empty string")
	}
	return n.v.Str, nil
}

// Strings returns an array of non-empty strings; a missing value is nil.
func (n Node) Strings() ([]string, error) {
	elems, err := n.Array()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(elems))
	for _, e := range elems {
		s, err := e.String()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Bool returns a boolean, or def when missing.
func (n Node) Bool(def bool) (bool, error) {
	if !n.Exists() {
		return def, nil
	}
	switch n.v.Type {
	case gjson.True:
		return true, nil
	case gjson.False:
		return false, nil
	}
	return false, n.Errorf("must be a boolean")
}

// Int returns an integer within [min, max], or def when missing.
func (n Node) Int(def, min, max int64) (int64, error) {
	if !n.Exists() {
		return def, nil
	}
	if n.v.Type != gjson.Number {
		return 0, n.Errorf("must be a number")
	}
	f := n.v.Num
	if f != math.Trunc(f) {
		return 0, n.Errorf("must be an integer")
	}
	if f < float64(min) || f > float64(max) {
		return 0, n.Errorf("must be between %d and %d", min, max)
	}
	return int64(f), nil
}

// Float returns a number within [min, max], or def when missing.
func (n Node) Float(def, min, max float64) (float64, error) {
	if !n.Exists() {
		return def, nil
	}
	if n.v.Type != gjson.Number {
		return 0, n.Errorf("must be a number")
	}
	if n.v.Num < min || n.v.Num > max {
		return 0, n.Errorf("must be between %g and %g", min, max)
	}
	return n.v.Num, nil
}

// Duration returns a Go duration string such as "1.5s" or "250ms" within
// [min, max], or def when missing.
func (n Node) Duration(def, min, max time.Duration) (time.Duration, error) {
	if !n.Exists() {
		return def, nil
	}
	if n.v.Type != gjson.String {
		return 0, n.Errorf(`must be a duration string such as "1s"`)
	}
	d, err := time.ParseDuration(n.v.Str)
	if err != nil {
		return 0, n.Errorf("invalid duration %q", n.v.Str)
	}
	if d < min || d > max {
		return 0, n.Errorf("must be between %s and %s", min, max)
	}
	return d, nil
}

// OneOf returns a string that must be one of allowed, or def when missing.
func (n Node) OneOf(def string, allowed ...string) (string, error) {
	s, err := n.OptString(def)
	if err != nil {
		return "", err
	}
	if !n.Exists() {
		return s, nil
	}
	for _, a := range allowed {
		if s == a {
			return s, nil
		}
	}
	return "", n.Errorf("unknown value %q (want one of %v)", s, allowed)
}
