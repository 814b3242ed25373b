package fs

import "github.com/hanwen/go-fuse/v2/fuse"

// ignoreInterrupts serves a filesystem whose every request runs to
// completion even when the kernel interrupts it. The kernel interrupts a
// request whenever its caller receives any signal it handles: Go programs
// get SIGURG all the time, C programs with a SIGCHLD or timer handler get
// them too. Giving up would fail a stat, read or getxattr with EINTR, which
// few programs retry, and would abandon an upload, copy or rename halfway,
// failing a close() that should have succeeded or leaving a rename half
// done. A fatal signal still ends the caller at once (the kernel stops
// waiting), and the backend's timeouts bound every request. Only SetLkw
// stays interruptible, as a blocked lock wait must be.
//
// Nodes therefore never see a cancelled context from a signal.
type ignoreInterrupts struct {
	fuse.RawFileSystem
}

func (f ignoreInterrupts) Lookup(_ <-chan struct{}, header *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	return f.RawFileSystem.Lookup(nil, header, name, out)
}

func (f ignoreInterrupts) GetAttr(_ <-chan struct{}, input *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	return f.RawFileSystem.GetAttr(nil, input, out)
}

func (f ignoreInterrupts) SetAttr(_ <-chan struct{}, input *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	return f.RawFileSystem.SetAttr(nil, input, out)
}

func (f ignoreInterrupts) Mknod(_ <-chan struct{}, input *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	return f.RawFileSystem.Mknod(nil, input, name, out)
}

func (f ignoreInterrupts) Mkdir(_ <-chan struct{}, input *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	return f.RawFileSystem.Mkdir(nil, input, name, out)
}

func (f ignoreInterrupts) Unlink(_ <-chan struct{}, header *fuse.InHeader, name string) fuse.Status {
	return f.RawFileSystem.Unlink(nil, header, name)
}

func (f ignoreInterrupts) Rmdir(_ <-chan struct{}, header *fuse.InHeader, name string) fuse.Status {
	return f.RawFileSystem.Rmdir(nil, header, name)
}

func (f ignoreInterrupts) Rename(_ <-chan struct{}, input *fuse.RenameIn, oldName string, newName string) fuse.Status {
	return f.RawFileSystem.Rename(nil, input, oldName, newName)
}

func (f ignoreInterrupts) Link(_ <-chan struct{}, input *fuse.LinkIn, filename string, out *fuse.EntryOut) fuse.Status {
	return f.RawFileSystem.Link(nil, input, filename, out)
}

func (f ignoreInterrupts) Symlink(_ <-chan struct{}, header *fuse.InHeader, pointedTo string, linkName string, out *fuse.EntryOut) fuse.Status {
	return f.RawFileSystem.Symlink(nil, header, pointedTo, linkName, out)
}

func (f ignoreInterrupts) Readlink(_ <-chan struct{}, header *fuse.InHeader) ([]byte, fuse.Status) {
	return f.RawFileSystem.Readlink(nil, header)
}

func (f ignoreInterrupts) Access(_ <-chan struct{}, input *fuse.AccessIn) fuse.Status {
	return f.RawFileSystem.Access(nil, input)
}

func (f ignoreInterrupts) GetXAttr(_ <-chan struct{}, header *fuse.InHeader, attr string, dest []byte) (uint32, fuse.Status) {
	return f.RawFileSystem.GetXAttr(nil, header, attr, dest)
}

func (f ignoreInterrupts) ListXAttr(_ <-chan struct{}, header *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	return f.RawFileSystem.ListXAttr(nil, header, dest)
}

func (f ignoreInterrupts) SetXAttr(_ <-chan struct{}, input *fuse.SetXAttrIn, attr string, data []byte) fuse.Status {
	return f.RawFileSystem.SetXAttr(nil, input, attr, data)
}

