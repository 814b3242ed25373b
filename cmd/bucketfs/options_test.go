package main

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend/s3"
)

func noEnv(string) string { return "" }

// defaults is what `bucketfs b /m` yields.
func defaults() Options {
	return Options{
		Bucket: "b0b", Mountpoint: "/m",
		UID: uint32(os.Getuid()), GID: uint32(os.Getgid()),
		FileMode: 0o644, DirMode: 0o755,
		StatTTL: 60 * time.Second, NegativeTTL: 5 * time.Second,
		CacheEntries: 100000, CacheDir: defaultCacheDir(os.Getuid(), noEnv),
		PartSize: 8 << 20, UploadConcurrency: 8, ReadAhead: 64 << 20,
		FetchWhole: 1 << 30, PresignExpiry: time.Hour,
	}
}

func parseMountOK(t *testing.T, args ...string) Options {
	t.Helper()
	cmd, err := ParseArgs(args, noEnv)
	if err != nil {
		t.Fatalf("ParseArgs(%q): %v", args, err)
	}
	if cmd.Kind != KindMount {
		t.Fatalf("ParseArgs(%q).Kind = %q, want mount", args, cmd.Kind)
	}
	return cmd.Mount
}

func TestParseArgsDefaults(t *testing.T) {
	if got, want := parseMountOK(t, "b0b", "/m"), defaults(); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

// valueCases is one value per option that takes one, with its effect.
var valueCases = []struct {
	name, value string
	want        func(o *Options)
}{
	{"endpoint-url", "http://127.0.0.1:9000", func(o *Options) { o.EndpointURL = "http://127.0.0.1:9000" }},
	{"region", "eu-west-1", func(o *Options) { o.Region = "eu-west-1" }},
	{"profile", "work", func(o *Options) { o.Profile = "work" }},
	{"uid", "1000", func(o *Options) { o.UID = 1000 }},
	{"gid", "1001", func(o *Options) { o.GID = 1001 }},
	{"file-mode", "0640", func(o *Options) { o.FileMode = 0o640 }},
	{"dir-mode", "750", func(o *Options) { o.DirMode = 0o750 }},
	{"stat-ttl", "30s", func(o *Options) { o.StatTTL = 30 * time.Second }},
	{"negative-ttl", "1m", func(o *Options) { o.NegativeTTL = time.Minute }},
	{"posix-metadata", "never", func(o *Options) { o.PosixMetadata = "never" }},
	{"cache-entries", "500", func(o *Options) { o.CacheEntries = 500 }},
	{"cache-dir", "/tmp/c", func(o *Options) { o.CacheDir = "/tmp/c" }},
	{"part-size", "16MiB", func(o *Options) { o.PartSize = 16 << 20 }},
	{"upload-concurrency", "4", func(o *Options) { o.UploadConcurrency = 4 }},
	{"read-ahead", "128M", func(o *Options) { o.ReadAhead = 128 << 20 }},
	{"cache-size", "10GiB", func(o *Options) { o.CacheSize = 10 << 30 }},
	{"fetch-whole", "0", func(o *Options) { o.FetchWhole = 0 }},
	{"storage-class", "STANDARD_IA", func(o *Options) { o.StorageClass = "STANDARD_IA" }},
	{"sse", "aws:kms", func(o *Options) { o.SSE = "aws:kms" }},
	{"sse-kms-key-id", "k1", func(o *Options) { o.SSE, o.SSEKMSKeyID = "aws:kms", "k1" }},
	{"acl", "bucket-owner-full-control", func(o *Options) { o.ACL = "bucket-owner-full-control" }},
	{"presign-expiry", "2h", func(o *Options) { o.PresignExpiry = 2 * time.Hour }},
	{"as-of", "2024-05-01T12:00:00Z", func(o *Options) {
		o.AsOf, o.ReadOnly = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), true
	}},
	{"log-file", "/tmp/log", func(o *Options) { o.LogFile = "/tmp/log" }},
	{"metrics-addr", "127.0.0.1:9100", func(o *Options) { o.MetricsAddr = "127.0.0.1:9100" }},
	{"log-format", "json", func(o *Options) { o.LogFormat = "json" }},
	{"provider", "gcs", func(o *Options) {
		o.Provider, o.EndpointURL, o.Region, o.ListingHeaders = "gcs", "https://storage.googleapis.com", "auto", s3.ListingHeadersOff
	}},
	{"account-id", "0123abcd", func(o *Options) {
		o.Provider, o.AccountID, o.EndpointURL, o.Region, o.ListingHeaders = "r2", "0123abcd", "https://0123abcd.r2.cloudflarestorage.com", "auto", s3.ListingHeadersOff
	}},
	{"request-price", "GetObject=0.001", func(o *Options) {
		o.RequestPrices = requestPrices{"write": 0.005, "read": 0.0004, "delete": 0, "GetObject": 0.001}
	}},
}

