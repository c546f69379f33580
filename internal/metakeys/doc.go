// Package metakeys keeps SSH keys in Compute metadata: it picks the item a
// node reads (project or instance ssh-keys, or a legacy sshKeys, as gcloud
// picks), upserts or removes lines in one fingerprint-checked write that
// keeps every other line as it was, and lists the lines there. The line
// format itself is package keys'.
package metakeys
