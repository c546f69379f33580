//go:build unix

package tunnel_test

import (
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// The OpenSSH benchmarks (ssh through gkessh proxy next to nc → socat)
// are end-to-end ones, in internal/e2e.

const benchPayload = 64 << 20

// BenchmarkTunnelInProcess measures the tunnel alone, in this process:
// 64 MiB through a Conn and the emulator's relay to a node port that
// discards them (up) or sends them (down), next to the same through a plain
// TCP relay (io.Copy each way). It reports throughput and the process's CPU
// time per MB for both, and their ratio.
func BenchmarkTunnelInProcess(b *testing.B) {
	for _, up := range []bool{true, false} {
		b.Run(map[bool]string{true: "up", false: "down"}[up], func(b *testing.B) {
			serve := func(c net.Conn) {
				if up {
					io.Copy(io.Discard, c)
					return
				}
				chunk := make([]byte, 128<<10)
				for {
					if _, err := c.Write(chunk); err != nil {
						return
					}
				}
			}
			r := newRelay(b)
			r.dialer.Logf = nil
			r.serve(b, 9, serve)
			iap := r.dial(b, 9)
			defer iap.Close()
			raw := rawRelay(b, serve)
			defer raw.Close()
			b.ResetTimer()
			for range b.N {
				iapMBs, iapCPU := move(b, iap, up)
				rawMBs, rawCPU := move(b, raw, up)
				b.ReportMetric(iapMBs, "iap-MB/s")
				b.ReportMetric(rawMBs, "raw-MB/s")
				b.ReportMetric(iapMBs/rawMBs, "iap/raw")
				b.ReportMetric(iapCPU, "iap-cpu-µs/MB")
				b.ReportMetric(rawCPU, "raw-cpu-µs/MB")
			}
		})
	}
}

// rawRelay connects to a backend running serve through a plain TCP relay.
func rawRelay(b *testing.B, serve func(net.Conn)) net.Conn {
	b.Helper()
	listen := func(handle func(net.Conn)) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ln.Close() })
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			handle(c)
		}()
		return ln.Addr().String()
	}
	backend := listen(serve)
	relay := listen(func(c net.Conn) {
		d, err := net.Dial("tcp", backend)
		if err != nil {
			return
		}
		defer d.Close()
		go io.Copy(d, c)
		io.Copy(c, d)
	})
	c, err := net.Dial("tcp", relay)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// move sends (up) or receives benchPayload bytes on c and returns MB/s and
// this process's CPU time per MB.
func move(b *testing.B, c net.Conn, up bool) (mbs, cpuPerMB float64) {
	b.Helper()
	buf := make([]byte, 128<<10)
	cpu0, start := cpuTime(), time.Now()
	for n := 0; n < benchPayload; n += len(buf) {
		var err error
		if up {
			_, err = c.Write(buf)
		} else {
			_, err = io.ReadFull(c, buf)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	mb := float64(benchPayload) / 1e6
	return mb / time.Since(start).Seconds(), float64((cpuTime() - cpu0).Microseconds()) / mb
}

// cpuTime is the CPU time this process used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
