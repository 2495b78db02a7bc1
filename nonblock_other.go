//go:build !unix

package audit

import "errors"

// openNonblock is zero where there are no named pipes to wait on.
const openNonblock = 0

// errNoReader is never returned where there are no named pipes.
var errNoReader = errors.New("no reader")
