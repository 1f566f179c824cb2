package confjson

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParse_Errors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "invalid", in: `{"a":`, want: "configuration: invalid JSON"},
		{name: "array root", in: `[1]`, want: "configuration: must be a JSON object"},
		{name: "string root", in: `"x"`, want: "configuration: must be a JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			require.EqualError(t, err, tc.want)
		})
	}
}

func TestParse_EmptyIsEmptyObject(t *testing.T) {
	for _, in := range []string{"", "  \n"} {
		root, err := Parse([]byte(in))
		require.NoError(t, err)
		require.NoError(t, root.Object("a"))
		require.False(t, root.Get("a").Exists())
	}
}

func TestNode_Paths(t *testing.T) {
	root, err := Parse([]byte(`{"policies":[{"rules":[{"to":[{"operation":{"paths":["/a","/b",""]}}]}]}]}`))
	require.NoError(t, err)
	policies, err := root.Get("policies").Array()
	require.NoError(t, err)
	rules, err := policies[0].Get("rules").Array()
	require.NoError(t, err)
	to, err := rules[0].Get("to").Array()
	require.NoError(t, err)
	_, err = to[0].Get("operation").Get("paths").Strings()
	require.EqualError(t, err, "policies[0].rules[0].to[0].operation.paths[2]: empty string")
}

func TestNode_Object_Errors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "unknown key", in: `{"a":1,"typo":2}`, want: "typo: unknown key"},
		{name: "duplicate key", in: `{"a":1,"a":2}`, want: "a: duplicate key"},
		{name: "dotted key is literal", in: `{"a.b":1}`, want: "a.b: unknown key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, err := Parse([]byte(tc.in))
			require.NoError(t, err)
			require.EqualError(t, root.Object("a"), tc.want)
		})
	}
}

func TestNode_Get_LiteralKeys(t *testing.T) {
	root, err := Parse([]byte(`{"a.b":"dot","a":{"b":"nested"},"*":"star"}`))
	require.NoError(t, err)
	s, err := root.Get("a.b").String()
	require.NoError(t, err)
	require.Equal(t, "dot", s)
	s, err = root.Get("*").String()
	require.NoError(t, err)
	require.Equal(t, "star", s)
}

func TestNode_Scalars(t *testing.T) {
	root, err := Parse([]byte(`{"s":"x","n":3,"f":0.5,"b":true,"d":"250ms","null":null}`))
	require.NoError(t, err)

	s, err := root.Get("s").String()
	require.NoError(t, err)
	require.Equal(t, "x", s)
	s, err = root.Get("missing").OptString("def")
	require.NoError(t, err)
	require.Equal(t, "def", s)
	s, err = root.Get("null").OptString("def")
	require.NoError(t, err)
	require.Equal(t, "def", s)

	i, err := root.Get("n").Int(0, 1, 10)
	require.NoError(t, err)
	require.Equal(t, int64(3), i)
	f, err := root.Get("f").Float(0, 0, 1)
	require.NoError(t, err)
	require.Equal(t, 0.5, f)
	b, err := root.Get("b").Bool(false)
	require.NoError(t, err)
	require.True(t, b)
	d, err := root.Get("d").Duration(0, 0, time.Minute)
	require.NoError(t, err)
	require.Equal(t, 250*time.Millisecond, d)
	v, err := root.Get("s").OneOf("", "x", "y")
	require.NoError(t, err)
	require.Equal(t, "x", v)
}

func TestNode_Scalars_Errors(t *testing.T) {
	root, err := Parse([]byte(`{"s":"x","n":3.5,"big":99,"b":"yes","d":"soon","dn":5,"arr":{}}`))
	require.NoError(t, err)
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"required", func() error { _, err := root.Get("missing").String(); return err }, "missing: required"},
		{"not string", func() error { _, err := root.Get("n").String(); return err }, "n: must be a string"},
		{"not integer", func() error { _, err := root.Get("n").Int(0, 0, 10); return err }, "n: must be an integer"},
		{"out of range", func() error { _, err := root.Get("big").Int(0, 0, 10); return err }, "big: must be between 0 and 10"},
		{"not bool", func() error { _, err := root.Get("b").Bool(false); return err }, "b: must be a boolean"},
		{"bad duration", func() error { _, err := root.Get("d").Duration(0, 0, time.Hour); return err }, `d: invalid duration "soon"`},
		{"numeric duration", func() error { _, err := root.Get("dn").Duration(0, 0, time.Hour); return err }, `dn: must be a duration string such as "1s"`},
		{"not array", func() error { _, err := root.Get("arr").Array(); return err }, "arr: must be an array"},
		{"not one of", func() error { _, err := root.Get("s").OneOf("", "a", "b"); return err }, `s: unknown value "x" (want one of [a b])`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.EqualError(t, tc.call(), tc.want)
		})
	}
}

func TestNode_Members(t *testing.T) {
	root, err := Parse([]byte(`{"tiers":{"free":1,"premium":2},"dup":{"a":1,"a":2}}`))
	require.NoError(t, err)
	ms, err := root.Get("tiers").Members()
	require.NoError(t, err)
	require.Len(t, ms, 2)
	require.Equal(t, "free", ms[0].Key)
	require.Equal(t, "tiers.premium", ms[1].Value.Path())
	_, err = root.Get("dup").Members()
	require.EqualError(t, err, "dup.a: duplicate key")
}
