package gce

import (
	"strconv"
	"strings"
)

// KubeEnv reads the kube-env item GKE puts in a node's instance metadata:
// the settings the node's bootstrap script reads (CLUSTER_IP_RANGE,
// CONTAINER_RUNTIME…). ok reports whether md has a kube-env item.
func KubeEnv(md *Metadata) (env map[string]string, ok bool) {
	s, ok := MetadataValue(md, "kube-env")
	if !ok {
		return nil, false
	}
	return parseKubeEnv(s), true
}

// parseKubeEnv reads kube-env's YAML mapping of KEY: value lines as the
// node does (configure.sh loads it with PyYAML's BaseLoader, so every value
// is a string): a value may be plain, 'single-quoted' (GKE's kube-up
// scripts quote this way) or "double-quoted", indented lines continue the
// value above them, and a key given twice keeps its last value. Lines that
// are not KEY: value are skipped rather than failing the rest, since a
// reader only wants a few keys.
func parseKubeEnv(s string) map[string]string {
	env := map[string]string{}
	var key string
	var raw []string // the lines of key's value
	flush := func() {
		if key != "" {
			env[key] = yamlScalar(strings.Join(raw, " "))
		}
		key, raw = "", nil
	}
	for line := range strings.SplitSeq(s, "\n") {
		line = strings.TrimSuffix(line, "\r")
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
			continue
		case line[0] == ' ' || line[0] == '\t':
			if key != "" {
				raw = append(raw, trimmed)
			}
			continue
		}
		flush()
		k, v, found := strings.Cut(line, ":")
		k = strings.TrimSpace(k)
		if !found || k == "" {
			continue
		}
		key, raw = k, []string{strings.TrimSpace(v)}
	}
	flush()
	return env
}

// yamlScalar is the string a one-line YAML scalar stands for.
func yamlScalar(v string) string {
	if len(v) >= 2 {
		switch {
		case v[0] == '\'' && v[len(v)-1] == '\'':
			return strings.ReplaceAll(v[1:len(v)-1], "''", "'")
		case v[0] == '"' && v[len(v)-1] == '"':
			if u, err := strconv.Unquote(v); err == nil {
				return u
			}
			return v[1 : len(v)-1]
		}
	}
	// A plain scalar ends at a comment.
	if i := strings.Index(v, " #"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	return v
}
