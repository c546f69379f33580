//go:build unix

package emulator

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"

	compute "google.golang.org/api/compute/v1"
)

// fingerprint is GCE's metadata fingerprint: 8 bytes of a content hash,
// base64. The previous fingerprint is chained in so that every successful set
// changes it, even one that writes the same items again.
func fingerprint(md *compute.Metadata) string {
	h := sha256.New()
	h.Write([]byte(md.Fingerprint)) // chain from the previous value
	for _, it := range md.Items {
		h.Write([]byte(it.Key))
		h.Write([]byte{0})
		if it.Value != nil {
			h.Write([]byte(*it.Value))
		}
		h.Write([]byte{0})
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil)[:8])
}

// sameFingerprint reports whether a fingerprint sent back matches the
// current one. A fingerprint is a bytes field: Google's JSON takes it in
// standard or URL-safe base64, padded or not, and gcloud's apitools always
// re-encodes it URL-safe (NW+ZeCU64hM= comes back as NW-ZeCU64hM=), so the
// decoded bytes are compared, not the strings. A missing or undecodable
// one matches nothing.
func sameFingerprint(sent, current string) bool {
	a, b := decodeBytesField(sent), decodeBytesField(current)
	return a != nil && bytes.Equal(a, b)
}

// decodeBytesField decodes a JSON bytes field in any of the four base64
// forms proto3's JSON mapping accepts; nil if it is none of them or empty.
func decodeBytesField(s string) []byte {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) > 0 {
			return b
		}
	}
	return nil
}
