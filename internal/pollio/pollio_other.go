//go:build !unix

package pollio

import "os"

// Pollable has nothing to do here: Go reads and writes Windows pipes
// through their handles as they are.
func Pollable(*os.File, int) (*os.File, func()) { return nil, nil }
