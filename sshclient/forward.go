package sshclient

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Forward is an ssh -L or -R forward: connections to Listen are carried
// through the SSH connection to Target. With -L this machine listens and
// the node dials; with -R the node listens and this machine dials.
type Forward struct {
	Listen string // host:port; an empty host means every interface
	Target string // host:port
}

// ParseForward reads ssh's -L and -R argument,
// [bind_address:]port:host:hostport, with IPv6 addresses in brackets. As
// in ssh, the bind address defaults to localhost, and "*" or an empty one
// means every interface.
func ParseForward(s string) (Forward, error) {
	fields, err := splitForward(s)
	if err != nil {
		return Forward{}, fmt.Errorf("%q: %w", s, err)
	}
	bind := "localhost"
	switch len(fields) {
	case 3:
	case 4:
		bind, fields = fields[0], fields[1:]
		if bind == "*" {
			bind = ""
		}
	default:
		return Forward{}, fmt.Errorf("%q: want [bind_address:]port:host:hostport", s)
	}
	port, host, hostPort := fields[0], fields[1], fields[2]
	if !validPort(port, 0) || !validPort(hostPort, 1) {
		return Forward{}, fmt.Errorf("%q: ports are numbers up to 65535", s)
	}
	if host == "" || strings.ContainsAny(host+bind, "[]") {
		return Forward{}, fmt.Errorf("%q: bad host name", s)
	}
	return Forward{Listen: net.JoinHostPort(bind, port), Target: net.JoinHostPort(host, hostPort)}, nil
}

// splitForward splits s at the colons outside brackets, and takes the
// brackets off.
func splitForward(s string) ([]string, error) {
	var fields []string
	for {
		var field string
		if rest, ok := strings.CutPrefix(s, "["); ok {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, errors.New("unclosed [")
			}
			field, s = rest[:end], rest[end+1:]
			if s != "" && s[0] != ':' {
				return nil, errors.New("text after ]")
			}
		} else {
			end := strings.IndexByte(s, ':')
			if end < 0 {
				end = len(s)
			}
			field, s = s[:end], s[end:]
		}
		fields = append(fields, field)
		if s == "" {
			return fields, nil
		}
		s = s[1:] // the colon
	}
}

func validPort(s string, low int) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= low && n <= 65535 && s == strconv.Itoa(n)
}
