package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/bucketfs/bucketfs/backend/s3"
)

// Options is a mount request: `bucketfs [OPTIONS] BUCKET[:PREFIX] MOUNTPOINT`
// (or --all-buckets MOUNTPOINT) parsed, validated and defaulted.
// Paths (Mountpoint, CacheDir, LogFile) are kept as given; main makes them
// absolute before it goes to the background.
type Options struct {
	// what to mount
	Bucket, Prefix string // Prefix is "" or "dir/sub/": no leading slash, one trailing slash
	AllBuckets     bool
	Mountpoint     string

	// connection; empty means the AWS default chain decides
	Provider, AccountID          string // --provider fills in what it knows
	EndpointURL, Region, Profile string
	PathStyle                    bool
	ListingHeaders               s3.ListingHeaders // what --provider knows of listings with headers

	// behaviour
	Foreground, ReadOnly, AllowOther, Debug bool
	WriteBack                               bool   // close returns once the journal holds the file
	UID, GID                                uint32 // default: the mounting user
	FileMode, DirMode                       uint32 // permission bits only
	StatTTL, NegativeTTL                    time.Duration
	CacheEntries                            int
	CacheDir                                string
	PartSize                                int64 // a starting point: the uploader grows it to stay within 10,000 parts
	UploadConcurrency                       int
	ReadAhead                               int64 // largest prefetch window
	CacheSize                               int64 // bytes of fetched data kept after close; 0 keeps none
	FetchWhole                              int64 // largest object fetched whole once read at random; 0 never
	StorageClass, SSE, SSEKMSKeyID, ACL     string
	PosixMetadata                           string        // "" (the default: see posixMetadata), auto, always or never
	PresignExpiry                           time.Duration // within [1s, 7 days]
	AsOf                                    time.Time     // zero when unset; set implies ReadOnly
	LogFile, MetricsAddr                    string
	LogFormat                               string        // "text" (also "") or "json"
	RequestPrices                           requestPrices // nil: defaultPrices
}

// prices are the request prices of the cost estimate.
func (o Options) prices() requestPrices {
	if o.RequestPrices == nil {
		return defaultPrices()
	}
	return o.RequestPrices
}

// PresignOptions is `bucketfs presign [--expires DUR] [--method GET|PUT] [-r] PATH...`.
type PresignOptions struct {
	Expires   time.Duration // within [1s, 7 days]
	Method    string        // "GET" or "PUT"
	Recursive bool
	Paths     []string // as given on the command line
}

// Command is what the arguments ask for.
type Command struct {
	Kind    string // KindMount, KindPresign, KindPending, KindInfo, KindVersion or KindHelp
	Mount   Options
	Presign PresignOptions
	Pending []string // the mountpoints of `bucketfs pending`
	Info    []string // the paths of `bucketfs info`
}

const (
	KindMount   = "mount"
	KindPresign = "presign"
	KindPending = "pending"
	KindInfo    = "info"
	KindVersion = "version"
	KindHelp    = "help"
)

const (
	minExpiry = time.Second
	maxExpiry = 7 * 24 * time.Hour // the longest SigV4 allows
	// S3's limits for one part (the last part may be smaller).
	minPartSize = 5 << 20
	maxPartSize = 5 << 30
)

var errExpiryRange = errors.New("expiry must be between 1s and 7 days")

func defaultOptions(env func(string) string) Options {
	return Options{
		UID:               uint32(os.Getuid()),
		GID:               uint32(os.Getgid()),
		FileMode:          0o644,
		DirMode:           0o755,
		StatTTL:           60 * time.Second,
		NegativeTTL:       5 * time.Second,
		CacheEntries:      100000,
		CacheDir:          defaultCacheDir(os.Getuid(), env),
		PartSize:          8 << 20,
		UploadConcurrency: 8,
		ReadAhead:         64 << 20,
		FetchWhole:        1 << 30,
		PresignExpiry:     time.Hour,
	}
}

