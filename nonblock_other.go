//go:build !unix

package audit

// openNonblock is zero where there are no named pipes to wait on.
const openNonblock = 0
