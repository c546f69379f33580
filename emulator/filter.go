//go:build unix

package emulator

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// The Compute API's list filter, read from Google's description of the
// filter parameter (compute/v1 discovery document, instances.list) and
// AIP-160, not from gkessh's code:
//
//   - AIP-160: FIELD OP VALUE with OP one of = != < <= > >= : (":" matches a
//     substring of a string, "labels.owner:*" tests that a key is set);
//     nested fields by dots (labels.env, scheduling.automaticRestart);
//     expressions joined by AND, OR (which binds tighter, as in AIP-160) or
//     juxtaposed in parentheses "(a = 1) (b = 2)"; NOT or a leading "-"
//     negates; a value is a string, number or boolean, quoted or bare.
//   - Regular expressions: FIELD eq RE2 or FIELD ne RE2, which must match
//     the whole value, alone or as several parenthesized expressions.
//
// The two forms cannot be mixed in one filter. A repeated field matches
// when any element does.

// filterExpr is a parsed filter; a nil filterExpr matches everything.
type filterExpr interface {
	eval(obj any) bool
}

type andExpr []filterExpr
type orExpr []filterExpr
type notExpr struct{ x filterExpr }

type restriction struct {
	path []string
	op   string // = != < <= > >= : eq ne
	val  string
	re   *regexp.Regexp // eq, ne
}

func (a andExpr) eval(obj any) bool {
	for _, x := range a {
		if !x.eval(obj) {
			return false
		}
	}
	return true
}

func (o orExpr) eval(obj any) bool {
	for _, x := range o {
		if x.eval(obj) {
			return true
		}
	}
	return false
}

func (n notExpr) eval(obj any) bool { return !n.x.eval(obj) }

func (r restriction) eval(obj any) bool {
	values, present := lookupPath(obj, r.path)
	switch r.op {
	case "!=":
		// True when no value equals: a missing field is not equal.
		for _, v := range values {
			if compareValue(v, r.val) == 0 {
				return false
			}
		}
		return true
	case "ne":
		for _, v := range values {
			if s, ok := scalarString(v); ok && r.re.MatchString(s) {
				return false
			}
		}
		return true
	case ":":
		if r.val == "*" {
			return present
		}
	}
	for _, v := range values {
		if r.match(v) {
			return true
		}
	}
	return false
}

func (r restriction) match(v any) bool {
	switch r.op {
	case "eq":
		s, ok := scalarString(v)
		return ok && r.re.MatchString(s)
	case ":":
		if s, ok := v.(string); ok {
			return strings.Contains(s, r.val)
		}
		return compareValue(v, r.val) == 0
	case "=":
		return compareValue(v, r.val) == 0
	}
	c := compareValue(v, r.val)
	switch r.op {
	case "<":
		return c == -1
	case "<=":
		return c == -1 || c == 0
	case ">":
		return c == 1
	case ">=":
		return c == 1 || c == 0
	}
	return false
}

// compareValue compares a JSON value with a filter literal: as numbers when
// both are, as booleans for a boolean, else as strings, where "*" in the
// literal matches any run of characters (equality only). It returns -1, 0
// or 1, or 2 when the two cannot be compared.
func compareValue(v any, lit string) int {
	switch x := v.(type) {
	case bool:
		b, err := strconv.ParseBool(lit)
		if err != nil || b != x {
			return 2
		}
		return 0
	case float64:
		f, err := strconv.ParseFloat(lit, 64)
		if err != nil {
			return 2
		}
		return cmpOrder(x < f, x > f)
	case string:
		if strings.Contains(lit, "*") {
			re := "^" + strings.ReplaceAll(regexp.QuoteMeta(lit), `\*`, ".*") + "$"
			if regexp.MustCompile(re).MatchString(x) {
				return 0
			}
			return 2
		}
		// Numeric strings (ids are strings in JSON) compare as numbers.
		if a, err1 := strconv.ParseFloat(x, 64); err1 == nil {
			if b, err2 := strconv.ParseFloat(lit, 64); err2 == nil {
				return cmpOrder(a < b, a > b)
			}
		}
		return cmpOrder(x < lit, x > lit)
	}
	return 2
}

func cmpOrder(less, more bool) int {
	switch {
	case less:
		return -1
	case more:
		return 1
	}
	return 0
}

func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	}
	return "", false
}

// lookupPath follows path through objects and, for repeated fields, every
// element. It returns the scalar values found and whether the field exists.
func lookupPath(obj any, path []string) ([]any, bool) {
	if len(path) == 0 {
		if x, ok := obj.([]any); ok {
			return x, true
		}
		return []any{obj}, true
	}
	switch x := obj.(type) {
	case map[string]any:
		next, ok := x[path[0]]
		if !ok {
			return nil, false
		}
		return lookupPath(next, path[1:])
	case []any:
		var out []any
		present := false
		for _, e := range x {
			vs, ok := lookupPath(e, path)
			out = append(out, vs...)
			present = present || ok
		}
		return out, present
	}
	return nil, false
}

// filterObject is an instance as the filter sees it: its JSON form, from
// its encoding.
func filterObject(b []byte) any {
	var obj any
	json.Unmarshal(b, &obj)
	return obj
}

// parseListFilter parses a filter; "" gives nil.
func parseListFilter(s string) (filterExpr, error) {
	toks, err := lexFilter(s)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, nil
	}
	p := &filterParser{toks: toks}
	x, err := p.expression()
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.toks[p.pos].text)
	}
	if p.regex && p.aip {
		return nil, fmt.Errorf("regular expression and AIP-160 comparisons cannot be mixed")
	}
	return x, nil
}

