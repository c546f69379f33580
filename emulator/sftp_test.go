//go:build unix

package emulator

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/pkg/sftp"
)

// The builtin node speaks SFTP with OpenSSH's sftp-server when the host has
// one and in-process otherwise: a file goes up, is listed, comes back and
// is renamed over another, and the session ends cleanly either way.
func TestBuiltinSFTP(t *testing.T) {
	for _, server := range []string{"sftp-server", "in-process"} {
		t.Run(server, func(t *testing.T) {
			keys, err := newHostKeys()
			if err != nil {
				t.Fatal(err)
			}
			d, err := newBuiltinSSHD(keys, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			switch {
			case server == "in-process":
				d.sftpServer = ""
			case d.sftpServer == "":
				t.Skip("no OpenSSH sftp-server on this host")
			}
			name, signer := authorize(t, d)
			c, err := dialNode(d, name, signer)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sc, err := sftp.NewClient(c)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			want := bytes.Repeat([]byte("0123456789abcdef"), 10000)
			up, dst := filepath.Join(dir, "up"), filepath.Join(dir, "dst")
			os.WriteFile(dst, []byte("old"), 0o644)
			f, err := sc.Create(up)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(want); err != nil {
				t.Fatal(err)
			}
			f.Close()
			if err := sc.PosixRename(up, dst); err != nil {
				t.Fatal(err)
			}
			fis, err := sc.ReadDir(dir)
			if err != nil || len(fis) != 1 || fis[0].Name() != "dst" || fis[0].Size() != int64(len(want)) {
				t.Fatalf("listing %v (%v)", fis, err)
			}
			g, err := sc.Open(dst)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(g)
			g.Close()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read back %d bytes (%v), want %d", len(got), err, len(want))
			}
			if err := sc.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
}
