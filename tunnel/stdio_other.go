//go:build !unix

package tunnel

import "os"

// pollable has nothing to do here: Go reads and writes Windows pipes
// through their handles as they are.
func pollable(*os.File, int) (*os.File, func()) { return nil, nil }
