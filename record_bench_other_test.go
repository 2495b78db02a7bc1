//go:build !unix

package audit

// recBenchSettle has nothing to do where there is no sync(2).
func recBenchSettle() {}
