// Package devprof writes CPU and allocation profiles of a test build of a
// command, for the benchmarks that run the built binaries; a user's build
// never profiles itself.
package devprof
