package fs

import (
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/bucketfs/bucketfs/cache"
)

// viewResult is a read reply written straight from the reader's buffers
// (writev of its slices); go-fuse calls Done once the reply is written,
// which gives the buffers back. It skips Done for a reply without data,
// whose view holds no buffer.
type viewResult struct{ view *cache.View }

func (r viewResult) Size() int                       { return r.view.Len() }
func (r viewResult) Done()                           { r.view.Release() }
func (r viewResult) Slices() ([][]byte, fuse.Status) { return r.view.Slices, fuse.OK }

// Bytes serves the paths of go-fuse that want one buffer.
func (r viewResult) Bytes(buf []byte) ([]byte, fuse.Status) {
	buf = buf[:0]
	for _, s := range r.view.Slices {
		buf = append(buf, s...)
	}
	return buf, fuse.OK
}
