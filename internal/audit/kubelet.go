package audit

import (
	"bufio"
	"strconv"
	"strings"
)

// ReadOnlyPort reads readOnlyPort from a node's kubelet-config attribute
// (a KubeletConfiguration in YAML). A missing key is the
// KubeletConfiguration default, 0: the port is off. ok is false when the
// value is there but not a port number.
func ReadOnlyPort(kubeletConfig string) (port int, ok bool) {
	sc := bufio.NewScanner(strings.NewReader(kubeletConfig))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		// Only the top-level key: nested ones are indented.
		v, found := strings.CutPrefix(line, "readOnlyPort:")
		if !found {
			continue
		}
		v, _, _ = strings.Cut(v, "#")
		v = strings.Trim(strings.TrimSpace(v), `"'`)
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 65535 {
			return 0, false
		}
		return n, true
	}
	return 0, true
}

// ReadOnlyRequests reads kubelet_http_requests_total from the kubelet's
// metrics (Prometheus text format) and returns the read-only port's
// request counts by path label. Other series and malformed lines are
// skipped.
func ReadOnlyRequests(metrics string) map[string]int64 {
	out := map[string]int64{}
	for _, line := range strings.Split(metrics, "\n") {
		rest, ok := strings.CutPrefix(line, "kubelet_http_requests_total{")
		if !ok {
			continue
		}
		labelText, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		labels, ok := parseLabels(labelText)
		if !ok || labels["server_type"] != "readonly" {
			continue
		}
		value, _, _ = strings.Cut(strings.TrimSpace(value), " ") // a timestamp may follow
		f, err := strconv.ParseFloat(value, 64)
		if err != nil || f < 0 || f > 1e18 {
			continue
		}
		out[labels["path"]] += int64(f)
	}
	return out
}

// parseLabels reads name="value",... with Prometheus's escapes.
func parseLabels(s string) (map[string]string, bool) {
	out := map[string]string{}
	for s != "" {
		name, rest, ok := strings.Cut(s, `="`)
		if !ok || name == "" {
			return nil, false
		}
		var v strings.Builder
		i := 0
		for ; i < len(rest) && rest[i] != '"'; i++ {
			if rest[i] == '\\' && i+1 < len(rest) {
				i++
				switch rest[i] {
				case 'n':
					v.WriteByte('\n')
				default:
					v.WriteByte(rest[i])
				}
				continue
			}
			v.WriteByte(rest[i])
		}
		if i == len(rest) {
			return nil, false
		}
		out[strings.TrimSpace(name)] = v.String()
		s = strings.TrimPrefix(rest[i+1:], ",")
	}
	return out, true
}
