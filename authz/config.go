package authz

import (
	"strings"

	"github.com/meshwasm/meshwasm/internal/confjson"
)

// Action is a policy's action, as in Istio's AuthorizationPolicy.
type Action uint8

// Policy actions.
const (
	ActionAllow Action = iota
	ActionDeny
	ActionAudit
	ActionCustom
)

var actionNames = [...]string{"ALLOW", "DENY", "AUDIT", "CUSTOM"}

func (a Action) String() string { return actionNames[a] }

// policy is one compiled AuthorizationPolicy.
type policy struct {
	index    int
	name     string
	action   Action
	dryRun   bool
	provider int // extension provider index for CUSTOM
	rules    []rule
}

// match returns the index of the first matching rule, or -1. A policy
// without rules matches nothing; an empty rule matches everything.
func (p *policy) match(rc *reqCtx) int {
	allow := p.action == ActionAllow
	for i := range p.rules {
		if p.rules[i].match(rc, allow) {
			return i
		}
	}
	return -1
}

// Config is a parsed plugin configuration. It is immutable and safe to share.
type Config struct {
	policies []*policy
	custom   []*policy
	deny     []*policy
	allow    []*policy
	audit    []*policy
	hasAllow bool // an enforced ALLOW policy exists: deny by default
	dryAllow bool // a dry-run ALLOW policy exists

	jwt         jwtConfig
	ext         []*extProvider
	slashes     SlashAction
	trustedHops int
	denyStatus  int
	denyBody    string
}

// PolicyInfo describes a policy for the filter's metric and log setup.
type PolicyInfo struct {
	Name   string
	Action Action
	DryRun bool
}

// Policies lists the policies in configuration order; [Mark.Policy]
// indexes this list.
func (c *Config) Policies() []PolicyInfo {
	out := make([]PolicyInfo, len(c.policies))
	for i, p := range c.policies {
		out[i] = PolicyInfo{Name: p.name, Action: p.action, DryRun: p.dryRun}
	}
	return out
}

// JWTProviders lists the JWT provider names; [Decision.JWTProvider] and
// [JWKSFetch.Provider] index this list.
func (c *Config) JWTProviders() []string {
	out := make([]string, len(c.jwt.providers))
	for i, p := range c.jwt.providers {
		out[i] = p.name
	}
	return out
}

// Parse reads the plugin configuration. Every error names the JSON path of
// the offending value, e.g.
// `policies[1].rules[0].to[0].operation.paths[2]: empty string`.
func Parse(data []byte) (*Config, error) {
	root, err := confjson.Parse(data)
	if err != nil {
		return nil, err
	}
	if err := root.Object("policies", "jwt", "extensionProviders", "pathHandling", "trustedHops", "denyResponse"); err != nil {
		return nil, err
	}
	c := &Config{}
	if c.jwt, err = parseJWT(root.Get("jwt")); err != nil {
		return nil, err
	}
	if c.ext, err = parseExtProviders(root.Get("extensionProviders")); err != nil {
		return nil, err
	}
	ph := root.Get("pathHandling")
	if err := ph.Object("escapedSlashes"); err != nil {
		return nil, err
	}
	mode, err := ph.Get("escapedSlashes").OneOf("reject", "reject", "keep", "decode")
	if err != nil {
		return nil, err
	}
	c.slashes = map[string]SlashAction{"reject": SlashReject, "keep": SlashKeep, "decode": SlashDecode}[mode]
	hops, err := root.Get("trustedHops").Int(0, 0, 16)
	if err != nil {
		return nil, err
	}
	c.trustedHops = int(hops)
	dr := root.Get("denyResponse")
	if err := dr.Object("status", "body"); err != nil {
		return nil, err
	}
	status, err := dr.Get("status").Int(403, 400, 599)
	if err != nil {
		return nil, err
	}
	c.denyStatus = int(status)
	if c.denyBody, err = dr.Get("body").OptString("RBAC: access denied"); err != nil {
		return nil, err
	}
	if len(c.denyBody) > 1024 {
		return nil, dr.Get("body").Errorf("longer than 1024 bytes")
	}

	elems, err := root.Get("policies").Array()
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	customProvider := ""
	for i, e := range elems {
		p, err := c.parsePolicy(e, i)
		if err != nil {
			return nil, err
		}
		if names[p.name] {
			return nil, e.Get("name").Errorf("duplicate policy name %q", p.name)
		}
		names[p.name] = true
		c.policies = append(c.policies, p)
		switch p.action {
		case ActionCustom:
			// Istio allows one extension provider per workload; two would
			// make the order of external checks ambiguous.
			if pn := c.ext[p.provider].name; customProvider != "" && pn != customProvider {
				return nil, e.Get("provider").Get("name").Errorf("all CUSTOM policies must use the same provider (%q)", customProvider)
			}
			customProvider = c.ext[p.provider].name
			c.custom = append(c.custom, p)
		case ActionDeny:
			c.deny = append(c.deny, p)
		case ActionAllow:
			c.allow = append(c.allow, p)
			c.hasAllow = c.hasAllow || !p.dryRun
			c.dryAllow = c.dryAllow || p.dryRun
		case ActionAudit:
			c.audit = append(c.audit, p)
		}
	}
	return c, nil
}