// defaultCacheDir is private to the mounting user: root's is
// /var/cache/bucketfs (mounts from fstab run as root, without a home);
// another user's follows the XDG base directory spec, which says to ignore
// a relative XDG_CACHE_HOME, and falls back to ~/.cache. Never a shared,
// world-writable folder such as /var/tmp, where another local user could
// plant a symlink or read staged data.
func defaultCacheDir(uid int, env func(string) string) string {
	if uid == 0 {
		return "/var/cache/bucketfs"
	}
	if xdg := env("XDG_CACHE_HOME"); filepath.IsAbs(xdg) {
		return filepath.Join(xdg, "bucketfs")
	}
	if home := env("HOME"); filepath.IsAbs(home) {
		return filepath.Join(home, ".cache", "bucketfs")
	}
	return filepath.Join("/var/cache", fmt.Sprintf("bucketfs-%d", uid))
}

// option is one long option of the mount form. Each also works as
// -o name[=value]; names are written with hyphens here and matched with
// '_' and '-' alike.

// ignoredMountOptions are the generic options mount(8) and fstab pass to
// every helper (mount.fuse3 always adds dev and suid); they mean nothing to
// bucketfs (sync neither: close and fsync already wait for S3). x-* and
// comment= options are ignored as well.
var ignoredMountOptions = map[string]bool{
	"defaults": true, "auto": true, "noauto": true, "user": true, "nouser": true,
	"users": true, "owner": true, "group": true, "_netdev": true, "nofail": true,
	"dev": true, "nodev": true, "suid": true, "nosuid": true, "exec": true, "noexec": true,
	"atime": true, "noatime": true, "diratime": true, "nodiratime": true,
	"relatime": true, "norelatime": true, "strictatime": true, "nostrictatime": true,
	"lazytime": true, "nolazytime": true, "async": true, "sync": true, "dirsync": true,
	"silent": true, "loud": true,
}

// credentialWords mark option names that would carry a credential, which a
// command line leaks to ps(1) and shell history.
var credentialWords = []string{"secret", "access-key", "session-token", "password", "passwd", "customer-key"}

// ParseArgs turns the arguments (without the program name) into a Command.
// env looks up environment variables (os.Getenv in production). Every error
// is one line fit for stderr, and none repeats a value given to a credential
// option or to an unknown one.
//
// A first argument "presign", "pending", "info" or "version" is a
// subcommand; a bucket of that name is mounted as "presign:" and so on.
func ParseArgs(args []string, env func(string) string) (Command, error) {
	if env == nil {
		env = func(string) string { return "" }
	}
	if len(args) > 0 {
		switch args[0] {
		case "presign":
			return parsePresign(args[1:])
		case "pending":
			if len(args) < 2 || strings.HasPrefix(args[1], "-") {
				return Command{}, errors.New("pending: missing MOUNTPOINT (bucketfs pending MOUNTPOINT [MOUNTPOINT ...])")
			}
			return Command{Kind: KindPending, Pending: args[1:]}, nil
		case "info":
			if len(args) < 2 || strings.HasPrefix(args[1], "-") {
				return Command{}, errors.New("info: missing PATH (bucketfs info PATH [PATH ...])")
			}
			return Command{Kind: KindInfo, Info: args[1:]}, nil
		case "version":
			if len(args) > 1 {
				return Command{}, errors.New(`"version" takes no arguments (to mount a bucket named version, write "version:")`)
			}
			return Command{Kind: KindVersion}, nil
		}
	}
	return parseMount(args, env)
}