var boolCases = []struct {
	name string
	want func(o *Options)
}{
	{"foreground", func(o *Options) { o.Foreground = true }},
	{"path-style", func(o *Options) { o.PathStyle = true }},
	{"read-only", func(o *Options) { o.ReadOnly = true }},
	{"allow-other", func(o *Options) { o.AllowOther = true }},
	{"debug", func(o *Options) { o.Debug = true }},
	{"write-back", func(o *Options) { o.WriteBack = true }},
}

func TestParseArgsEveryOptionCovered(t *testing.T) {
	covered := map[string]bool{"all-buckets": true} // TestParseArgsAllBuckets
	for _, c := range valueCases {
		covered[c.name] = true
	}
	for _, c := range boolCases {
		covered[c.name] = true
	}
	for _, opt := range mountOptions {
		if !covered[opt.name] {
			t.Errorf("--%s has no case in valueCases or boolCases", opt.name)
		}
	}
}

func TestParseArgsValueOptionForms(t *testing.T) {
	for _, c := range valueCases {
		under := strings.ReplaceAll(c.name, "-", "_")
		// sse-kms-key-id needs --sse aws:kms; the others ignore the extra -o.
		extra := []string{}
		switch c.name {
		case "sse-kms-key-id":
			extra = []string{"-o", "sse=aws:kms"}
		case "account-id":
			extra = []string{"-o", "provider=r2"}
		}
		forms := map[string][]string{
			"--x v":      {"--" + c.name, c.value, "b0b", "/m"},
			"--x=v":      {"b0b", "--" + c.name + "=" + c.value, "/m"},
			"--x_y=v":    {"b0b", "/m", "--" + under + "=" + c.value},
			"-o x_y=v":   {"b0b", "/m", "-o", under + "=" + c.value},
			"-o x-y=v":   {"-o", c.name + "=" + c.value, "b0b", "/m"},
			"-ox=v":      {"b0b", "/m", "-o" + under + "=" + c.value},
			"-o a,x=v,b": {"b0b", "/m", "-o", "ro,rw," + under + "=" + c.value + ",noatime"},
		}
		for form, args := range forms {
			args = append(args, extra...)
			want := defaults()
			c.want(&want)
			if got := parseMountOK(t, args...); !reflect.DeepEqual(got, want) {
				t.Errorf("%s %s: ParseArgs(%q)\ngot  %+v\nwant %+v", c.name, form, args, got, want)
			}
		}
	}
}

func TestParseArgsBoolOptionForms(t *testing.T) {
	for _, c := range boolCases {
		under := strings.ReplaceAll(c.name, "-", "_")
		on := defaults()
		c.want(&on)
		for _, tc := range []struct {
			args []string
			want Options
		}{
			{[]string{"--" + c.name, "b0b", "/m"}, on},
			{[]string{"b0b", "--" + under, "/m"}, on},
			{[]string{"b0b", "/m", "--" + c.name + "=true"}, on},
			{[]string{"b0b", "/m", "-o", under}, on},
			{[]string{"b0b", "/m", "-o" + c.name + "=1"}, on},
			{[]string{"b0b", "/m", "-o", under, "--" + c.name + "=false"}, defaults()},
			{[]string{"b0b", "/m", "-o", under + "=false"}, defaults()},
		} {
			if got := parseMountOK(t, tc.args...); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseArgs(%q)\ngot  %+v\nwant %+v", tc.args, got, tc.want)
			}
		}
	}
}