func validName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '-' || c == '_' || c == '.' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return s != ""
}

func (c *Config) parsePolicy(n confjson.Node, index int) (*policy, error) {
	if !n.Exists() {
		return nil, n.Errorf("must be an object")
	}
	if err := n.Object("name", "action", "provider", "dryRun", "rules"); err != nil {
		return nil, err
	}
	p := &policy{index: index, provider: -1}
	var err error
	if p.name, err = n.Get("name").String(); err != nil {
		return nil, err
	}
	if !validName(p.name) {
		return nil, n.Get("name").Errorf("invalid name %q (letters, digits, '.', '-', '_')", p.name)
	}
	action, err := n.Get("action").OneOf("ALLOW", "ALLOW", "DENY", "AUDIT", "CUSTOM")
	if err != nil {
		return nil, err
	}
	p.action = map[string]Action{"ALLOW": ActionAllow, "DENY": ActionDeny, "AUDIT": ActionAudit, "CUSTOM": ActionCustom}[action]
	if p.dryRun, err = n.Get("dryRun").Bool(false); err != nil {
		return nil, err
	}
	prov := n.Get("provider")
	switch {
	case p.action == ActionCustom && !prov.Exists():
		return nil, prov.Errorf("required for action CUSTOM")
	case p.action != ActionCustom && prov.Exists():
		return nil, prov.Errorf("only valid for action CUSTOM")
	case p.action == ActionCustom:
		if p.dryRun {
			return nil, n.Get("dryRun").Errorf("not supported for action CUSTOM")
		}
		if err := prov.Object("name"); err != nil {
			return nil, err
		}
		name, err := prov.Get("name").String()
		if err != nil {
			return nil, err
		}
		for _, ep := range c.ext {
			if ep.name == name {
				p.provider = ep.index
			}
		}
		if p.provider < 0 {
			return nil, prov.Get("name").Errorf("unknown extension provider %q", name)
		}
	}
	rules, err := n.Get("rules").Array()
	if err != nil {
		return nil, err
	}
	for _, rn := range rules {
		r, err := c.parseRule(rn)
		if err != nil {
			return nil, err
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

func (c *Config) parseRule(n confjson.Node) (rule, error) {
	var r rule
	if !n.Exists() {
		return r, n.Errorf("must be an object")
	}
	if err := n.Object("from", "to", "when"); err != nil {
		return r, err
	}
	from, err := n.Get("from").Array()
	if err != nil {
		return r, err
	}
	for _, f := range from {
		if err := f.Object("source"); err != nil {
			return r, err
		}
		conds, err := compileFields(f.Get("source"), sourceFields)
		if err != nil {
			return r, err
		}
		r.from = append(r.from, conds)
	}
	to, err := n.Get("to").Array()
	if err != nil {
		return r, err
	}
	for _, t := range to {
		if err := t.Object("operation"); err != nil {
			return r, err
		}
		conds, err := compileFields(t.Get("operation"), operationFields)
		if err != nil {
			return r, err
		}
		r.to = append(r.to, conds)
	}
	when, err := n.Get("when").Array()
	if err != nil {
		return r, err
	}
	for _, w := range when {
		cd, err := compileWhen(w)
		if err != nil {
			return r, err
		}
		if cd.attr == attrClaim {
			cd.cid = c.jwt.claimID(cd.claim)
		}
		r.when = append(r.when, cd)
	}
	return r, nil
}

func (jc *jwtConfig) claimID(path []string) int {
	for i, p := range jc.claimPaths {
		if strings.Join(p, "\x00") == strings.Join(path, "\x00") {
			return i
		}
	}
	jc.claimPaths = append(jc.claimPaths, path)
	return len(jc.claimPaths) - 1
}