// parseMount reads the mount form. Options may come before, between or after
// the positional arguments, as mount(8) calls `bucketfs BUCKET MNT -o opts`;
// "--" ends the options.
func parseMount(args []string, env func(string) string) (Command, error) {
	o := defaultOptions(env)
	var positionals []string
scan:
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			positionals = append(positionals, args[i+1:]...)
			break scan
		case arg == "-h" || arg == "--help":
			return Command{Kind: KindHelp}, nil
		case arg == "--version":
			return Command{Kind: KindVersion}, nil
		case arg == "-f":
			o.Foreground = true
		case arg == "-o":
			if i+1 == len(args) {
				return Command{}, errors.New("-o needs a value: -o name[=value][,name[=value]...]")
			}
			i++
			if err := applyOptionList(&o, args[i]); err != nil {
				return Command{}, err
			}
		case strings.HasPrefix(arg, "--"):
			name, value, hasValue := strings.Cut(arg[2:], "=")
			display := "--" + name
			opt, err := findOption(name, display)
			if err != nil {
				return Command{}, err
			}
			if opt.arg != "" && !hasValue {
				if i+1 == len(args) {
					return Command{}, fmt.Errorf("%s needs a value (%s %s)", display, display, opt.arg)
				}
				i++
				value, hasValue = args[i], true
			}
			if err := opt.apply(&o, display, value, hasValue); err != nil {
				return Command{}, err
			}
		case strings.HasPrefix(arg, "-o"):
			if err := applyOptionList(&o, arg[2:]); err != nil {
				return Command{}, err
			}
		case len(arg) > 1 && arg[0] == '-':
			name, _, _ := strings.Cut(arg, "=")
			return Command{}, fmt.Errorf("unknown option %q", name)
		default:
			positionals = append(positionals, arg)
		}
	}
	if err := o.setPositionals(positionals); err != nil {
		return Command{}, err
	}
	if o.SSEKMSKeyID != "" && o.SSE != "aws:kms" {
		return Command{}, errors.New("--sse-kms-key-id needs --sse aws:kms")
	}
	if o.WriteBack && (o.ReadOnly || !o.AsOf.IsZero()) {
		return Command{}, errors.New("--write-back contradicts a read-only mount (--read-only, -o ro, --as-of)")
	}
	if err := o.applyProvider(); err != nil {
		return Command{}, err
	}
	if !o.AsOf.IsZero() {
		// Forced rather than checked against rw: mount(8) passes "rw" to
		// helpers unless the fstab line says ro.
		o.ReadOnly = true
	}
	return Command{Kind: KindMount, Mount: o}, nil
}

// applyOptionList applies one -o argument: name[=value] items separated by
// commas. A value cannot contain a comma (fstab has no way to quote one, and
// no option needs one).
func applyOptionList(o *Options, list string) error {
	for _, item := range strings.Split(list, ",") {
		name, value, hasValue := strings.Cut(item, "=")
		switch {
		case item == "" || ignoredMountOptions[name] ||
			strings.HasPrefix(name, "x-") || name == "comment":
			continue
		case item == "ro":
			o.ReadOnly = true
			continue
		case item == "rw":
			o.ReadOnly = false
			continue
		}
		display := "-o " + name
		opt, err := findOption(name, display)
		if err != nil {
			return err
		}
		if opt.arg != "" && !hasValue {
			return fmt.Errorf("%s needs a value (%s=%s)", display, name, opt.arg)
		}
		if err := opt.apply(o, display, value, hasValue); err != nil {
			return err
		}
	}
	return nil
}

