package confjson

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// FuzzParse checks the strict reader every filter's configuration goes
// through: any input is accepted as an object or refused with an error, and
// every typed read of every value either succeeds or fails with an error that
// names the value's JSON path. Nothing panics.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `{"a":1}`, `{"a":{"b":[1,"x",true,null,{"c":"1s"}]}}`, `{"a":1,"a":2}`,
		`{"a.b":{"c*":"?"}}`, `[1]`, `{"a":"\u0000"}`, `{"a":1e400}`, `{"a":-9223372036854775809}`,
		`{"policies":[{"rules":[{"to":[{"operation":{"paths":["/a","/b",""]}}]}]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		root, err := Parse(data)
		if err != nil {
			require.True(t, strings.HasPrefix(err.Error(), "configuration: "), err.Error())
			return
		}
		walk(t, root, 0)
	})
}

func walk(t *testing.T, n Node, depth int) {
	if depth > 32 {
		return
	}
	// An error names the value's path, or a member's below it (an unknown or
	// duplicate key); at the root, "configuration" or the member's key.
	prefix := n.Path()
	checkErr := func(err error) {
		if err == nil {
			return
		}
		msg := err.Error()
		path, _, ok := strings.Cut(msg, ": ")
		require.True(t, ok && path != "", "error %q names no path", msg)
		if prefix != "" {
			require.True(t, path == prefix || strings.HasPrefix(path, prefix+".") || strings.HasPrefix(path, prefix+"["),
				"error %q does not name %q", msg, prefix)
		}
	}
	_, err := n.String()
	checkErr(err)
	_, err = n.OptString("d")
	checkErr(err)
	_, err = n.Strings()
	checkErr(err)
	_, err = n.Bool(false)
	checkErr(err)
	_, err = n.Int(0, -10, 10)
	checkErr(err)
	_, err = n.Float(0, -1, 1)
	checkErr(err)
	_, err = n.Duration(0, 0, time.Hour)
	checkErr(err)
	_, err = n.OneOf("a", "a", "b")
	checkErr(err)
	checkErr(n.Object("a", "b"))
	members, err := n.Members()
	checkErr(err)
	seen := map[string]bool{}
	for _, m := range members {
		require.False(t, seen[m.Key], "duplicate member %q survived", m.Key)
		seen[m.Key] = true
		walk(t, m.Value, depth+1)
	}
	elems, err := n.Array()
	checkErr(err)
	for i, e := range elems {
		require.Equal(t, n.Path()+"["+strconv.Itoa(i)+"]", e.Path())
		walk(t, e, depth+1)
	}
}
