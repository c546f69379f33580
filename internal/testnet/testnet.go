// Package testnet runs loopback servers for tests, such as the service
// behind an emulated node's port.
package testnet

import (
	"net"
	"sync"
	"testing"
)

// Serve listens on 127.0.0.1:0 and runs handle on each connection in its
// own goroutine, returning the address. Handlers own their connections.
// When the test ends it closes the listener and every connection, and waits
// for the handlers, so none outlives the test.
func Serve(tb testing.TB, handle func(net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// Refused returns a loopback address where connections are refused until
// the test ends. Its port is held by one end of a connection, which no
// listener can bind: a port merely found free could be taken by another
// program before the test dials it.
func Refused(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	held, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	other, err := ln.Accept()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		held.Close()
		other.Close()
	})
	return held.LocalAddr().String()
}
