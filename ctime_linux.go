package audit

import (
	"os"
	"syscall"
)

// changeTime is fi's change time (ctime) in nanoseconds, which every change
// to a file or folder sets and no one can set back (see folderMark).
func changeTime(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ctim.Nano()
	}
	return 0
}
