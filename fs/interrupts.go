package fs

import "github.com/hanwen/go-fuse/v2/fuse"

// ignoreInterrupts serves a filesystem whose lookups, reads and listings
// run to completion even when the kernel interrupts them. The kernel
// interrupts a request whenever its caller receives any signal it handles:
// Go programs get SIGURG all the time, and C programs with a SIGCHLD or
// timer handler get them too. Giving up would fail their stat, read or
// getxattr with EINTR, which few programs retry. A fatal signal still ends
// the caller at once (the kernel stops waiting), and the backend's
// timeouts bound every request. Operations that change the bucket get the
// same treatment in the node code (uninterrupted); SetLkw stays
// interruptible, as a blocked lock wait must be.
type ignoreInterrupts struct {
	fuse.RawFileSystem
}

func (f ignoreInterrupts) Lookup(_ <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	return f.RawFileSystem.Lookup(nil, h, name, out)
}

func (f ignoreInterrupts) GetAttr(_ <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	return f.RawFileSystem.GetAttr(nil, in, out)
}

func (f ignoreInterrupts) Statx(_ <-chan struct{}, in *fuse.StatxIn, out *fuse.StatxOut) fuse.Status {
	return f.RawFileSystem.Statx(nil, in, out)
}

func (f ignoreInterrupts) Access(_ <-chan struct{}, in *fuse.AccessIn) fuse.Status {
	return f.RawFileSystem.Access(nil, in)
}

func (f ignoreInterrupts) Readlink(_ <-chan struct{}, h *fuse.InHeader) ([]byte, fuse.Status) {
	return f.RawFileSystem.Readlink(nil, h)
}

func (f ignoreInterrupts) GetXAttr(_ <-chan struct{}, h *fuse.InHeader, attr string, dest []byte) (uint32, fuse.Status) {
	return f.RawFileSystem.GetXAttr(nil, h, attr, dest)
}

func (f ignoreInterrupts) ListXAttr(_ <-chan struct{}, h *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	return f.RawFileSystem.ListXAttr(nil, h, dest)
}

func (f ignoreInterrupts) Open(_ <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return f.RawFileSystem.Open(nil, in, out)
}

func (f ignoreInterrupts) Read(_ <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	return f.RawFileSystem.Read(nil, in, buf)
}

func (f ignoreInterrupts) Lseek(_ <-chan struct{}, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Status {
	return f.RawFileSystem.Lseek(nil, in, out)
}

func (f ignoreInterrupts) OpenDir(_ <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return f.RawFileSystem.OpenDir(nil, in, out)
}

func (f ignoreInterrupts) ReadDir(_ <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return f.RawFileSystem.ReadDir(nil, in, out)
}

func (f ignoreInterrupts) ReadDirPlus(_ <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return f.RawFileSystem.ReadDirPlus(nil, in, out)
}

func (f ignoreInterrupts) StatFs(_ <-chan struct{}, h *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	return f.RawFileSystem.StatFs(nil, h, out)
}
