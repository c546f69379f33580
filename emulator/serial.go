//go:build unix

package emulator

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Each node's serial port 1: a short Container-Optimized OS boot log,
// then whatever the control API appends (disk full, emergency shell, kernel
// panic, GRUB trouble, ...) for doctor to find.

// serialPorts holds every node's port 1 output.
type serialPorts struct {
	mu     sync.Mutex
	byNode map[*Node][]byte
}

// bootLog is what a healthy COS node prints on port 1.
func bootLog(node string) string {
	return "[    0.000000] Linux version 6.1.100+ (builder@localhost) (Chromium OS 17.0_pre498229-r33 clang version 17.0.0) #1 SMP PREEMPT_DYNAMIC\n" +
		"[    0.000000] Command line: BOOT_IMAGE=/syslinux/vmlinuz.A init=/usr/lib/systemd/systemd boot=local rootwait ro noresume loglevel=7 console=tty1 console=ttyS0\n" +
		"[    1.204391] EXT4-fs (sda1): mounted filesystem with ordered data mode. Quota mode: none.\n" +
		"[    3.881920] systemd[1]: Reached target Multi-User System.\n" +
		"[    4.019223] google_guest_agent[612]: GCE Agent Started (version 20240314.00)\n" +
		"\n" + node + " login: "
}

// serialOutput returns the node's port 1 output from byte start on, and
// the offset after it.
func (s *Server) serialOutput(n *Node, start int64) (string, int64, int64) {
	s.serial.mu.Lock()
	defer s.serial.mu.Unlock()
	out, ok := s.serial.byNode[n]
	if !ok {
		out = []byte(bootLog(n.Name))
		if s.serial.byNode == nil {
			s.serial.byNode = map[*Node][]byte{}
		}
		s.serial.byNode[n] = out
	}
	start = min(max(start, 0), int64(len(out)))
	return string(out[start:]), start, int64(len(out))
}

// AppendSerial adds lines to the node's serial port 1 output.
func (s *Server) AppendSerial(node string, lines ...string) error {
	n, err := s.findNode(node, "")
	if err != nil {
		return err
	}
	s.appendSerial(n, lines...)
	return nil
}

func (s *Server) appendSerial(n *Node, lines ...string) {
	s.serialOutput(n, 0) // the boot log comes first
	s.serial.mu.Lock()
	defer s.serial.mu.Unlock()
	for _, l := range lines {
		s.serial.byNode[n] = append(s.serial.byNode[n], "\n"+strings.TrimRight(l, "\n")...)
	}
}

// getSerialPortOutput serves instances.getSerialPortOutput for port 1.
func (s *Server) getSerialPortOutput(r *http.Request) (any, *apiError) {
	resource := fmt.Sprintf("projects/%s/zones/%s/instances/%s", s.cfg.Project, r.PathValue("zone"), r.PathValue("instance"))
	if err := require(r, "compute.instances.getSerialPortOutput", resource); err != nil {
		return nil, err
	}
	s.mu.Lock()
	n, aerr := s.lookupNode(r)
	s.mu.Unlock()
	if aerr != nil {
		return nil, aerr
	}
	q := r.URL.Query()
	port, start := int64(1), int64(0)
	var err error
	if v := q.Get("port"); v != "" {
		if port, err = strconv.ParseInt(v, 10, 64); err != nil || port < 1 || port > 4 {
			return nil, invalid("Invalid value for field 'port': '%s'. Must be in the range [1,4].", v)
		}
	}
	if v := q.Get("start"); v != "" {
		if start, err = strconv.ParseInt(v, 10, 64); err != nil {
			return nil, invalid("Invalid value for field 'start': '%s'.", v)
		}
	}
	contents, from, next := "", start, start
	if port == 1 {
		contents, from, next = s.serialOutput(n, start)
	}
	return map[string]any{
		"kind":     "compute#serialPortOutput",
		"contents": contents,
		"start":    strconv.FormatInt(from, 10),
		"next":     strconv.FormatInt(next, 10),
		"selfLink": s.zoneURL(n.Zone) + "/instances/" + n.Name + "/serialPort",
	}, nil
}

// ctlAppendSerial appends {"lines": [...]} to a node's serial port 1.
func (s *Server) ctlAppendSerial(n *Node, r *http.Request) (any, *apiError) {
	var req struct {
		Lines []string `json:"lines"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	s.appendSerial(n, req.Lines...)
	contents, _, _ := s.serialOutput(n, 0)
	return map[string]string{"contents": contents}, nil
}