func TestParseArgsShortAndMountStyle(t *testing.T) {
	ro := defaults()
	ro.ReadOnly = true
	fg := defaults()
	fg.Foreground = true
	for _, tc := range []struct {
		args []string
		want Options
	}{
		{[]string{"-f", "b0b", "/m"}, fg},
		{[]string{"b0b", "/m", "-o", "ro"}, ro},
		{[]string{"b0b", "/m", "-oro"}, ro},
		{[]string{"b0b", "/m", "-o", "ro", "-o", "rw"}, defaults()},
		{[]string{"b0b", "/m", "--read-only", "-o", "rw"}, defaults()},
		{[]string{"b0b", "/m", "-o", ",,ro,"}, ro},
	} {
		if got := parseMountOK(t, tc.args...); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseArgs(%q)\ngot  %+v\nwant %+v", tc.args, got, tc.want)
		}
	}
}

func TestParseArgsPositionalsAnywhere(t *testing.T) {
	want := defaults()
	want.Bucket, want.Prefix, want.Mountpoint = "logs", "2024/", "/mnt/logs"
	want.Debug, want.StatTTL = true, 10*time.Second
	for _, args := range [][]string{
		{"--debug", "--stat-ttl", "10s", "logs:2024", "/mnt/logs"},
		{"logs:2024", "--debug", "/mnt/logs", "--stat-ttl=10s"},
		{"logs:2024", "/mnt/logs", "-o", "debug,stat_ttl=10s"},
		{"--debug", "logs:2024", "-ostat-ttl=10s", "/mnt/logs"},
	} {
		if got := parseMountOK(t, args...); !reflect.DeepEqual(got, want) {
			t.Errorf("ParseArgs(%q)\ngot  %+v\nwant %+v", args, got, want)
		}
	}
}

func TestParseArgsDoubleDashEndsOptions(t *testing.T) {
	got := parseMountOK(t, "-f", "--", "b0b", "-o")
	if got.Bucket != "b0b" || got.Mountpoint != "-o" || !got.Foreground {
		t.Errorf("got %+v, want bucket b0b, mountpoint -o, foreground", got)
	}
}

