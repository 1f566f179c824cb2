package tracing

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAppendBaggage(t *testing.T) {
	tests := []struct {
		name     string
		existing string
		entries  []BaggageEntry
		want     string
		skipped  int
	}{
		{name: "new", entries: []BaggageEntry{{"user.id", "42"}}, want: "user.id=42"},
		{name: "appended", existing: "tenant=acme", entries: []BaggageEntry{{"user.id", "42"}}, want: "tenant=acme,user.id=42"},
		{name: "replaced", existing: "user.id=1;prop, tenant = acme", entries: []BaggageEntry{{"user.id", "42"}}, want: "tenant = acme,user.id=42"},
		{name: "properties kept", existing: "a=1;p1;p2=x", entries: []BaggageEntry{{"b", "2"}}, want: "a=1;p1;p2=x,b=2"},
		{name: "invalid members dropped", existing: "bad member,a=1,=x,c=\"q\"", entries: []BaggageEntry{{"b", "2"}}, want: "a=1,b=2"},
		{name: "value percent-encoded", entries: []BaggageEntry{{"k", "a b,c;d\\e\"f%g=h/é"}}, want: "k=a%20b%2Cc%3Bd%5Ce%22f%25g=h/%C3%A9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, skipped := AppendBaggage(nil, tc.existing, tc.entries)
			require.Equal(t, tc.want, string(out))
			require.Equal(t, tc.skipped, skipped)
		})
	}
}

func TestAppendBaggage_Limits(t *testing.T) {
	var members []string
	for i := 0; i < BaggageMaxMembers; i++ {
		members = append(members, fmt.Sprintf("k%d=v", i))
	}
	out, skipped := AppendBaggage(nil, strings.Join(members, ","), []BaggageEntry{{"user.id", "42"}})
	require.Equal(t, strings.Join(members, ","), string(out))
	require.Equal(t, 1, skipped)

	big := "big=" + strings.Repeat("x", BaggageMaxBytes-20)
	out, skipped = AppendBaggage(nil, big, []BaggageEntry{{"a", "1"}, {"user.id", strings.Repeat("y", 100)}})
	require.Equal(t, big+",a=1", string(out))
	require.Equal(t, 1, skipped)
	require.LessOrEqual(t, len(out), BaggageMaxBytes)
}

func TestBaggageValue(t *testing.T) {
	tests := []struct {
		name   string
		header string
		key    string
		want   string
		ok     bool
	}{
		{name: "found", header: "a=1,user.id=42", key: "user.id", want: "42", ok: true},
		{name: "ows and properties", header: "a=1, user.id = 42 ;p=1", key: "user.id", want: "42", ok: true},
		{name: "decoded", header: "k=a%20b%2C%C3%A9", key: "k", want: "a b,é", ok: true},
		{name: "bad escape kept", header: "k=100%", key: "k", want: "100%", ok: true},
		{name: "missing", header: "a=1", key: "user.id"},
		{name: "invalid member ignored", header: "user.id=a b", key: "user.id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, ok := BaggageValue(tc.header, tc.key)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, v)
		})
	}
}

func TestBaggage_RoundTrip(t *testing.T) {
	for _, v := range []string{"plain", "a b", "100%", "ü,;=\"\\", "\x00\x7f"} {
		out, skipped := AppendBaggage(nil, "", []BaggageEntry{{"k", v}})
		require.Zero(t, skipped)
		got, ok := BaggageValue(string(out), "k")
		require.True(t, ok)
		require.Equal(t, v, got)
	}
}
