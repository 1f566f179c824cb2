package authz

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParse_Errors(t *testing.T) {
	pol := func(p string) string { return `{"policies":[{"name":"ok","rules":[{}]},` + p + `]}` }
	rule := func(r string) string { return pol(`{"name":"p","rules":[{},` + r + `]}`) }
	tests := []struct {
		name, in, want string
	}{
		{name: "invalid json", in: `{`, want: "configuration: invalid JSON"},
		{name: "unknown top-level key", in: `{"polices":[]}`, want: "polices: unknown key"},
		{name: "policies not array", in: `{"policies":{}}`, want: "policies: must be an array"},
		{name: "policy not object", in: pol(`3`), want: "policies[1]: must be an object"},
		{name: "policy unknown key", in: pol(`{"name":"p","rule":[]}`), want: "policies[1].rule: unknown key"},
		{name: "policy name missing", in: pol(`{"action":"DENY"}`), want: "policies[1].name: required"},
		{name: "policy name invalid", in: pol(`{"name":"a b"}`), want: `policies[1].name: invalid name "a b" (letters, digits, '.', '-', '_')`},
		{name: "duplicate policy name", in: pol(`{"name":"ok"}`), want: `policies[1].name: duplicate policy name "ok"`},
		{name: "unknown action", in: pol(`{"name":"p","action":"PERMIT"}`), want: `policies[1].action: unknown value "PERMIT" (want one of [ALLOW DENY AUDIT CUSTOM])`},
		{name: "lowercase action", in: pol(`{"name":"p","action":"deny"}`), want: `policies[1].action: unknown value "deny" (want one of [ALLOW DENY AUDIT CUSTOM])`},
		{name: "dryRun wrong type", in: pol(`{"name":"p","dryRun":"yes"}`), want: "policies[1].dryRun: must be a boolean"},
		{name: "provider on allow", in: pol(`{"name":"p","provider":{"name":"x"}}`), want: "policies[1].provider: only valid for action CUSTOM"},
		{name: "custom without provider", in: pol(`{"name":"p","action":"CUSTOM"}`), want: "policies[1].provider: required for action CUSTOM"},
		{name: "custom unknown provider", in: pol(`{"name":"p","action":"CUSTOM","provider":{"name":"x"}}`), want: `policies[1].provider.name: unknown extension provider "x"`},
		{name: "rules not array", in: pol(`{"name":"p","rules":{}}`), want: "policies[1].rules: must be an array"},
		{name: "rule unknown key", in: rule(`{"form":[]}`), want: "policies[1].rules[1].form: unknown key"},
		{name: "from entry unknown key", in: rule(`{"from":[{"sources":{}}]}`), want: "policies[1].rules[1].from[0].sources: unknown key"},
		{name: "from without source", in: rule(`{"from":[{}]}`), want: "policies[1].rules[1].from[0].source: required"},
		{name: "empty source", in: rule(`{"from":[{"source":{}}]}`), want: "policies[1].rules[1].from[0].source: must set at least one field"},
		{name: "source unknown field", in: rule(`{"from":[{"source":{"principal":["a"]}}]}`), want: "policies[1].rules[1].from[0].source.principal: unknown key"},
		{name: "empty principal", in: rule(`{"from":[{"source":{"principals":["a",""]}}]}`), want: "policies[1].rules[1].from[0].source.principals[1]: empty string"},
		{name: "principal wrong type", in: rule(`{"from":[{"source":{"principals":[1]}}]}`), want: "policies[1].rules[1].from[0].source.principals[0]: must be a string"},
		{name: "bad cidr", in: rule(`{"from":[{"source":{"ipBlocks":["10.0.0.0/33"]}}]}`), want: `policies[1].rules[1].from[0].source.ipBlocks[0]: invalid CIDR "10.0.0.0/33"`},
		{name: "bad ip", in: rule(`{"from":[{"source":{"notRemoteIpBlocks":["10.0.0.256"]}}]}`), want: `policies[1].rules[1].from[0].source.notRemoteIpBlocks[0]: invalid CIDR "10.0.0.256"`},
		{name: "empty path", in: rule(`{"to":[{"operation":{"paths":["/a","/b",""]}}]}`), want: "policies[1].rules[1].to[0].operation.paths[2]: empty string"},
		{name: "relative path", in: rule(`{"to":[{"operation":{"paths":["api"]}}]}`), want: "policies[1].rules[1].to[0].operation.paths[0]: path must start with '/' or '*'"},
		{name: "path template", in: rule(`{"to":[{"operation":{"notPaths":["/a/{*}"]}}]}`), want: "policies[1].rules[1].to[0].operation.notPaths[0]: path templates are not supported"},
		{name: "bad port", in: rule(`{"to":[{"operation":{"ports":["http"]}}]}`), want: `policies[1].rules[1].to[0].operation.ports[0]: invalid port "http"`},
		{name: "port zero", in: rule(`{"to":[{"operation":{"notPorts":["0"]}}]}`), want: `policies[1].rules[1].to[0].operation.notPorts[0]: invalid port "0"`},
		{name: "port as number", in: rule(`{"to":[{"operation":{"ports":[80]}}]}`), want: "policies[1].rules[1].to[0].operation.ports[0]: must be a string"},
		{name: "empty operation", in: rule(`{"to":[{"operation":{}}]}`), want: "policies[1].rules[1].to[0].operation: must set at least one field"},
		{name: "when unknown key", in: rule(`{"when":[{"key":"request.header[x]","values":["a"]}]}`), want: `policies[1].rules[1].when[0].key: unknown key "request.header[x]"`},
		{name: "when bad header key", in: rule(`{"when":[{"key":"request.headers[]","values":["a"]}]}`), want: `policies[1].rules[1].when[0].key: invalid header key "request.headers[]" (want request.headers[<name>])`},
		{name: "when bad claim key", in: rule(`{"when":[{"key":"request.auth.claims[a]b","values":["a"]}]}`), want: `policies[1].rules[1].when[0].key: invalid claim key "request.auth.claims[a]b" (want request.auth.claims[<name>] or [<a>][<b>])`},
		{name: "when without values", in: rule(`{"when":[{"key":"source.ip"}]}`), want: "policies[1].rules[1].when[0]: must set values or notValues"},
		{name: "when bad ip value", in: rule(`{"when":[{"key":"source.ip","values":["nope"]}]}`), want: `policies[1].rules[1].when[0].values[0]: invalid CIDR "nope"`},
		{name: "when bad port value", in: rule(`{"when":[{"key":"destination.port","notValues":["99999"]}]}`), want: `policies[1].rules[1].when[0].notValues[0]: invalid port "99999"`},
		{name: "when key missing", in: rule(`{"when":[{"values":["a"]}]}`), want: "policies[1].rules[1].when[0].key: required"},
		{name: "when unknown field", in: rule(`{"when":[{"key":"source.ip","value":["a"]}]}`), want: "policies[1].rules[1].when[0].value: unknown key"},
		{name: "escapedSlashes unknown", in: `{"pathHandling":{"escapedSlashes":"allow"}}`, want: `pathHandling.escapedSlashes: unknown value "allow" (want one of [reject keep decode])`},
		{name: "trustedHops negative", in: `{"trustedHops":-1}`, want: "trustedHops: must be between 0 and 16"},
		{name: "deny status", in: `{"denyResponse":{"status":200}}`, want: "denyResponse.status: must be between 400 and 599"},
		{name: "deny body empty", in: `{"denyResponse":{"body":""}}`, want: "denyResponse.body: empty string"},
		{name: "jwt unknown key", in: `{"jwt":{"provider":[]}}`, want: "jwt.provider: unknown key"},
		{name: "jwt provider without issuer", in: `{"jwt":{"providers":[{"jwks":"{}"}]}}`, want: "jwt.providers[0].issuer: required"},
		{name: "jwt provider without keys", in: `{"jwt":{"providers":[{"issuer":"i"}]}}`, want: "jwt.providers[0]: one of jwks or jwksUri is required"},
		{name: "jwt both key sources", in: `{"jwt":{"providers":[{"issuer":"i","jwks":"{}","jwksUri":"https://x/k"}]}}`, want: "jwt.providers[0]: set either jwks or jwksUri, not both"},
		{name: "jwt bad jwks", in: `{"jwt":{"providers":[{"issuer":"i","jwks":"{\"keys\":[]}"}]}}`, want: "jwt.providers[0].jwks: invalid JWKS: no keys"},
		{name: "jwt symmetric jwks", in: `{"jwt":{"providers":[{"issuer":"i","jwks":"{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}"}]}}`, want: "jwt.providers[0].jwks: invalid JWKS: keys[0]: not a public key"},
		{name: "jwt bad uri", in: `{"jwt":{"providers":[{"issuer":"i","jwksUri":"ftp://x/k","cluster":"c"}]}}`, want: `jwt.providers[0].jwksUri: invalid URL "ftp://x/k" (want http(s)://host/path)`},
		{name: "jwt uri without cluster", in: `{"jwt":{"providers":[{"issuer":"i","jwksUri":"https://x/k"}]}}`, want: "jwt.providers[0].cluster: required"},
		{name: "jwt cluster with inline", in: `{"jwt":{"providers":[{"issuer":"i","jwks":` + jsonString(testJWKS(t)) + `,"cluster":"c"}]}}`, want: "jwt.providers[0].cluster: only valid with jwksUri"},
		{name: "jwt bad header name", in: `{"jwt":{"providers":[{"issuer":"i","jwksUri":"https://x/k","cluster":"c","fromHeaders":[{"name":"x y"}]}]}}`, want: `jwt.providers[0].fromHeaders[0].name: invalid header name "x y"`},
		{name: "jwt output header missing claim", in: `{"jwt":{"providers":[{"issuer":"i","jwksUri":"https://x/k","cluster":"c","outputClaimToHeaders":[{"header":"x-sub"}]}]}}`, want: "jwt.providers[0].outputClaimToHeaders[0].claim: required"},
		{name: "jwt duplicate provider", in: `{"jwt":{"providers":[{"issuer":"i","jwksUri":"https://x/k","cluster":"c"},{"issuer":"i","jwksUri":"https://x/k","cluster":"c"}]}}`, want: `jwt.providers[1].name: duplicate provider name "i"`},
		{name: "jwt clock skew", in: `{"jwt":{"clockSkew":"2h"}}`, want: "jwt.clockSkew: must be between 0s and 1h0m0s"},
		{name: "ext provider without cluster", in: `{"extensionProviders":[{"name":"x","envoyExtAuthzHttp":{}}]}`, want: "extensionProviders[0].envoyExtAuthzHttp.cluster: required"},
		{name: "ext provider unknown field", in: `{"extensionProviders":[{"name":"x","envoyExtAuthzHttp":{"cluster":"c","service":"s"}}]}`, want: "extensionProviders[0].envoyExtAuthzHttp.service: unknown key"},
		{name: "ext provider bad prefix", in: `{"extensionProviders":[{"name":"x","envoyExtAuthzHttp":{"cluster":"c","pathPrefix":"check"}}]}`, want: "extensionProviders[0].envoyExtAuthzHttp.pathPrefix: must start with '/'"},
		{name: "ext cache without keys", in: `{"extensionProviders":[{"name":"x","envoyExtAuthzHttp":{"cluster":"c","cache":{"ttl":"5s"}}}]}`, want: "extensionProviders[0].envoyExtAuthzHttp.cache.keyHeaders: required"},
		{name: "ext cache bad pseudo header", in: `{"extensionProviders":[{"name":"x","envoyExtAuthzHttp":{"cluster":"c","cache":{"ttl":"5s","keyHeaders":[":scheme"]}}}]}`, want: `extensionProviders[0].envoyExtAuthzHttp.cache.keyHeaders[0]: invalid header name ":scheme"`},
		{name: "custom dry run", in: `{"extensionProviders":[{"name":"x","envoyExtAuthzHttp":{"cluster":"c"}}],"policies":[{"name":"p","action":"CUSTOM","dryRun":true,"provider":{"name":"x"}}]}`, want: "policies[0].dryRun: not supported for action CUSTOM"},
		{name: "two custom providers", in: `{"extensionProviders":[{"name":"x","envoyExtAuthzHttp":{"cluster":"c"}},{"name":"y","envoyExtAuthzHttp":{"cluster":"c"}}],"policies":[{"name":"p","action":"CUSTOM","provider":{"name":"x"}},{"name":"q","action":"CUSTOM","provider":{"name":"y"}}]}`, want: `policies[1].provider.name: all CUSTOM policies must use the same provider ("x")`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			require.EqualError(t, err, tc.want)
		})
	}
}