func TestParseArgsFstab(t *testing.T) {
	// What mount.fuse3 runs for the line
	// data:backups /mnt/backups fuse.bucketfs ro,allow_other,uid=1000,stat_ttl=10s,_netdev 0 0
	got := parseMountOK(t, "data:backups", "/mnt/backups", "-o",
		"rw,nosuid,nodev,ro,allow_other,uid=1000,stat_ttl=10s,_netdev,defaults,noauto,user=alice,x-systemd.automount,comment=x,noatime,sync,nofail")
	want := defaults()
	want.Bucket, want.Prefix, want.Mountpoint = "data", "backups/", "/mnt/backups"
	want.ReadOnly, want.AllowOther, want.UID, want.StatTTL = true, true, 1000, 10*time.Second
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestParseArgsAllBuckets(t *testing.T) {
	want := defaults()
	want.Bucket, want.AllBuckets = "", true
	for _, args := range [][]string{
		{"--all-buckets", "/m"},
		{"/m", "--all_buckets"},
		{"/m", "-o", "all_buckets"},
	} {
		if got := parseMountOK(t, args...); !reflect.DeepEqual(got, want) {
			t.Errorf("ParseArgs(%q)\ngot  %+v\nwant %+v", args, got, want)
		}
	}
}

func TestParseArgsBucketAndPrefix(t *testing.T) {
	for _, tc := range []struct{ arg, bucket, prefix string }{
		{"b0b", "b0b", ""},
		{"b0b:", "b0b", ""},
		{"b0b:/", "b0b", ""},
		{"b0b:a", "b0b", "a/"},
		{"b0b:a/b/", "b0b", "a/b/"},
		{"b0b:/a//b/", "b0b", "a/b/"},
		{"my.bucket-1:x:y", "my.bucket-1", "x:y/"},
		{"presign:", "presign", ""},
		{"version:", "version", ""},
		{"123", "123", ""},
	} {
		got := parseMountOK(t, tc.arg, "/m")
		if got.Bucket != tc.bucket || got.Prefix != tc.prefix {
			t.Errorf("%q: bucket %q prefix %q, want %q %q", tc.arg, got.Bucket, got.Prefix, tc.bucket, tc.prefix)
		}
	}
}

func TestDefaultCacheDir(t *testing.T) {
	for _, tc := range []struct {
		uid       int
		xdg, home string
		want      string
	}{
		{0, "/root/.cache", "/root", "/var/cache/bucketfs"}, // root's is system-wide, never shared
		{1000, "", "", "/var/cache/bucketfs-1000"},
		{1000, "/home/a/.cache", "/home/a", "/home/a/.cache/bucketfs"},
		{1000, "relative/cache", "/home/a", "/home/a/.cache/bucketfs"}, // the XDG spec says to ignore it
		{1000, "", "/home/a", "/home/a/.cache/bucketfs"},
	} {
		env := func(k string) string {
			switch k {
			case "XDG_CACHE_HOME":
				return tc.xdg
			case "HOME":
				return tc.home
			}
			return ""
		}
		if got := defaultCacheDir(tc.uid, env); got != tc.want || strings.HasPrefix(got, "/var/tmp") {
			t.Errorf("uid %d XDG_CACHE_HOME=%q HOME=%q: %q, want %q", tc.uid, tc.xdg, tc.home, got, tc.want)
		}
	}
	// nil env is the same as an empty environment
	if cmd, err := ParseArgs([]string{"b0b", "/m"}, nil); err != nil || cmd.Mount.CacheDir != defaultCacheDir(os.Getuid(), noEnv) {
		t.Errorf("nil env: %+v, %v", cmd.Mount, err)
	}
}

func TestParseArgsErrors(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		words []string // each must appear in the error
	}{
		{[]string{}, []string{"missing", "BUCKET", "MOUNTPOINT"}},
		{[]string{"b0b"}, []string{"missing MOUNTPOINT"}},
		{[]string{"b0b", ""}, []string{"MOUNTPOINT"}},
		{[]string{"b0b", "/m", "/n"}, []string{"too many arguments", `"/n"`}},
		{[]string{"--all-buckets"}, []string{"missing MOUNTPOINT"}},
		{[]string{"--all-buckets", "b0b", "/m"}, []string{"too many arguments", "--all-buckets"}},
		{[]string{"version", "/m"}, []string{"version", "no arguments"}},
		{[]string{"--frobnicate", "b0b", "/m"}, []string{`unknown option "--frobnicate"`}},
		{[]string{"b0b", "/m", "--frobnicate=1"}, []string{`unknown option "--frobnicate"`}},
		{[]string{"b0b", "/m", "-o", "frobnicate"}, []string{"unknown option", "frobnicate"}},
		{[]string{"b0b", "/m", "-x"}, []string{`unknown option "-x"`}},
		{[]string{"b0b", "/m", "-r"}, []string{`unknown option "-r"`}},
		{[]string{"b0b", "/m", "-d"}, []string{`unknown option "-d"`}},
		{[]string{"b0b", "/m", "-o"}, []string{"-o needs a value"}},
		{[]string{"b0b", "/m", "--region"}, []string{"--region needs a value"}},
		{[]string{"b0b", "/m", "-o", "stat_ttl"}, []string{"stat_ttl needs a value"}},
		{[]string{"b0b", "/m", "--stat-ttl", "soon"}, []string{"invalid", "--stat-ttl", "duration"}},
		{[]string{"b0b", "/m", "-o", "negative_ttl=-5s"}, []string{"invalid", "negative_ttl", "negative"}},
		{[]string{"b0b", "/m", "--file-mode", "0999"}, []string{"invalid", "--file-mode", "octal"}},
		{[]string{"b0b", "/m", "--dir-mode=01777"}, []string{"invalid", "--dir-mode", "permission bits"}},
		{[]string{"b0b", "/m", "--part-size", "8XB"}, []string{"invalid", "--part-size", "size"}},
		{[]string{"b0b", "/m", "--part-size", "1MiB"}, []string{"invalid", "--part-size", "5MiB"}},
		{[]string{"b0b", "/m", "--read-ahead", "-1"}, []string{"invalid", "--read-ahead", "size"}},
		{[]string{"b0b", "/m", "--upload-concurrency", "0"}, []string{"invalid", "--upload-concurrency", "at least 1"}},
		{[]string{"b0b", "/m", "--cache-entries", "many"}, []string{"invalid", "--cache-entries"}},
		{[]string{"b0b", "/m", "--cache-dir="}, []string{"invalid", "--cache-dir", "empty"}},
		{[]string{"b0b", "/m", "--uid", "-1"}, []string{"invalid", "--uid"}},
		{[]string{"b0b", "/m", "-o", "gid=staff"}, []string{"invalid", "gid"}},
		{[]string{"b0b", "/m", "--debug=maybe"}, []string{"invalid", "--debug", "true or false"}},
		{[]string{"b0b", "/m", "--presign-expiry", "8d"}, []string{"--presign-expiry", "expiry must be between 1s and 7 days"}},
		{[]string{"b0b", "/m", "--presign-expiry", "500ms"}, []string{"expiry must be between 1s and 7 days"}},
		{[]string{"b0b", "/m", "--as-of", "yesterday"}, []string{"invalid", "--as-of", "RFC 3339"}},
		{[]string{"b0b", "/m", "--as-of", "2024-05-01"}, []string{"--as-of", "RFC 3339"}},
		{[]string{"b0b", "/m", "--sse", "SSE-C"}, []string{"invalid", "--sse", "AES256", "aws:kms"}},
		{[]string{"b0b", "/m", "--sse-kms-key-id", "k1"}, []string{"--sse-kms-key-id", "--sse aws:kms"}},
		{[]string{"b0b", "/m", "--sse", "AES256", "--sse-kms-key-id", "k1"}, []string{"--sse-kms-key-id", "--sse aws:kms"}},
		{[]string{"b0b", "/m", "--acl", "everyone"}, []string{"invalid", "--acl", "canned ACL"}},
		{[]string{"b0b", "/m", "--endpoint-url", "localhost:9000"}, []string{"invalid", "--endpoint-url", "http://"}},
		{[]string{"b0b", "/m", "--metrics-addr", "9100"}, []string{"invalid", "--metrics-addr", "HOST:PORT"}},
		{[]string{"b0b", "/m", "--log-format", "xml"}, []string{"invalid", "--log-format", "text or json"}},
		{[]string{"b0b", "/m", "--provider", "s4"}, []string{"invalid", "--provider", "aws, r2, spaces, b2, wasabi, gcs, ceph, minio"}},
		{[]string{"b0b", "/m", "--provider", "r2"}, []string{"--provider r2 needs --account-id"}},
		{[]string{"b0b", "/m", "--provider", "r2", "--account-id", "a1", "--acl", "private"}, []string{"--acl cannot be honoured: Cloudflare R2 has no object ACLs"}},
		{[]string{"b0b", "/m", "--provider", "r2", "--account-id", "a1", "--as-of", "2024-05-01T12:00:00Z"}, []string{"--as-of cannot be honoured: Cloudflare R2 has no object versions"}},
		{[]string{"b0b", "/m", "--provider", "r2", "--account-id", "a1", "--region", "eu-west-1"}, []string{"--region eu-west-1 contradicts --provider r2"}},
		{[]string{"b0b", "/m", "--provider", "b2"}, []string{"--provider b2 needs --region", "s3.{region}.backblazeb2.com"}},
		{[]string{"b0b", "/m", "--provider", "b2", "--region", "us-west-004", "--sse", "aws:kms"}, []string{"--sse aws:kms cannot be honoured: Backblaze B2 has no SSE-KMS"}},
		{[]string{"b0b", "/m", "--provider", "minio"}, []string{"--provider minio needs --endpoint-url"}},
		{[]string{"b0b", "/m", "--provider", "minio", "--endpoint-url", "http://127.0.0.1:9000", "--acl", "private"}, []string{"--acl cannot be honoured: MinIO has no object ACLs"}},
		{[]string{"b0b", "/m", "--account-id", "a1"}, []string{"--account-id is for --provider r2"}},
		{[]string{"b0b", "/m", "--write-back", "--read-only"}, []string{"--write-back contradicts a read-only mount"}},
		{[]string{"b0b", "/m", "--request-price", "get=1"}, []string{"invalid", "--request-price", "price class"}},
		{[]string{"b0b", "/m", "--request-price", "write=cheap"}, []string{"invalid", "--request-price", "dollars per 1,000"}},
		{[]string{"b0b", "/m", "--request-price", "0.005"}, []string{"invalid", "--request-price", "NAME=DOLLARS"}},
		{[]string{"ab", "/m"}, []string{"invalid bucket name", "3 to 63"}},
		{[]string{strings.Repeat("a", 64), "/m"}, []string{"invalid bucket name", "3 to 63"}},
		{[]string{":prefix", "/m"}, []string{"invalid bucket name"}},
		{[]string{"My_Bucket", "/m"}, []string{"invalid bucket name", "lower-case"}},
		{[]string{"-bucket", "/m"}, []string{"unknown option"}},
		{[]string{"--", "-bucket", "/m"}, []string{"invalid bucket name", "start and end"}},
		{[]string{"bucket.", "/m"}, []string{"invalid bucket name", "start and end"}},
		{[]string{"my..bucket", "/m"}, []string{"invalid bucket name", "adjacent dots"}},
		{[]string{"192.168.1.1", "/m"}, []string{"invalid bucket name", "IP address"}},
		{[]string{"s3://b0b/x", "/m"}, []string{"invalid bucket name", "BUCKET:PREFIX"}},
		{[]string{"b0b:a/../b", "/m"}, []string{"invalid prefix", ".."}},
	} {
		cmd, err := ParseArgs(tc.args, noEnv)
		if err == nil {
			t.Errorf("ParseArgs(%q) = %+v, want an error", tc.args, cmd)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") {
			t.Errorf("ParseArgs(%q): error has several lines: %q", tc.args, msg)
		}
		for _, w := range tc.words {
			if !strings.Contains(msg, w) {
				t.Errorf("ParseArgs(%q) error %q lacks %q", tc.args, msg, w)
			}
		}
		if testing.Verbose() {
			t.Logf("%q: %v", tc.args, err)
		}
	}
}

