package keys

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/internal/atomicfile"
)

// KeyPair is the local key gkessh puts into metadata and signs with.
type KeyPair struct {
	Path   string        // the private key file; the public key is Path+".pub"
	Signer ssh.Signer    // signs with the file's key, or through ssh-agent
	Public ssh.PublicKey // Signer.PublicKey()
	// Comment is the .pub file's comment (gcloud's keys have
	// "user@host"), "" when it has none.
	Comment string
	Created bool // LoadOrCreate generated the pair just now

	agentConn net.Conn // open while Signer goes through ssh-agent
}

// Close releases the ssh-agent connection behind Signer, if any.
func (k *KeyPair) Close() error {
	if k.agentConn == nil {
		return nil
	}
	return k.agentConn.Close()
}

// DefaultPath is ~/.ssh/google_compute_engine, the file gcloud uses, so a
// key gcloud already made (and put in metadata) is reused.
func DefaultPath() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", &KeyFileError{Problem: "find the home directory (set HOME)", Err: err}
	}
	return filepath.Join(home, ".ssh", "google_compute_engine"), nil
}

// LoadOrCreate loads the key pair at path (any type ssh can parse: RSA,
// ECDSA, Ed25519, in OpenSSH or PEM form), or generates one when neither file
// exists. It refuses what OpenSSH refuses or what would silently put the
// wrong key in metadata: a private key others can read, a .pub that is not
// the private key's, a passphrase-protected key that ssh-agent does not hold.
// A missing .pub is written from the private key.
func LoadOrCreate(path string) (*KeyPair, error) {
	for attempt := 0; ; attempt++ {
		kp, err := load(path, true)
		if !errors.Is(err, fs.ErrNotExist) {
			return kp, err
		}
		if _, perr := os.Stat(path + ".pub"); perr == nil {
			// Another gkessh may have made the pair between the two looks
			// (it writes the private key first): look again.
			if _, serr := os.Stat(path); serr == nil && attempt < 3 {
				continue
			}
			return nil, lonePub(path)
		}
		kp, err = create(path)
		if errors.Is(err, fs.ErrExist) && attempt < 3 {
			continue // another gkessh made the pair first: use theirs
		}
		return kp, err
	}
}

// Load loads the key pair at path like LoadOrCreate, but writes nothing:
// no new pair, no missing .pub.
func Load(path string) (*KeyPair, error) {
	kp, err := load(path, false)
	if errors.Is(err, fs.ErrNotExist) {
		if _, perr := os.Stat(path + ".pub"); perr == nil {
			return nil, lonePub(path)
		}
		return nil, &KeyFileError{Path: path, Problem: "no private key at " + path, Err: err}
	}
	return kp, err
}

// lonePub is the error for a .pub whose private key is missing: a new
// pair would not match the key the .pub says is the user's.
func lonePub(path string) error {
	return &KeyFileError{Path: path, Problem: fmt.Sprintf("%s.pub exists but its private key %s does not: restore the private key, or remove the .pub to get a new pair", path, path), Broken: true}
}

// Replace makes a new pair at path in place of a broken one (a
// KeyFileError that is Broken), as gcloud's --force-key-file-overwrite
// does: it removes the private key and the .pub, whichever are there, then
// creates the pair. It removes nothing but regular files.
func Replace(path string) (*KeyPair, error) {
	for _, p := range []string{path, path + ".pub"} {
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return nil, &KeyFileError{Path: path, Problem: fmt.Sprintf("%s is not a regular file (%v): not replacing it", p, fi.Mode().Type())}
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("keys: %w", err)
		}
	}
	return LoadOrCreate(path)
}

// PublicKey returns the public key of the pair at path: its .pub when
// present, which needs no passphrase or agent, else the private key's.
func PublicKey(path string) (ssh.PublicKey, error) {
	pub, _, err := readPublic(path + ".pub")
	if !errors.Is(err, fs.ErrNotExist) {
		return pub, err
	}
	kp, err := Load(path)
	if err != nil {
		return nil, err
	}
	kp.Close()
	return kp.Public, nil
}

