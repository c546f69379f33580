// Package keys manages the SSH key gkessh logs in with and its place in
// metadata: the key files gcloud uses (~/.ssh/google_compute_engine), the
// ssh-keys line format the guest agent reads, expiring google-ssh entries
// included, and a fingerprint-checked upsert into project or instance
// metadata that keeps every other line as it was.
package keys
