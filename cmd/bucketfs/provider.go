package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/bucketfs/bucketfs/backend/s3"
)

// A provider is what --provider knows of an S3 service: how to reach it,
// and which of the S3 features bucketfs uses it has (from the provider's
// documentation; the README says which were run here).
type provider struct {
	name, title string
	// endpoint, with {region} or {account} in it; "" for AWS's own, and
	// for servers that need --endpoint-url.
	endpoint string
	region   string // the region it signs with whatever --region says; "" uses --region
	// needs is what the user must give: "region", "account-id" or
	// "endpoint-url".
	needs     string
	pathStyle bool
	// listingHeaders: listings carry each object's headers (MinIO's
	// extension); elsewhere it is not asked for, which saves a refused
	// request.
	listingHeaders bool
	objectACLs     bool // PutObjectAcl and x-amz-acl (--acl, user.s3.acl)
	versioning     bool // ListObjectVersions (--as-of, user.s3.versions)
	kms            bool // SSE-KMS (--sse aws:kms)
}

var providers = []provider{
	{name: "aws", title: "Amazon S3", objectACLs: true, versioning: true, kms: true},
	{name: "r2", title: "Cloudflare R2", endpoint: "https://{account}.r2.cloudflarestorage.com", region: "auto", needs: "account-id"},
	{name: "spaces", title: "DigitalOcean Spaces", endpoint: "https://{region}.digitaloceanspaces.com", needs: "region", objectACLs: true, versioning: true},
	{name: "b2", title: "Backblaze B2", endpoint: "https://s3.{region}.backblazeb2.com", needs: "region", versioning: true},
	{name: "wasabi", title: "Wasabi", endpoint: "https://s3.{region}.wasabisys.com", needs: "region", objectACLs: true, versioning: true},
	{name: "gcs", title: "Google Cloud Storage (XML API, HMAC keys)", endpoint: "https://storage.googleapis.com", region: "auto", objectACLs: true},
	{name: "ceph", title: "Ceph RADOS Gateway", needs: "endpoint-url", pathStyle: true, objectACLs: true, versioning: true, kms: true},
	{name: "minio", title: "MinIO", needs: "endpoint-url", pathStyle: true, listingHeaders: true, versioning: true, kms: true},
}

var providerNames = func() string {
	var names []string
	for _, p := range providers {
		names = append(names, p.name)
	}
	return strings.Join(names, "|")
}()

func findProvider(name string) (provider, bool) {
	i := slices.IndexFunc(providers, func(p provider) bool { return p.name == name })
	if i < 0 {
		return provider{}, false
	}
	return providers[i], true
}

func setProvider(o *Options, v string) error {
	if _, ok := findProvider(v); !ok {
		return fmt.Errorf("want one of %s", strings.ReplaceAll(providerNames, "|", ", "))
	}
	o.Provider = v
	return nil
}

// applyProvider fills in what --provider knows (endpoint, region,
// addressing, listings) and refuses what the provider cannot do, each in
// one line, before anything is sent.
func (o *Options) applyProvider() error {
	if o.AccountID != "" && o.Provider != "r2" {
		return errors.New("--account-id is for --provider r2")
	}
	if o.Provider == "" {
		return nil
	}
	p, _ := findProvider(o.Provider)
	switch {
	case p.needs == "account-id" && o.AccountID == "" && o.EndpointURL == "":
		return fmt.Errorf("--provider %s needs --account-id (or --endpoint-url)", p.name)
	case p.needs == "region" && o.Region == "" && o.EndpointURL == "":
		return fmt.Errorf("--provider %s needs --region (its endpoint is %s)", p.name, p.endpoint)
	case p.needs == "endpoint-url" && o.EndpointURL == "":
		return fmt.Errorf("--provider %s needs --endpoint-url", p.name)
	case p.region != "" && o.Region != "" && o.Region != p.region:
		return fmt.Errorf("--region %s contradicts --provider %s, whose region is always %s", o.Region, p.name, p.region)
	}
	refuse := func(option, what string) error {
		return fmt.Errorf("%s cannot be honoured: %s has no %s", option, p.title, what)
	}
	switch {
	case o.ACL != "" && !p.objectACLs:
		return refuse("--acl", "object ACLs")
	case !o.AsOf.IsZero() && !p.versioning:
		return refuse("--as-of", "object versions")
	case o.SSE == "aws:kms" && !p.kms:
		return refuse("--sse aws:kms", "SSE-KMS")
	}
	if o.EndpointURL == "" && p.endpoint != "" {
		o.EndpointURL = strings.NewReplacer("{region}", o.Region, "{account}", o.AccountID).Replace(p.endpoint)
	}
	if p.region != "" {
		o.Region = p.region
	}
	o.PathStyle = o.PathStyle || p.pathStyle
	o.ListingHeaders = s3.ListingHeadersOff
	if p.listingHeaders {
		o.ListingHeaders = s3.ListingHeadersOn
	}
	return nil
}