func TestParse_Defaults(t *testing.T) {
	c := mustParse(t, ``)
	require.Equal(t, 403, c.denyStatus)
	require.Equal(t, "RBAC: access denied", c.denyBody)
	require.Equal(t, SlashReject, c.slashes)
	require.Zero(t, c.trustedHops)
	require.Empty(t, c.Policies())
	require.Empty(t, c.JWTProviders())

	c = mustParse(t, seedConfig)
	require.Equal(t, []PolicyInfo{{Name: "payment-service-policy", Action: ActionAllow}, {Name: "deny-all-default", Action: ActionDeny}}, c.Policies())
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(seedConfig))
	f.Add([]byte(`{"policies":[{"name":"p","rules":[{"when":[{"key":"request.auth.claims[a][b]","values":["x*"]}]}]}]}`))
	f.Add([]byte(`{"trustedHops":1,"pathHandling":{"escapedSlashes":"decode"},"denyResponse":{"status":401,"body":"no"}}`))
	f.Add([]byte(`{"extensionProviders":[{"name":"x","envoyExtAuthzHttp":{"cluster":"c","cache":{"ttl":"5s","keyHeaders":[":path"]}}}],"policies":[{"name":"p","action":"CUSTOM","provider":{"name":"x"},"rules":[{}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			require.Nil(t, c)
			return
		}
		// A parsed configuration must decide any request definitely.
		d := check(New(c, Options{}), mtlsReq())
		require.Contains(t, []Verdict{Allow, Deny, CallCustom}, d.Verdict)
	})
}
