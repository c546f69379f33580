// Package pollio turns a process's blocking stdio pipes into descriptors
// Go's poller can wait on, so a pending read parks a goroutine instead of
// a thread and can be interrupted with a deadline: the ProxyCommand's
// stdio in tunnel, run's stdin in the CLI.
package pollio