// printable is s as an error may show it on one line: quoted when it
// holds a control character (found by FuzzParseArgs: "--secret\n").
func printable(s string) string {
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// findOption looks a long option up by name; display is the option as the
// user wrote it, without its value, for errors.
func findOption(name, display string) (*option, error) {
	key := strings.ReplaceAll(name, "_", "-")
	for _, word := range credentialWords {
		if strings.Contains(key, word) {
			return nil, fmt.Errorf("%s is not accepted: credentials come from the environment "+
				"(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), ~/.aws/credentials or --profile, "+
				"never from the command line", printable(display))
		}
	}
	for i := range mountOptions {
		if mountOptions[i].name == key {
			return &mountOptions[i], nil
		}
	}
	return nil, fmt.Errorf("unknown option %q", display)
}

func (opt *option) apply(o *Options, display, value string, hasValue bool) error {
	if opt.arg == "" {
		on := true
		if hasValue {
			b, err := strconv.ParseBool(value)
			if err != nil {
				return fmt.Errorf("invalid value %q for %s: want true or false", value, display)
			}
			on = b
		}
		value = strconv.FormatBool(on)
	}
	if err := opt.set(o, value); err != nil {
		return fmt.Errorf("invalid value %q for %s: %v", value, display, err)
	}
	return nil
}

func (o *Options) setPositionals(args []string) error {
	if o.AllBuckets {
		switch {
		case len(args) == 0:
			return errors.New("missing MOUNTPOINT (bucketfs --all-buckets MOUNTPOINT)")
		case len(args) > 1:
			return fmt.Errorf("too many arguments: --all-buckets takes only MOUNTPOINT, not %q", args[0])
		}
		return o.setMountpoint(args[0])
	}
	switch {
	case len(args) == 0:
		return errors.New("missing BUCKET and MOUNTPOINT (bucketfs BUCKET[:PREFIX] MOUNTPOINT)")
	case len(args) == 1:
		return fmt.Errorf("missing MOUNTPOINT after %q (bucketfs BUCKET[:PREFIX] MOUNTPOINT)", args[0])
	case len(args) > 2:
		return fmt.Errorf("too many arguments: %q (bucketfs BUCKET[:PREFIX] MOUNTPOINT)", args[2])
	}
	if strings.Contains(args[0], "://") {
		return fmt.Errorf("invalid bucket name %q: write BUCKET or BUCKET:PREFIX, not a URL", args[0])
	}
	bucket, prefix, _ := strings.Cut(args[0], ":")
	if err := checkBucketName(bucket); err != nil {
		return err
	}
	p, err := normalisePrefix(prefix)
	if err != nil {
		return err
	}
	o.Bucket, o.Prefix = bucket, p
	return o.setMountpoint(args[1])
}

func (o *Options) setMountpoint(dir string) error {
	if dir == "" {
		return errors.New("empty MOUNTPOINT")
	}
	o.Mountpoint = dir
	return nil
}

// checkBucketName applies S3's naming rules, so a typo fails before any
// request is sent.
func checkBucketName(name string) error {
	bad := func(why string) error { return fmt.Errorf("invalid bucket name %q: %s", name, why) }
	if len(name) < 3 || len(name) > 63 {
		return bad("must be 3 to 63 characters")
	}
	for _, c := range name {
		if !isLowerAlnum(c) && c != '.' && c != '-' {
			return bad("only lower-case letters, digits, dots and hyphens are allowed")
		}
	}
	if !isLowerAlnum(rune(name[0])) || !isLowerAlnum(rune(name[len(name)-1])) {
		return bad("must start and end with a letter or digit")
	}
	if strings.Contains(name, "..") {
		return bad("must not contain two adjacent dots")
	}
	if net.ParseIP(name) != nil {
		return bad("must not look like an IP address")
	}
	return nil
}

func isLowerAlnum(c rune) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// normalisePrefix turns "/a//b" into "a/b/". "." and ".." are refused: keys
// with them cannot be paths.
func normalisePrefix(prefix string) (string, error) {
	var parts []string
	for _, part := range strings.Split(prefix, "/") {
		switch part {
		case "":
			continue
		case ".", "..":
			return "", fmt.Errorf("invalid prefix %q: %q cannot be part of a key prefix", prefix, part)
		}
		parts = append(parts, part)
	}
	if len(parts) == 0 {
		return "", nil
	}
	return strings.Join(parts, "/") + "/", nil
}

// parsePresign reads `presign [--expires DUR] [--method GET|PUT] [-r] PATH...`,
// options anywhere among the paths, "--" ending them.
func parsePresign(args []string) (Command, error) {
	p := PresignOptions{Expires: time.Hour, Method: "GET"}
scan:
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			p.Paths = append(p.Paths, args[i+1:]...)
			break scan
		case arg == "-h" || arg == "--help":
			return Command{Kind: KindHelp}, nil
		case arg == "-r" || arg == "--recursive":
			p.Recursive = true
		case arg == "--expires" || arg == "--method" ||
			strings.HasPrefix(arg, "--expires=") || strings.HasPrefix(arg, "--method="):
			name, value, hasValue := strings.Cut(arg, "=")
			if !hasValue {
				if i+1 == len(args) {
					return Command{}, fmt.Errorf("presign: %s needs a value", name)
				}
				i++
				value = args[i]
			}
			var err error
			if name == "--expires" {
				p.Expires, err = parseExpiry(value)
			} else {
				p.Method, err = parseMethod(value)
			}
			if err != nil {
				return Command{}, fmt.Errorf("presign: invalid value %q for %s: %v", value, name, err)
			}
		case len(arg) > 1 && arg[0] == '-':
			name, _, _ := strings.Cut(arg, "=")
			return Command{}, fmt.Errorf("presign: unknown option %q", name)
		default:
			p.Paths = append(p.Paths, arg)
		}
	}
	if len(p.Paths) == 0 {
		return Command{}, errors.New("presign: missing PATH (bucketfs presign [--expires DUR] [--method GET|PUT] [-r] PATH...)")
	}
	return Command{Kind: KindPresign, Presign: p}, nil
}

