package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"
)

// Transport limits. Together with the request timeout and the bounded
// retries they make every call return within 60 s when the server is gone.
const (
	dialTimeout     = 5 * time.Second
	tlsTimeout      = 15 * time.Second
	headerTimeout   = 15 * time.Second // from the end of the request body
	maxIdlePerHost  = 128              // the mount runs many ranged GETs at once
	maxRetryBackoff = 3 * time.Second
	defaultRegion   = "us-east-1"
)

// Config configures New. Credentials always come from the standard AWS
// chain (environment, profiles, SSO, web identity, instance roles).
type Config struct {
	Bucket   string
	Endpoint string // "" for AWS (or AWS_ENDPOINT_URL)
	Region   string // "" to use the SDK's region or discover the bucket's
	Profile  string // shared config profile; "" for the default chain

	PathStyle bool // path-style addressing, as MinIO needs
	// ListingHeaders says what is known of MinIO's listing extension
	// (listings that carry each object's headers); a server known not to
	// have it would only refuse or ignore the first request.
	ListingHeaders ListingHeaders
	Logger         *slog.Logger

	// RequestTimeout bounds a request without a streaming body, retries
	// included, and a Put's wait for progress [30s].
	RequestTimeout time.Duration
	// StallTimeout cancels a Get whose body delivers no bytes for this long
	// while the caller reads [20s].
	StallTimeout time.Duration
	// MaxAttempts bounds the attempts of one request, retries included [3].
	MaxAttempts int
	// Observe, when set, is told of every request once it ends (metrics,
	// the --debug trace). It must not block.
	Observe func(Request)
}

// ListingHeaders is what a Bucket knows at first of the server's listing
// extension.
type ListingHeaders int

const (
	// ListingHeadersDetect asks for headers where the server's answer to
	// CheckBucket names it MinIO; any server that refuses or ignores them
	// is then asked no more.
	ListingHeadersDetect ListingHeaders = iota
	// ListingHeadersOn asks whatever the server's name (--provider minio,
	// which may sit behind a proxy that renames it).
	ListingHeadersOn
	// ListingHeadersOff never asks.
	ListingHeadersOff
)

// New returns a Bucket backed by S3 or an S3-compatible server. It sends no
// request except, when no region is configured anywhere, one anonymous
// HeadBucket to discover the bucket's region. Call CheckBucket to find out
// whether the bucket is reachable.
func New(ctx context.Context, cfg Config) (*Bucket, error) {
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = 20 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(newHTTPClient()),
		config.WithRetryer(func() aws.Retryer { return newRetryer(cfg.MaxAttempts) }),
		config.WithLogger(sdkLogger{log}),
		config.WithClientLogMode(aws.LogRetries),
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load AWS configuration: %w", err)
	}
	clientOpts := func(o *awss3.Options) {
		o.UsePathStyle = cfg.PathStyle
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		if cfg.Observe != nil {
			o.APIOptions = append(o.APIOptions, observeRequests(cfg.Observe))
		}
	}
	client := awss3.NewFromConfig(awsCfg, clientOpts)
	if awsCfg.Region == "" && cfg.Bucket == "" {
		// An account: its buckets are made in, and looked for in, us-east-1
		// unless a region is configured.
		client = awss3.NewFromConfig(awsCfg, clientOpts, func(o *awss3.Options) { o.Region = "us-east-1" })
	} else if awsCfg.Region == "" {
		region := discoverRegion(ctx, client, cfg.Bucket)
		log.Debug("bucket region", "bucket", cfg.Bucket, "region", region)
		client = awss3.NewFromConfig(awsCfg, clientOpts, func(o *awss3.Options) { o.Region = region })
	}

	o := client.Options()
	endpoint := fmt.Sprintf("https://s3.%s.amazonaws.com", o.Region)
	if o.BaseEndpoint != nil {
		endpoint = *o.BaseEndpoint
	}
	onAWS := isAWS(endpoint)
	b := &Bucket{
		client:          client,
		unsignedPayload: isLoopback(endpoint),
		copyConditions:  onAWS,
		presigner:       awss3.NewPresignClient(client),
		bucket:          cfg.Bucket,
		region:          o.Region,
		endpoint:        endpoint,
		requestTimeout:  cfg.RequestTimeout,
		stallTimeout:    cfg.StallTimeout,
		copyThreshold:   maxCopySize,
		copyPartSize:    defaultCopyPartSize,
		log:             log,
		detectListing:   cfg.ListingHeaders == ListingHeadersDetect,
	}
	// AWS has no listing extension: asked, it answers plainly, which the
	// mount would learn only from its first lookup's extra LIST.
	b.noListHeaders.Store(cfg.ListingHeaders == ListingHeadersOff || onAWS)
	return b, nil
}

