//go:build !linux

package iap

import (
	"net"
	"os"
)

// rawIO is Linux only; elsewhere the usual calls are used.
type rawIO struct{}

func connRawIO(net.Conn) *rawIO          { return nil }
func fileRawIO(*os.File) *rawIO          { return nil }
func (*rawIO) Read([]byte) (int, error)  { panic("unreachable") }
func (*rawIO) Write([]byte) (int, error) { panic("unreachable") }
