package s3

// SetCopyLimits lowers the source size above which Copy copies in parts and
// the size of those parts, so tests exercise UploadPartCopy with small
// objects.
func (s *Bucket) SetCopyLimits(threshold, partSize int64) {
	s.copyThreshold, s.copyPartSize = threshold, partSize
}

var CopySource = copySource
var CopySourceVersion = copySourceVersion