type filterToken struct {
	kind byte // '(' ')' 'o' (operator) 'w' (word) 's' (quoted string)
	text string
}

// lexFilter splits a filter into tokens. A value after eq or ne runs to
// the next blank outside parentheses, as regular expressions hold any
// character.
func lexFilter(s string) ([]filterToken, error) {
	var toks []filterToken
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '(' || c == ')':
			toks = append(toks, filterToken{kind: c, text: string(c)})
			i++
		case c == '"' || c == '\'':
			j := i + 1
			var b strings.Builder
			for ; j < len(s) && s[j] != c; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string")
			}
			toks = append(toks, filterToken{kind: 's', text: b.String()})
			i = j + 1
		case strings.ContainsRune("=!<>:", rune(c)):
			op := string(c)
			if i+1 < len(s) && s[i+1] == '=' && c != '=' && c != ':' {
				op += "="
			}
			if op == "!" {
				return nil, fmt.Errorf("unknown operator %q", op)
			}
			toks = append(toks, filterToken{kind: 'o', text: op})
			i += len(op)
		default:
			prevEq := len(toks) > 0 && toks[len(toks)-1].kind == 'o' && (toks[len(toks)-1].text == "eq" || toks[len(toks)-1].text == "ne")
			j, depth := i, 0
			for ; j < len(s); j++ {
				d := s[j]
				if d == ' ' || d == '\t' || d == '\n' {
					break
				}
				if prevEq {
					if d == '(' {
						depth++
					} else if d == ')' {
						if depth == 0 {
							break
						}
						depth--
					}
					continue
				}
				if strings.ContainsRune("()\"'=!<>:", rune(d)) {
					break
				}
			}
			word := s[i:j]
			kind := byte('w')
			if !prevEq && (word == "eq" || word == "ne") && len(toks) > 0 && toks[len(toks)-1].kind == 'w' {
				kind = 'o'
			}
			toks = append(toks, filterToken{kind: kind, text: word})
			i = j
		}
	}
	return toks, nil
}

type filterParser struct {
	toks  []filterToken
	pos   int
	regex bool // an eq or ne comparison was read
	aip   bool // an AIP-160 comparison was read
}

func (p *filterParser) peek() *filterToken {
	if p.pos < len(p.toks) {
		return &p.toks[p.pos]
	}
	return nil
}

func (p *filterParser) keyword(k string) bool {
	if t := p.peek(); t != nil && t.kind == 'w' && t.text == k {
		p.pos++
		return true
	}
	return false
}

// expression: sequence {AND sequence}
func (p *filterParser) expression() (filterExpr, error) {
	return operands[andExpr](p.sequence, func() bool { return p.keyword("AND") })
}

// sequence: factor {factor}, juxtaposed factors being ANDed.
func (p *filterParser) sequence() (filterExpr, error) {
	return operands[andExpr](p.factor, func() bool {
		t := p.peek()
		return t != nil && t.kind != ')' && !(t.kind == 'w' && (t.text == "AND" || t.text == "OR"))
	})
}

// factor: term {OR term}
func (p *filterParser) factor() (filterExpr, error) {
	return operands[orExpr](p.term, func() bool { return p.keyword("OR") })
}

// operands parses one binary-operator level of the grammar: an operand,
// then another for as long as more says one follows. One operand stands
// alone; more are joined as E (AND or OR).
func operands[E interface {
	~[]filterExpr
	filterExpr
}](operand func() (filterExpr, error), more func() bool) (filterExpr, error) {
	x, err := operand()
	if err != nil {
		return nil, err
	}
	all := E{x}
	for more() {
		y, err := operand()
		if err != nil {
			return nil, err
		}
		all = append(all, y)
	}
	if len(all) == 1 {
		return x, nil
	}
	return all, nil
}

// term: [NOT | -] simple
func (p *filterParser) term() (filterExpr, error) {
	neg := p.keyword("NOT")
	if t := p.peek(); !neg && t != nil && t.kind == 'w' && strings.HasPrefix(t.text, "-") && len(t.text) > 1 {
		t.text = t.text[1:]
		neg = true
	}
	x, err := p.simple()
	if err != nil || !neg {
		return x, err
	}
	return notExpr{x}, nil
}

// simple: "(" expression ")" | FIELD OP VALUE
func (p *filterParser) simple() (filterExpr, error) {
	t := p.peek()
	if t == nil {
		return nil, fmt.Errorf("filter ends early")
	}
	if t.kind == '(' {
		p.pos++
		x, err := p.expression()
		if err != nil {
			return nil, err
		}
		if t := p.peek(); t == nil || t.kind != ')' {
			return nil, fmt.Errorf("missing )")
		}
		p.pos++
		return x, nil
	}
	if t.kind != 'w' || p.pos+2 >= len(p.toks) {
		return nil, fmt.Errorf("want FIELD OP VALUE at %q", t.text)
	}
	field, op, val := p.toks[p.pos], p.toks[p.pos+1], p.toks[p.pos+2]
	if op.kind != 'o' || (val.kind != 'w' && val.kind != 's') {
		return nil, fmt.Errorf("want FIELD OP VALUE at %q", field.text)
	}
	p.pos += 3
	r := restriction{path: strings.Split(field.text, "."), op: op.text, val: val.text}
	if op.text == "eq" || op.text == "ne" {
		re, err := regexp.Compile("^(?:" + val.text + ")$")
		if err != nil {
			return nil, err
		}
		r.re = re
		p.regex = true
	} else {
		p.aip = true
	}
	return r, nil
}
