package backend

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ClockSlack is how far the server's clock, which dates an upload's start,
// may be from this machine's, which dated the request.
const ClockSlack = time.Minute

// AbortUploadsStarted aborts the open uploads of key that began between
// from and to by this machine's clock (ClockSlack wider on both sides),
// except keep, and reports how many it aborted. It finds the uploads a
// start request made when its outcome was not seen: a reply lost and the
// request retried, or the client gone before the reply came. Another
// client's upload of the same key begun in that window is aborted too;
// its completion then fails, and that client can retry.
func AbortUploadsStarted(ctx context.Context, b Bucket, key string, from, to time.Time, keep string) (int, error) {
	uploads, err := b.ListUploads(ctx, key)
	if err != nil {
		return 0, err
	}
	aborted := 0
	var errs []error
	for _, u := range uploads {
		if u.ID == keep || u.Initiated.Before(from.Add(-ClockSlack)) || u.Initiated.After(to.Add(ClockSlack)) {
			continue
		}
		if err := b.AbortUpload(ctx, key, u.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		aborted++
	}
	if err := errors.Join(errs...); err != nil {
		return aborted, fmt.Errorf("abort the uploads of %q begun since %v: %w", key, from.Format(time.RFC3339), err)
	}
	return aborted, nil
}
