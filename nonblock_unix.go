//go:build unix

package audit

import "syscall"

// openNonblock opens a file without waiting: opening a named pipe for
// reading would otherwise wait for a writer (see anchors.readFile).
const openNonblock = syscall.O_NONBLOCK

// errNoReader is what opening a named pipe for writing without waiting
// fails with when no one reads it.
var errNoReader error = syscall.ENXIO