func TestParseArgsRejectsCredentialOptions(t *testing.T) {
	const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	for _, args := range [][]string{
		{"b0b", "/m", "--aws-secret-access-key", secret},
		{"b0b", "/m", "--aws-secret-access-key=" + secret},
		{"--secret-access-key=" + secret, "b0b", "/m"},
		{"b0b", "/m", "-o", "secret_access_key=" + secret},
		{"b0b", "/m", "-o", "ro,aws_secret_access_key=" + secret + ",allow_other"},
		{"b0b", "/m", "-oaccess_key=" + secret},
		{"b0b", "/m", "--access-key-id", secret},
		{"b0b", "/m", "-o", "passwd_file=" + secret},
		{"b0b", "/m", "--aws-session-token", secret},
		{"b0b", "/m", "--frobnicate=" + secret}, // unknown options never echo a value either
		{"b0b", "/m", "-o", "frobnicate=" + secret},
	} {
		_, err := ParseArgs(args, noEnv)
		if err == nil {
			t.Errorf("ParseArgs(%q) accepted a credential", args)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, secret) || strings.Contains(msg, "EXAMPLEKEY") {
			t.Errorf("ParseArgs(%q) error echoes the secret: %q", args, msg)
		}
		if strings.Contains(msg, "frobnicate") {
			continue
		}
		for _, w := range []string{"not accepted", "environment", "~/.aws/credentials"} {
			if !strings.Contains(msg, w) {
				t.Errorf("ParseArgs(%q) error %q lacks %q", args, msg, w)
			}
		}
	}
}

