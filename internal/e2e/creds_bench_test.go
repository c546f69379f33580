//go:build unix

package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkProxyFirstByteADC measures a warm `gkessh proxy NODE 22`, start
// to the first byte of sshd's banner, with a service-account ADC file and a
// token endpoint 200 ms away, next to the token-file case: the ADC token
// comes from the disk cache, so no token grant and no 200 ms. Medians of
// 15 runs each, in milliseconds, and the token grants the warm ADC runs
// made (want 0).
func BenchmarkProxyFirstByteADC(b *testing.B) {
	need(b, "sshd")
	adc := filepath.Join(b.TempDir(), "adc.json")
	w := startEmulator(b, "--nodes", "1", "--propagation-delay", "0s", "--adc-file", adc, "--token-latency", "200ms")
	node := w.nodes()[0].Name
	var fileEnv, adcEnv []string
	for _, v := range w.env {
		fileEnv = append(fileEnv, v)
		if !strings.HasPrefix(v, "GKESSH_ACCESS_TOKEN_FILE=") {
			adcEnv = append(adcEnv, v)
		}
	}
	adcEnv = append(adcEnv, "GOOGLE_APPLICATION_CREDENTIALS="+adc, "CLOUDSDK_CONFIG="+filepath.Join(w.home, "gcloud"))
	proxy := func(env []string) *exec.Cmd {
		cmd := w.command("gkessh", "proxy", node, "22")
		cmd.Env = env
		return cmd
	}
	const runs = 15
	b.ResetTimer()
	for range b.N {
		// Warm: the zone cache, the key on the node, the ADC token on disk.
		firstByte(b, proxy(fileEnv))
		start := time.Now()
		firstByte(b, proxy(adcEnv))
		coldADC := time.Since(start)
		grants := w.stats().TokenGrants
		var file, warm []time.Duration
		for range runs {
			file = append(file, firstByte(b, proxy(fileEnv)))
			warm = append(warm, firstByte(b, proxy(adcEnv)))
		}
		b.ReportMetric(median(file), "token-file-ms")
		b.ReportMetric(median(warm), "warm-adc-ms")
		b.ReportMetric(float64(coldADC.Microseconds())/1000, "cold-adc-ms")
		b.ReportMetric(float64(w.stats().TokenGrants-grants), "warm-adc-token-grants")
	}
}
