package gcloud

import (
	"fmt"
	"strings"
)

// Properties are a configuration file's values: section → name → value.
type Properties map[string]map[string]string

// Get returns section/name, falling back to the [DEFAULT] section as
// Python's configparser does, or "".
func (p Properties) Get(section, name string) string {
	name = strings.ToLower(name)
	if v, ok := p[section][name]; ok {
		return v
	}
	return p["DEFAULT"][name]
}

// ParseProperties parses a gcloud properties file. gcloud reads these with
// Python's configparser in its default (strict) mode, so this follows its
// rules: "name = value" or "name: value", names case-insensitive, "#" and
// ";" start whole-line comments only, a more indented line continues the
// value above it, "%%" stands for "%", and a repeated section or name is an
// error, as is a value before any [section].
func ParseProperties(data []byte) (Properties, error) {
	p := Properties{}
	type option struct {
		section, name string
		lines         []string
	}
	var (
		section string
		seen    = map[string]map[string]bool{}
		cur     *option
		indent  int
		done    []*option
	)
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		text := strings.TrimSpace(line)
		if strings.HasPrefix(text, "#") || strings.HasPrefix(text, ";") {
			continue
		}
		if text == "" {
			if cur != nil {
				cur.lines = append(cur.lines, "")
			}
			continue
		}
		lineIndent := len(line) - len(strings.TrimLeft(line, " \t\f\v"))
		if cur != nil && lineIndent > indent {
			cur.lines = append(cur.lines, text)
			continue
		}
		indent = lineIndent
		if strings.HasPrefix(text, "[") {
			end := strings.LastIndex(text, "]")
			if end < 2 {
				return nil, fmt.Errorf("line %d: bad section header %q", n, text)
			}
			section = text[1:end]
			if seen[section] != nil {
				return nil, fmt.Errorf("line %d: section [%s] appears twice", n, section)
			}
			seen[section] = map[string]bool{}
			cur = nil
			continue
		}
		if section == "" {
			return nil, fmt.Errorf("line %d: %q comes before any [section]", n, text)
		}
		at := strings.IndexAny(text, "=:")
		if at < 0 {
			return nil, fmt.Errorf("line %d: %q is not name = value", n, text)
		}
		name := strings.ToLower(strings.TrimSpace(text[:at]))
		if name == "" {
			return nil, fmt.Errorf("line %d: %q has no name", n, text)
		}
		if seen[section][name] {
			return nil, fmt.Errorf("line %d: %s appears twice in [%s]", n, name, section)
		}
		seen[section][name] = true
		cur = &option{section: section, name: name, lines: []string{strings.TrimSpace(text[at+1:])}}
		done = append(done, cur)
	}
	for _, o := range done {
		if p[o.section] == nil {
			p[o.section] = map[string]string{}
		}
		v := strings.TrimRight(strings.Join(o.lines, "\n"), " \t\n\r\f\v")
		p[o.section][o.name] = strings.ReplaceAll(v, "%%", "%")
	}
	for s := range seen {
		if p[s] == nil {
			p[s] = map[string]string{}
		}
	}
	return p, nil
}
