//go:build !gkessh_testhooks

package devprof

// Start does nothing in a user's build.
func Start() (stop func()) { return func() {} }
