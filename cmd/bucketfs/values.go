package main

// The parsers of option values: durations, sizes, modes, and the options
// whose values need checking beyond their type.

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// parseDuration reads Go durations ("90s", "1h30m"), whole days ("7d"), and
// plain numbers as seconds, as s3fs's stat_cache_expire=900 means.
func parseDuration(v string) (time.Duration, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return scaleDuration(n, time.Second)
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		if n, err := strconv.ParseInt(days, 10, 64); err == nil {
			return scaleDuration(n, 24*time.Hour)
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New("want a duration such as 90s, 5m, 1h or 7d")
	}
	if d < 0 {
		return 0, errors.New("must not be negative")
	}
	return d, nil
}

func scaleDuration(n int64, unit time.Duration) (time.Duration, error) {
	if n < 0 {
		return 0, errors.New("must not be negative")
	}
	if n > math.MaxInt64/int64(unit) {
		return 0, errors.New("too long")
	}
	return time.Duration(n) * unit, nil
}

func parseExpiry(v string) (time.Duration, error) {
	d, err := parseDuration(v)
	if err != nil {
		return 0, err
	}
	if d < minExpiry || d > maxExpiry {
		return 0, errExpiryRange
	}
	return d, nil
}

// parseSize reads a byte count with an optional unit, case-insensitive:
// K, M, G, T and KiB, MiB, GiB, TiB are powers of 1024 (as dd and the mount
// options of the kernel mean them); KB, MB, GB, TB are powers of 1000.
func parseSize(v string) (int64, error) {
	digits, unit := v, ""
	if i := strings.IndexFunc(v, func(c rune) bool { return c < '0' || c > '9' }); i >= 0 {
		digits, unit = v[:i], strings.ToLower(strings.TrimSpace(v[i:]))
	}
	scale := map[string]int64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20,
		"g": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tib": 1 << 40,
		"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	}[unit]
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || scale == 0 {
		return 0, errors.New("want a size such as 8MiB, 512K, 1G or 1000000")
	}
	if n > math.MaxInt64/scale {
		return 0, errors.New("too large")
	}
	return n * scale, nil
}

// parseMode reads permission bits in octal, with or without the leading 0,
// as mount options always mean them.
func parseMode(v string) (uint32, error) {
	m, err := strconv.ParseUint(v, 8, 32)
	if err != nil || m > 0o777 {
		return 0, errors.New("want permission bits in octal, such as 0644")
	}
	return uint32(m), nil
}

func parseID(v string) (uint32, error) {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, errors.New("want a numeric id")
	}
	return uint32(n), nil
}

func parseCount(v string, min int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < min {
		return 0, fmt.Errorf("want a whole number of at least %d", min)
	}
	return n, nil
}

func setEndpointURL(o *Options, v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want http://HOST[:PORT] or https://HOST[:PORT]")
	}
	o.EndpointURL = v
	return nil
}

func setCacheDir(o *Options, v string) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	o.CacheDir = v
	return nil
}

func setPartSize(o *Options, v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	if n < minPartSize || n > maxPartSize {
		return errors.New("S3 needs parts between 5MiB and 5GiB")
	}
	o.PartSize = n
	return nil
}

func setSSE(o *Options, v string) error {
	switch {
	case strings.EqualFold(v, "AES256"):
		o.SSE = "AES256"
	case strings.EqualFold(v, "aws:kms"):
		o.SSE = "aws:kms"
	default:
		return errors.New("want AES256 or aws:kms")
	}
	return nil
}

func setPosixMetadata(o *Options, v string) error {
	switch v {
	case "auto", "always", "never":
		o.PosixMetadata = v
		return nil
	}
	return errors.New("want auto, always or never")
}

// posixMetadata is --posix-metadata as the mount applies it. Unset, it is
// auto, except with --allow-other: there the kernel enforces the modes
// shown, so a 0600 file must not show as --file-mode until a HEAD.
func (o Options) posixMetadata() string {
	switch {
	case o.PosixMetadata != "":
		return o.PosixMetadata
	case o.AllowOther:
		return "always"
	}
	return "auto"
}

// cannedACLs are the ones S3 defines; a typo fails here, not on the first upload.
var cannedACLs = []string{"private", "public-read", "public-read-write", "authenticated-read",
	"aws-exec-read", "bucket-owner-read", "bucket-owner-full-control", "log-delivery-write"}

func setACL(o *Options, v string) error {
	for _, acl := range cannedACLs {
		if v == acl {
			o.ACL = v
			return nil
		}
	}
	return fmt.Errorf("want a canned ACL: %s", strings.Join(cannedACLs, ", "))
}

func setAsOf(o *Options, v string) error {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return errors.New("want an RFC 3339 time such as 2024-05-01T12:00:00Z")
	}
	o.AsOf = t
	return nil
}

func setMetricsAddr(o *Options, v string) error {
	if _, _, err := net.SplitHostPort(v); err != nil {
		return errors.New("want HOST:PORT, such as 127.0.0.1:9100 or :9100")
	}
	o.MetricsAddr = v
	return nil
}

func setLogFormat(o *Options, v string) error {
	if v != "text" && v != "json" {
		return errors.New("want text or json")
	}
	o.LogFormat = v
	return nil
}
