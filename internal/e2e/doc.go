// Package e2e holds the end-to-end tests: the built gkessh and gce-emulator
// binaries with real OpenSSH (ssh, scp, sshd), rsync and ansible-core.
package e2e
