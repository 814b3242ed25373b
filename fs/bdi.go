package fs

import (
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// setKernelReadAhead raises the kernel's read-ahead for the mount to kb
// KiB. FUSE starts every mount at 128 KiB whatever max_read says, so a
// sequential reader costs a round trip per 128 KiB; at 1 MiB the kernel
// asks for data in max_read-sized requests. Only root may write the knob.
func setKernelReadAhead(mountpoint string, kb int) error {
	var st syscall.Stat_t
	if err := syscall.Stat(mountpoint, &st); err != nil {
		return err
	}
	knob := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	return os.WriteFile(knob, []byte(strconv.Itoa(kb)), 0)
}