func parseMethod(v string) (string, error) {
	switch m := strings.ToUpper(v); m {
	case "GET", "PUT":
		return m, nil
	}
	return "", errors.New("want GET or PUT")
}

// Usage is the help text: the usage lines of each form, then every option
// with its default.
func Usage() string {
	var b strings.Builder
	b.WriteString(`Usage:
bucketfs [OPTIONS] BUCKET[:PREFIX] MOUNTPOINT     mount one bucket (or a prefix of it)
bucketfs [OPTIONS] --all-buckets MOUNTPOINT        mount the account: buckets are top-level dirs
bucketfs presign [--expires DUR] [--method GET|PUT] [-r] PATH...
                                                   print "PATH<TAB>URL" for files of a mount
bucketfs pending MOUNTPOINT...                     list what S3 does not have yet: pending
                                                   uploads and conflict copies
bucketfs info PATH...                              print every user.s3.* attribute of files
                                                   (listxattr lists only user metadata)
bucketfs version

Options [default]; each also works as -o name[=value] (comma-separated, as in
/etc/fstab), with '_' and '-' alike in names; -o ro and -o rw are understood:
`)
	line := func(flags, help, def string) { fmt.Fprintf(&b, "  %-26s %s [%s]\n", flags, help, def) }
	for _, opt := range mountOptions {
		flags := "--" + opt.name
		if opt.arg != "" {
			flags += " " + opt.arg
		}
		if opt.name == "foreground" {
			flags = "-f, " + flags
		}
		line(flags, opt.help, opt.def)
	}
	b.WriteString("\nPresign options:\n")
	line("--expires DUR", "lifetime of the URLs, at most 7 days", "1h")
	line("--method GET|PUT", "PUT presigns an upload to a file that may not exist yet", "GET")
	line("-r, --recursive", "every file under a directory PATH", "off")
	b.WriteString(`
  -h, --help                 show this text
  --version                  print the version

Durations: 90s, 5m, 1h30m, 7d, or a plain number of seconds.
Sizes: bytes, or K/M/G/T = KiB/MiB/GiB/TiB (powers of 1024), KB/MB/GB/TB (powers of 1000).
Credentials come from the AWS chain (environment, ~/.aws/credentials, profiles,
SSO, roles), never from the command line.
`)
	return b.String()
}