// newHTTPClient returns the SDK's buildable client (the config loader needs
// that type to apply AWS_CA_BUNDLE) with short connection timeouts and room
// for many idle connections.
func newHTTPClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) {
			d.Timeout = dialTimeout
		}).
		WithTransportOptions(func(t *http.Transport) {
			t.TLSHandshakeTimeout = tlsTimeout
			t.ResponseHeaderTimeout = headerTimeout
			t.MaxIdleConns = 4 * maxIdlePerHost
			t.MaxIdleConnsPerHost = maxIdlePerHost
		})
}

// newRetryer is the SDK's standard retryer with bounded attempts and backoff.
// Its client-side retry quota is off: with few attempts per request it would
// only turn a short outage into failures that outlast it.
//
// A request the HTTP client refused to build is never retried; S3's 409
// ConditionalRequestConflict, which asks for a retry, is, and so is a reply
// cut short, which the SDK would give up on while decoding it.
func newRetryer(maxAttempts int) *downAwareRetryer {
	r := &downAwareRetryer{}
	r.RetryerV2 = retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = maxAttempts
		o.MaxBackoff = maxRetryBackoff
		o.RateLimiter = ratelimit.None
		o.Retryables = append([]retry.IsErrorRetryable{
			retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
				if refusedByClient(err) {
					return aws.FalseTernary
				}
				if errors.Is(err, syscall.ECONNREFUSED) {
					r.downUntil.Store(time.Now().Add(downWindow).UnixNano())
				}
				if errors.Is(err, io.ErrUnexpectedEOF) {
					// The reply's body ended early (the connection dropped
					// halfway): as retryable as a reset before the reply.
					return aws.TrueTernary
				}
				return aws.UnknownTernary
			}),
			retry.RetryableErrorCode{Codes: map[string]struct{}{"ConditionalRequestConflict": {}}},
		}, o.Retryables...)
	})
	return r
}

// downWindow is how long after a refused connection (nothing listens: the
// server is down or restarting) requests get one attempt instead of
// several. A mount whose server is gone then answers each call at once
// rather than after seconds of backoff (a hundred files written while it
// is down are journaled in a second, not in minutes); every refusal
// renews it, and a request's one attempt still reaches a server that is
// back.
const downWindow = 3 * time.Second

// downAwareRetryer is a retryer whose attempts drop to one while the
// server refuses connections.
type downAwareRetryer struct {
	aws.RetryerV2
	downUntil atomic.Int64 // Unix nanoseconds
}

func (r *downAwareRetryer) MaxAttempts() int {
	if time.Now().UnixNano() < r.downUntil.Load() {
		return 1
	}
	return r.RetryerV2.MaxAttempts()
}

// isAWS tells whether endpoint is Amazon S3 itself.
func isAWS(endpoint string) bool {
	u, err := url.Parse(endpoint)
	return err == nil && (strings.HasSuffix(u.Hostname(), ".amazonaws.com") || strings.HasSuffix(u.Hostname(), ".amazonaws.com.cn"))
}

// discoverRegion asks for the bucket's region the way the SDK's deprecated
// manager.GetBucketRegion does: an anonymous HeadBucket against us-east-1,
// whose answer (even a 301 or 403) names the region in x-amz-bucket-region.
// Servers that do not say (MinIO, most custom endpoints) get us-east-1.
func discoverRegion(ctx context.Context, client *awss3.Client, bucket string) string {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	out, err := client.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: aws.String(bucket)}, func(o *awss3.Options) {
		o.Region = defaultRegion
		o.Credentials = aws.AnonymousCredentials{}
		o.Retryer = retry.AddWithMaxAttempts(o.Retryer, 1)
	})
	if err == nil {
		if out.BucketRegion != nil && *out.BucketRegion != "" {
			return *out.BucketRegion
		}
		return defaultRegion
	}
	var resp *awshttp.ResponseError
	if errors.As(err, &resp) {
		if r := resp.Response.Header.Get("X-Amz-Bucket-Region"); r != "" {
			return r
		}
	}
	return defaultRegion
}

// sdkLogger routes the SDK's log lines (retries, warnings) into slog, so
// the SDK never writes to stderr by itself.
type sdkLogger struct{ log *slog.Logger }

func (l sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	level := slog.LevelDebug
	if c == logging.Warn {
		level = slog.LevelWarn
	}
	ctx := context.Background()
	if l.log.Enabled(ctx, level) {
		l.log.Log(ctx, level, fmt.Sprintf(format, v...), "component", "aws-sdk")
	}
}

// isLoopback reports whether endpoint is a server on this host. Uploads to
// it skip the SigV4 payload hash (UNSIGNED-PAYLOAD): the hash guards a body
// on the wire, and loopback has none, while computing it (the client) and
// checking it (the server) cost two passes over every byte on the same
// CPUs. The SDK already sends UNSIGNED-PAYLOAD over TLS, where TLS guards
// the body; plain HTTP to another host keeps the hash.
func isLoopback(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "http" {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}

// payloadOptions are the per-call options of an upload (Put, UploadPart).
func (s *Bucket) payloadOptions() []func(*awss3.Options) {
	if !s.unsignedPayload {
		return nil
	}
	return []func(*awss3.Options){awss3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)}
}
