package main

type option struct {
	name string // canonical spelling, with hyphens
	arg  string // value placeholder in Usage; "" for a boolean option
	def  string // the default, as Usage shows it
	help string
	set  func(o *Options, value string) error // a boolean option gets "true" or "false"
}

// mountOptions is in the order Usage lists them.
var mountOptions = []option{
	{"foreground", "", "off", "stay attached and log to stderr",
		func(o *Options, v string) error { o.Foreground = v == "true"; return nil }},
	{"all-buckets", "", "off", "mount the account: each bucket is a top-level directory",
		func(o *Options, v string) error { o.AllBuckets = v == "true"; return nil }},
	{"provider", providerNames, "none: AWS, or the server at --endpoint-url", "the S3 service: sets its endpoint, addressing and known features, and refuses options it cannot honour", setProvider},
	{"account-id", "ID", "none", "account of --provider r2 (its endpoint is https://ID.r2.cloudflarestorage.com)",
		func(o *Options, v string) error { o.AccountID = v; return nil }},
	{"endpoint-url", "URL", "AWS_ENDPOINT_URL, the provider's or AWS", "S3 endpoint, e.g. http://127.0.0.1:9000", setEndpointURL},
	{"region", "REGION", "discovered from the bucket", "bucket region",
		func(o *Options, v string) error { o.Region = v; return nil }},
	{"profile", "NAME", "AWS_PROFILE or default", "profile of ~/.aws/config and ~/.aws/credentials",
		func(o *Options, v string) error { o.Profile = v; return nil }},
	{"path-style", "", "off", "force path-style addressing (MinIO, most S3-compatible servers)",
		func(o *Options, v string) error { o.PathStyle = v == "true"; return nil }},
	{"read-only", "", "off", "refuse every change (also -o ro; -o rw undoes it)",
		func(o *Options, v string) error { o.ReadOnly = v == "true"; return nil }},
	{"uid", "N", "mounting user", "owner of objects without x-amz-meta-uid",
		func(o *Options, v string) (err error) { o.UID, err = parseID(v); return err }},
	{"gid", "N", "mounting user", "group of objects without x-amz-meta-gid",
		func(o *Options, v string) (err error) { o.GID, err = parseID(v); return err }},
	{"file-mode", "OCTAL", "0644", "permissions of files without x-amz-meta-mode",
		func(o *Options, v string) (err error) { o.FileMode, err = parseMode(v); return err }},
	{"dir-mode", "OCTAL", "0755", "permissions of directories without x-amz-meta-mode",
		func(o *Options, v string) (err error) { o.DirMode, err = parseMode(v); return err }},
	{"write-back", "", "off", "close returns once the file is durable in the journal under --cache-dir; uploads follow in the background (fsync still waits for S3)",
		func(o *Options, v string) error { o.WriteBack = v == "true"; return nil }},
	{"allow-other", "", "off", "let other users use the mount (needs user_allow_other in /etc/fuse.conf)",
		func(o *Options, v string) error { o.AllowOther = v == "true"; return nil }},
	{"stat-ttl", "DUR", "60s", "longest time attributes and listings stay cached",
		func(o *Options, v string) (err error) { o.StatTTL, err = parseDuration(v); return err }},
	{"negative-ttl", "DUR", "5s", "longest time \"does not exist\" stays cached",
		func(o *Options, v string) (err error) { o.NegativeTTL, err = parseDuration(v); return err }},
	{"posix-metadata", "auto|always|never", "auto; always with --allow-other",
		"HEAD objects a listing shows without headers (AWS, most servers) for their modes and owners: auto samples 3 a directory and HEADs the rest only if the sample has them",
		setPosixMetadata},
	{"cache-entries", "N", "100000", "most entries in the metadata cache",
		func(o *Options, v string) (err error) { o.CacheEntries, err = parseCount(v, 0); return err }},
	{"cache-dir", "DIR", "/var/cache/bucketfs for root, else $XDG_CACHE_HOME/bucketfs or ~/.cache/bucketfs", "where written data is staged and journaled until uploaded (0700, the mounting user's)", setCacheDir},
	{"part-size", "SIZE", "8MiB", "multipart part size, grown so a file needs at most 10,000 parts", setPartSize},
	{"upload-concurrency", "N", "8", "parts uploaded in parallel per file",
		func(o *Options, v string) (err error) { o.UploadConcurrency, err = parseCount(v, 1); return err }},
	{"read-ahead", "SIZE", "64MiB", "largest prefetch window of a sequential reader",
		func(o *Options, v string) (err error) { o.ReadAhead, err = parseSize(v); return err }},
	{"cache-size", "SIZE", "0 (off)", "fetched data kept on disk under --cache-dir after close and across mounts, by ETag, least recently used evicted",
		func(o *Options, v string) (err error) { o.CacheSize, err = parseSize(v); return err }},
	{"fetch-whole", "SIZE", "1GiB", "largest object fetched whole in the background (to --cache-dir) once read at random; 0 never",
		func(o *Options, v string) (err error) { o.FetchWhole, err = parseSize(v); return err }},
	{"storage-class", "CLASS", "bucket default", "storage class of new objects, e.g. STANDARD_IA (the server checks it)",
		func(o *Options, v string) error { o.StorageClass = v; return nil }},
	{"sse", "AES256|aws:kms", "bucket default", "server-side encryption of new objects", setSSE},
	{"sse-kms-key-id", "ID", "the account's aws/s3 key", "KMS key for --sse aws:kms",
		func(o *Options, v string) error { o.SSEKMSKeyID = v; return nil }},
	{"acl", "CANNED", "none sent", "canned ACL of new objects, e.g. bucket-owner-full-control", setACL},
	{"presign-expiry", "DUR", "1h", "lifetime of user.s3.presigned_url, at most 7 days",
		func(o *Options, v string) (err error) { o.PresignExpiry, err = parseExpiry(v); return err }},
	{"as-of", "TIME", "now", "read-only view of a versioned bucket as it was at TIME (RFC 3339)", setAsOf},
	{"debug", "", "off", "log at debug level, every request included",
		func(o *Options, v string) error { o.Debug = v == "true"; return nil }},
	{"log-file", "FILE", "stderr while attached", "write the log here",
		func(o *Options, v string) error { o.LogFile = v; return nil }},
	{"log-format", "text|json", "text", "format of log lines", setLogFormat},
	{"metrics-addr", "HOST:PORT", "off", "serve Prometheus metrics at /metrics", setMetricsAddr},
	{"request-price", "NAME=USD", defaultPricesNote, "dollars per 1,000 requests in the cost estimate (metrics, user.s3.stats) of a class (write, read, delete) or an S3 operation (GetObject); repeat for more",
		func(o *Options, v string) (err error) {
			o.RequestPrices, err = withRequestPrice(o.prices(), v)
			return err
		}},
}
