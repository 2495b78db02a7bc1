//go:build unix

package audit

import "syscall"

// recBenchSettle writes out what earlier benchmarks left dirty in the page
// cache before the next one starts, so that the kernel's writeback of their
// files does not compete with this benchmark's fsyncs.
func recBenchSettle() { syscall.Sync() }