func TestParseArgsPresign(t *testing.T) {
	get := func(expires time.Duration, recursive bool, paths ...string) PresignOptions {
		return PresignOptions{Expires: expires, Method: "GET", Recursive: recursive, Paths: paths}
	}
	for _, tc := range []struct {
		args []string
		want PresignOptions
	}{
		{[]string{"presign", "/m/a"}, get(time.Hour, false, "/m/a")},
		{[]string{"presign", "/m/a", "/m/b c"}, get(time.Hour, false, "/m/a", "/m/b c")},
		{[]string{"presign", "--expires", "10m", "/m/a"}, get(10*time.Minute, false, "/m/a")},
		{[]string{"presign", "/m/a", "--expires=7d"}, get(7*24*time.Hour, false, "/m/a")},
		{[]string{"presign", "-r", "/m/dir"}, get(time.Hour, true, "/m/dir")},
		{[]string{"presign", "/m/dir", "--recursive"}, get(time.Hour, true, "/m/dir")},
		{[]string{"presign", "--method", "PUT", "/m/new"}, PresignOptions{time.Hour, "PUT", false, []string{"/m/new"}}},
		{[]string{"presign", "--method=put", "/m/new"}, PresignOptions{time.Hour, "PUT", false, []string{"/m/new"}}},
		{[]string{"presign", "--", "-r", "--expires"}, get(time.Hour, false, "-r", "--expires")},
	} {
		cmd, err := ParseArgs(tc.args, noEnv)
		if err != nil {
			t.Errorf("ParseArgs(%q): %v", tc.args, err)
			continue
		}
		if cmd.Kind != KindPresign || !reflect.DeepEqual(cmd.Presign, tc.want) {
			t.Errorf("ParseArgs(%q) = %q %+v, want presign %+v", tc.args, cmd.Kind, cmd.Presign, tc.want)
		}
	}

	for _, tc := range []struct {
		args  []string
		words []string
	}{
		{[]string{"presign"}, []string{"presign", "missing PATH"}},
		{[]string{"presign", "-r"}, []string{"missing PATH"}},
		{[]string{"presign", "/m/a", "--expires"}, []string{"--expires needs a value"}},
		{[]string{"presign", "--expires", "8d", "/m/a"}, []string{"expiry must be between 1s and 7 days"}},
		{[]string{"presign", "--expires=0s", "/m/a"}, []string{"expiry must be between 1s and 7 days"}},
		{[]string{"presign", "--expires", "later", "/m/a"}, []string{"--expires", "duration"}},
		{[]string{"presign", "--method", "POST", "/m/a"}, []string{"--method", "GET or PUT"}},
		{[]string{"presign", "--read-only", "/m/a"}, []string{`unknown option "--read-only"`}},
		{[]string{"presign", "-o", "ro", "/m/a"}, []string{`unknown option "-o"`}},
	} {
		_, err := ParseArgs(tc.args, noEnv)
		if err == nil {
			t.Errorf("ParseArgs(%q) succeeded, want an error", tc.args)
			continue
		}
		for _, w := range tc.words {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("ParseArgs(%q) error %q lacks %q", tc.args, err, w)
			}
		}
	}
}

func TestParseArgsVersionAndHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		kind string
	}{
		{[]string{"version"}, KindVersion},
		{[]string{"--version"}, KindVersion},
		{[]string{"b0b", "--version"}, KindVersion},
		{[]string{"-h"}, KindHelp},
		{[]string{"--help"}, KindHelp},
		{[]string{"b0b", "/m", "-h"}, KindHelp},
		{[]string{"presign", "--help"}, KindHelp},
		{[]string{"presign", "/m/a", "-h"}, KindHelp},
	} {
		cmd, err := ParseArgs(tc.args, noEnv)
		if err != nil || cmd.Kind != tc.kind {
			t.Errorf("ParseArgs(%q) = %q, %v; want %q", tc.args, cmd.Kind, err, tc.kind)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"0", 0}, {"1000", 1000}, {"12B", 12},
		{"8K", 8 << 10}, {"8k", 8 << 10}, {"8KiB", 8 << 10},
		{"8M", 8 << 20}, {"8MiB", 8 << 20}, {"8 MiB", 8 << 20}, {"8mib", 8 << 20},
		{"2G", 2 << 30}, {"2GiB", 2 << 30}, {"1T", 1 << 40}, {"1TiB", 1 << 40},
		{"8KB", 8000}, {"8MB", 8_000_000}, {"2GB", 2_000_000_000}, {"1TB", 1_000_000_000_000},
	} {
		got, err := parseSize(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "M", "1.5G", "-1", "+1", "8XB", "8 M B", "9999999999999T"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"0", 0}, {"900", 900 * time.Second}, {"90s", 90 * time.Second},
		{"1h30m", 90 * time.Minute}, {"7d", 7 * 24 * time.Hour}, {"250ms", 250 * time.Millisecond},
	} {
		got, err := parseDuration(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "d", "1.5d", "-1", "-1s", "-1d", "soon", "99999999999d"} {
		if got, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", in, got)
		}
	}
}

