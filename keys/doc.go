// Package keys manages the SSH key gkessh logs in with: the key files
// gcloud uses (~/.ssh/google_compute_engine), ssh-agent's keys, and the
// ssh-keys line format the guest agent reads, expiring google-ssh entries
// included, with the pure edits of a value (upsert, remove, audit) that
// keep every other line as it was. Writing them into metadata is
// internal/metakeys'.
package keys
