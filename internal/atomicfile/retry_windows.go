package atomicfile

import (
	"errors"

	"golang.org/x/sys/windows"
)

// transient reports the errors a rename gets while another process holds
// the target open without FILE_SHARE_DELETE, the ones cmd/go's robustio
// retries.
func transient(err error) bool {
	return errors.Is(err, windows.ERROR_ACCESS_DENIED) || errors.Is(err, windows.ERROR_SHARING_VIOLATION)
}