func TestUsage(t *testing.T) {
	u := Usage()
	// The usage lines users and scripts rely on, verbatim.
	for _, line := range []string{
		"bucketfs [OPTIONS] BUCKET[:PREFIX] MOUNTPOINT     mount one bucket (or a prefix of it)\n",
		"bucketfs [OPTIONS] --all-buckets MOUNTPOINT        mount the account: buckets are top-level dirs\n",
		"bucketfs presign [--expires DUR] [--method GET|PUT] [-r] PATH...\n" +
			"                                                   print \"PATH<TAB>URL\" for files of a mount\n",
		"\nbucketfs version\n",
	} {
		if !strings.Contains(u, line) {
			t.Errorf("Usage lacks %q", line)
		}
	}
	lines := strings.Split(u, "\n")
	for _, opt := range mountOptions {
		flag := "--" + opt.name
		n := 0
		for _, l := range lines {
			if strings.Contains(l, flag+" ") && strings.HasSuffix(l, "["+opt.def+"]") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("Usage has %d lines for %s with default [%s], want 1", n, flag, opt.def)
		}
	}
	for _, want := range []string{"-f, --foreground", "--expires DUR", "--method GET|PUT", "-r, --recursive", "-h, --help", "--version", "-o name[=value]"} {
		if !strings.Contains(u, want) {
			t.Errorf("Usage lacks %q", want)
		}
	}
	if testing.Verbose() {
		t.Log("\n" + u)
	}
}

// TestUsageDefaultsMatchOptions keeps the defaults Usage shows equal to the
// ones ParseArgs applies.
func TestUsageDefaultsMatchOptions(t *testing.T) {
	literal := map[string]bool{
		"file-mode": true, "dir-mode": true, "stat-ttl": true, "negative-ttl": true,
		"cache-entries": true, "part-size": true, "upload-concurrency": true,
		"read-ahead": true, "presign-expiry": true, "fetch-whole": true,
	}
	for _, opt := range mountOptions {
		var arg string
		switch {
		case opt.arg == "" && opt.def == "off":
			arg = fmt.Sprintf("--%s=false", opt.name)
		case literal[opt.name]:
			arg = fmt.Sprintf("--%s=%s", opt.name, opt.def)
		default:
			continue
		}
		args := []string{"b0b", "/m", arg}
		if got := parseMountOK(t, args...); !reflect.DeepEqual(got, defaults()) {
			t.Errorf("Usage shows [%s] for --%s, but the default differs:\ngot  %+v\nwant %+v", opt.def, opt.name, got, defaults())
		}
	}
}
