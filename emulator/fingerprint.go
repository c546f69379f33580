//go:build unix

package emulator

import (
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