// load reads the pair at path, writing a missing .pub when writePub.
func load(path string, writePub bool) (*KeyPair, error) {
	f, err := openRegular(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("keys: read private key: %w", err)
	}
	defer f.Close()
	if err := checkMode(f, path); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, fmt.Errorf("keys: read private key %s: %w", path, err)
	}
	pub, comment, pubErr := readPublic(path + ".pub")
	if pubErr != nil && !errors.Is(pubErr, fs.ErrNotExist) {
		return nil, pubErr
	}
	kp := &KeyPair{Path: path, Comment: comment}
	signer, err := ssh.ParsePrivateKey(buf.Bytes())
	var pme *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &pme):
		want := pub
		if want == nil {
			want = pme.PublicKey // OpenSSH format keeps the public key in clear
		}
		if want == nil {
			return nil, fmt.Errorf("keys: %s is passphrase-protected and has no %s.pub to find it in ssh-agent with: write the .pub (ssh-keygen -y -f %s > %s.pub)", path, path, path, path)
		}
		if kp.Signer, kp.agentConn, err = agentSigner(want); err != nil {
			return nil, fmt.Errorf("keys: %s is passphrase-protected: %w", path, err)
		}
	case err != nil:
		return nil, &KeyFileError{Path: path, Problem: path + " is not a private key ssh can use (move it away to get a new pair)", Err: err, Broken: true}
	default:
		kp.Signer = signer
	}
	kp.Public = kp.Signer.PublicKey()
	if pub == nil && writePub {
		// Like ssh-keygen -y: the private key is the truth.
		if err := writeNew(path+".pub", ssh.MarshalAuthorizedKey(kp.Public), 0o644); err != nil && !errors.Is(err, fs.ErrExist) {
			kp.Close()
			return nil, err
		}
		return kp, nil
	}
	if pub != nil && !bytes.Equal(pub.Marshal(), kp.Public.Marshal()) {
		kp.Close()
		return nil, &KeyFileError{Path: path, Problem: fmt.Sprintf("%s.pub (%s) is not the public key of %s (%s): fix or remove the .pub", path, ssh.FingerprintSHA256(pub), path, ssh.FingerprintSHA256(kp.Public)), Broken: true}
	}
	return kp, nil
}

// checkMode refuses a private key that group or others may read, as OpenSSH
// does ("UNPROTECTED PRIVATE KEY FILE"), where mode bits say so.
func checkMode(f *os.File, path string) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	if st.IsDir() {
		return &KeyFileError{Path: path, Problem: path + " is a directory, not a private key"}
	}
	if m := st.Mode().Perm(); othersMayRead(m) {
		return fmt.Errorf("keys: unprotected private key file %s: mode %04o lets others read it; run 'chmod 600 %s'", path, m, path)
	}
	return nil
}

// readPublic parses the first line of a .pub file: the key and its
// comment.
func readPublic(path string) (ssh.PublicKey, string, error) {
	f, err := openRegular(path)
	var b []byte
	if err == nil {
		b, err = io.ReadAll(f)
		f.Close()
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "", err
		}
		return nil, "", fmt.Errorf("keys: read public key: %w", err)
	}
	pub, comment, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil, "", &KeyFileError{Path: strings.TrimSuffix(path, ".pub"), Problem: path + " is not a public key (fix or remove it)", Err: err, Broken: true}
	}
	return pub, comment, nil
}

// openRegular opens a key file, refusing anything but a regular file first:
// opening a FIFO would block until some writer came along.
func openRegular(path string) (*os.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("keys: %s is not a regular file (%v): pass a key file", path, fi.Mode().Type())
	}
	return os.Open(path)
}

// agentSigner finds want among ssh-agent's keys. The returned conn stays
// open for signing. Load takes no ctx: AgentKeys' own bound applies.
func agentSigner(want ssh.PublicKey) (ssh.Signer, net.Conn, error) {
	signers, conn, err := AgentKeys(context.Background())
	if err != nil {
		return nil, nil, fmt.Errorf("%w; or use a key without a passphrase", err)
	}
	for _, s := range signers {
		if bytes.Equal(s.PublicKey().Marshal(), want.Marshal()) {
			return s, conn, nil
		}
	}
	conn.Close()
	return nil, nil, fmt.Errorf("ssh-agent does not hold %s: run ssh-add", ssh.FingerprintSHA256(want))
}

// create generates a new pair at path. Ed25519, not gcloud's RSA 3072:
// every guest agent accepts it (any authorized_keys line x/crypto parses),
// every OpenSSH a current GCE or GKE image ships (6.5 and later; COS, Ubuntu,
// Debian, RHEL 8+) takes it, keys and signatures are small, and it has no
// size parameter to get wrong. An existing RSA key from gcloud is still
// reused as is. The files are written in OpenSSH format, private first,
// each appearing whole (see writeNew); fs.ErrExist means another process
// created the pair meanwhile.
func create(path string) (*KeyPair, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("keys: generate key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	comment := keyComment()
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, fmt.Errorf("keys: encode private key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keys: create %s: %w", dir, err)
	}
	if err := writeNew(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	line := bytes.TrimSuffix(ssh.MarshalAuthorizedKey(sshPub), []byte("\n"))
	line = append(line, " "+comment+"\n"...)
	if err := writeNew(path+".pub", line, 0o644); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return &KeyPair{Path: path, Signer: signer, Public: sshPub, Created: true}, nil
}

// keyComment is user@host, what ssh-keygen (and so gcloud) puts in a .pub.
func keyComment() string {
	host, _ := os.Hostname()
	user, err := LocalUser()
	if err != nil {
		user = "gkessh"
	}
	if host == "" {
		return user
	}
	return user + "@" + host
}

// writeNew creates path with data, whole, failing with fs.ErrExist if it
// exists: two processes generating at once cannot each install half a pair.
func writeNew(path string, data []byte, perm os.FileMode) error {
	if err := atomicfile.WriteFile(path, data, atomicfile.Options{Perm: perm, NoReplace: true}); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	return nil
}