func (f ignoreInterrupts) RemoveXAttr(_ <-chan struct{}, header *fuse.InHeader, attr string) fuse.Status {
	return f.RawFileSystem.RemoveXAttr(nil, header, attr)
}

func (f ignoreInterrupts) Create(_ <-chan struct{}, input *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	return f.RawFileSystem.Create(nil, input, name, out)
}

func (f ignoreInterrupts) Tmpfile(_ <-chan struct{}, input *fuse.CreateIn, out *fuse.CreateOut) fuse.Status {
	return f.RawFileSystem.Tmpfile(nil, input, out)
}

func (f ignoreInterrupts) Open(_ <-chan struct{}, input *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return f.RawFileSystem.Open(nil, input, out)
}

func (f ignoreInterrupts) Read(_ <-chan struct{}, input *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	return f.RawFileSystem.Read(nil, input, buf)
}

func (f ignoreInterrupts) Lseek(_ <-chan struct{}, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Status {
	return f.RawFileSystem.Lseek(nil, in, out)
}

func (f ignoreInterrupts) GetLk(_ <-chan struct{}, input *fuse.LkIn, out *fuse.LkOut) fuse.Status {
	return f.RawFileSystem.GetLk(nil, input, out)
}

func (f ignoreInterrupts) SetLk(_ <-chan struct{}, input *fuse.LkIn) fuse.Status {
	return f.RawFileSystem.SetLk(nil, input)
}

func (f ignoreInterrupts) Release(_ <-chan struct{}, input *fuse.ReleaseIn) {
	f.RawFileSystem.Release(nil, input)
}

func (f ignoreInterrupts) Write(_ <-chan struct{}, input *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	return f.RawFileSystem.Write(nil, input, data)
}

func (f ignoreInterrupts) Writev(_ <-chan struct{}, input *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	return f.RawFileSystem.Writev(nil, input, data)
}

func (f ignoreInterrupts) CopyFileRange(_ <-chan struct{}, input *fuse.CopyFileRangeIn) (uint32, fuse.Status) {
	return f.RawFileSystem.CopyFileRange(nil, input)
}

func (f ignoreInterrupts) Ioctl(_ <-chan struct{}, input *fuse.IoctlIn, inbuf []byte, output *fuse.IoctlOut, outbuf []byte) fuse.Status {
	return f.RawFileSystem.Ioctl(nil, input, inbuf, output, outbuf)
}

func (f ignoreInterrupts) Flush(_ <-chan struct{}, input *fuse.FlushIn) fuse.Status {
	return f.RawFileSystem.Flush(nil, input)
}

func (f ignoreInterrupts) Fsync(_ <-chan struct{}, input *fuse.FsyncIn) fuse.Status {
	return f.RawFileSystem.Fsync(nil, input)
}

func (f ignoreInterrupts) Fallocate(_ <-chan struct{}, input *fuse.FallocateIn) fuse.Status {
	return f.RawFileSystem.Fallocate(nil, input)
}

func (f ignoreInterrupts) OpenDir(_ <-chan struct{}, input *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return f.RawFileSystem.OpenDir(nil, input, out)
}

func (f ignoreInterrupts) ReadDir(_ <-chan struct{}, input *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return f.RawFileSystem.ReadDir(nil, input, out)
}

func (f ignoreInterrupts) ReadDirPlus(_ <-chan struct{}, input *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return f.RawFileSystem.ReadDirPlus(nil, input, out)
}

func (f ignoreInterrupts) FsyncDir(_ <-chan struct{}, input *fuse.FsyncIn) fuse.Status {
	return f.RawFileSystem.FsyncDir(nil, input)
}

func (f ignoreInterrupts) StatFs(_ <-chan struct{}, input *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	return f.RawFileSystem.StatFs(nil, input, out)
}

func (f ignoreInterrupts) Statx(_ <-chan struct{}, input *fuse.StatxIn, out *fuse.StatxOut) fuse.Status {
	return f.RawFileSystem.Statx(nil, input, out)
}
