//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// envVar is one variable of the lines the emulator prints for eval.
type envVar struct{ name, value string }

// exportedNames are every variable the emulator's lines can set, in the
// order --stop unsets them. TestStopUnsetsEveryLine keeps it whole.
var exportedNames = []string{
	"GKESSH_COMPUTE_ENDPOINT", "GKESSH_IAP_ENDPOINT", "GKESSH_ACCESS_TOKEN_FILE",
	"CLOUDSDK_CORE_PROJECT", "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE", "CLOUDSDK_API_ENDPOINT_OVERRIDES_OSLOGIN",
	"CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS", "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM",
	"CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER", "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAP",
	"CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE", "CLOUDSDK_API_ENDPOINT_OVERRIDES_MONITORING",
	"CLOUDSDK_API_ENDPOINT_OVERRIDES_NETWORKMANAGEMENT",
	"CLOUDSDK_AUTH_TOKEN_HOST", "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
	"GCE_EMULATOR_CA_FILE", "GCE_EMULATOR_MTLS_URL", "GCE_EMULATOR_CLIENT_CERT", "GCE_EMULATOR_CLIENT_KEY",
	"GCE_EMULATOR_CONTROL_SECRET", "GCE_EMULATOR_CONTROL_HEADER", "GCE_EMULATOR_PID", "GCE_EMULATOR_LOG",
}

// stopHint ends the lines: how to stop the emulator and undo them, so that
// nothing keeps pointing at a loopback port another user may bind once the
// emulator is gone (gcloud reads some of these variables too).
const stopHint = `# to stop it and unset these variables: eval "$(gce-emulator --stop)"` + "\n"

// renderEnv renders vars as one export line.
func renderEnv(vars []envVar) string {
	var b strings.Builder
	b.WriteString("export")
	for _, v := range vars {
		fmt.Fprintf(&b, " %s=%s", v.name, v.value)
	}
	b.WriteString("\n")
	return b.String()
}

// stopEmulator is --stop, as ssh-agent -k: it stops the emulator
// GCE_EMULATOR_PID names (SIGTERM, then waits for it to go) and prints the
// line that unsets every variable the emulator's lines set, for eval. The
// unset line comes even when the emulator is already gone.
func stopEmulator() error {
	defer fmt.Printf("unset %s;\n", strings.Join(exportedNames, " "))
	v := os.Getenv("GCE_EMULATOR_PID")
	if v == "" {
		return errors.New("GCE_EMULATOR_PID is not set: no emulator to stop in this shell")
	}
	pid, err := strconv.Atoi(v)
	if err != nil || pid <= 1 {
		return fmt.Errorf("GCE_EMULATOR_PID=%q is not a process id", v)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			fmt.Fprintf(os.Stderr, "gce-emulator: pid %d had stopped already\n", pid)
			return nil
		}
		return fmt.Errorf("stop pid %d: %w", pid, err)
	}
	for deadline := time.Now().Add(10 * time.Second); running(pid); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d still runs 10s after SIGTERM", pid)
		}
	}
	fmt.Fprintf(os.Stderr, "gce-emulator: pid %d stopped\n", pid)
	return nil
}

// running reports whether pid is a live process. A zombie counts as gone:
// the background emulator is no one's child but init's, which may reap it
// late or (in a container) never. ps says so the same way on Linux and
// macOS.
func running(pid int) bool {
	out, err := exec.Command("ps", "-o", "stat=", "-p", strconv.Itoa(pid)).Output()
	state := strings.TrimSpace(string(out))
	return err == nil && state != "" && !strings.HasPrefix(state, "Z")
}
