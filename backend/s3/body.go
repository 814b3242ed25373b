package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/bucketfs/bucketfs/backend"
)

// watchedBody is the body of a Get. It cancels the request when a Read gets
// no bytes for the stall timeout, so a hung server cannot block a reader,
// while a slow reader between Reads is never cut off.
type watchedBody struct {
	body   io.ReadCloser
	key    string
	ctx    context.Context // the caller's
	reqCtx context.Context
	cancel context.CancelCauseFunc
	stall  time.Duration
	timer  *time.Timer
	read   *atomic.Int64 // the bucket's count of bytes read
}

func newWatchedBody(ctx, reqCtx context.Context, cancel context.CancelCauseFunc, body io.ReadCloser, key string, stall time.Duration, read *atomic.Int64) *watchedBody {
	b := &watchedBody{body: body, key: key, ctx: ctx, reqCtx: reqCtx, cancel: cancel, stall: stall, read: read}
	b.timer = time.AfterFunc(stall, func() { cancel(fmt.Errorf("no data for %v", stall)) })
	b.timer.Stop()
	return b
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.stall)
	n, err := b.body.Read(p)
	b.timer.Stop()
	b.read.Add(int64(n))
	if err == nil || err == io.EOF {
		return n, err
	}
	switch {
	case b.ctx.Err() != nil:
		err = b.ctx.Err()
	case b.reqCtx.Err() != nil:
		err = fmt.Errorf("%w: %v", backend.ErrUnavailable, context.Cause(b.reqCtx))
	case !errors.Is(err, backend.ErrUnavailable):
		// The connection broke (reset, or closed before the end).
		err = fmt.Errorf("%w: %v", backend.ErrUnavailable, err)
	}
	return n, fmt.Errorf("get %q: read body: %w", b.key, err)
}

func (b *watchedBody) Close() error {
	b.timer.Stop()
	err := b.body.Close()
	b.cancel(nil)
	return err
}

// progressBody is the body of a Put. Every Read pushes the request's
// deadline back, so an upload fails when it stops making progress rather
// than after a fixed time.
type progressBody struct {
	io.ReadSeeker
	timer   *time.Timer
	timeout time.Duration
}

func (b *progressBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.timeout)
	return b.ReadSeeker.Read(p)
}

// seekable returns the body of a Put as a ReadSeeker: the SDK needs to hash
// it and to rewind it for retries. Other readers are read into memory.
func seekable(in backend.PutInput) (io.ReadSeeker, error) {
	if rs, ok := in.Body.(io.ReadSeeker); ok {
		return rs, nil
	}
	data, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if in.Size >= 0 && int64(len(data)) != in.Size {
		return nil, fmt.Errorf("body has %d bytes, want %d: %w", len(data), in.Size, backend.ErrInvalid)
	}
	return bytes.NewReader(data), nil
}
