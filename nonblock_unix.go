//go:build unix

package audit

import "syscall"

// openNonblock opens a file without waiting: opening a named pipe for
// reading would otherwise wait for a writer (see anchors.readFile).
const openNonblock = syscall.O_NONBLOCK
