# bucketfs: the two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := bin/bucketfs
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
TOOLS := $(HOME)/.cache/bucketfs/bin
MINIO := $(TOOLS)/minio
VERSITYGW_VERSION := v1.8.0
VERSITYGW := $(TOOLS)/versitygw
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(TOOLS)/staticcheck
DEMO := $(CURDIR)/.demo
APT_PACKAGES := fuse3 attr acl curl rsync sqlite3 git
BENCH_PACKAGES := s3fs rclone fio
BENCH ?= # one figure of make bench: read, random, list, walk, list-plain, presign or write; all when empty

.PHONY: all build install deps bench-deps test test-short stress vet lint demo demo-stop bench bench-quick clean

all: build

build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/bucketfs

# install puts the binary where mount(8) finds it for `mount -t fuse.bucketfs`
# and /etc/fstab (mount runs helpers with a fixed PATH).
PREFIX ?= /usr/local
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/bucketfs

# deps installs what tests and the demo need on a fresh Debian machine:
# fuse3 (fusermount3), attr (getfattr) and curl from apt, MinIO and
# versitygw (the second test server) from source.
deps: $(MINIO) $(VERSITYGW)
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

bench-deps: deps
	@missing=""; for p in $(BENCH_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VERSITYGW):
	@echo "building versitygw $(VERSITYGW_VERSION), the second test server (about 1.5 minutes cold)"
	mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

$(MINIO):
	@echo "building MinIO $(MINIO_VERSION) (a cold build takes a few minutes)"
	mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install github.com/minio/minio@$(MINIO_VERSION)

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }

# lint is vet (with gofmt) and staticcheck, which it installs.
lint: vet $(STATICCHECK)
	$(STATICCHECK) ./...

$(STATICCHECK):
	mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# test runs every package, the integration tests again against versitygw
# (features it lacks skip by name), then the model tests under the race
# detector (400 operations each; make stress runs 100,000).
test: deps vet
	BUCKETFS_MINIO=$(MINIO) BUCKETFS_VERSITYGW=$(VERSITYGW) $(GO) test -count=1 -timeout 14m ./...
	BUCKETFS_SERVER=versitygw BUCKETFS_MINIO=$(MINIO) BUCKETFS_VERSITYGW=$(VERSITYGW) $(GO) test -count=1 -timeout 14m ./cmd/bucketfs
	$(GO) test -race -count=1 -timeout 5m -run 'TestModel' ./fs

# stress runs the long variants: the journal tests with 200 files written
# while the server is down (each run prints how many it recovered), 20
# crash trials per scenario (kill -9 and SIGTERM mid-write), 100,000
# random operations in each model test (one mount against a local
# directory; four goroutines; two mounts and a direct S3 client), then
# every fuzz target for FUZZTIME (make test runs their seed corpora only).
FUZZTIME ?= 60s
FUZZ_TARGETS := fs:FuzzDirEntries fs:FuzzPOSIXHeaders fs:FuzzHeaderValue fs:FuzzXattrNames \
	backend/s3:FuzzListingHeaders cmd/bucketfs:FuzzParseArgs
stress: deps vet
	BUCKETFS_MINIO=$(MINIO) BUCKETFS_JOURNAL_FILES=200 BUCKETFS_CRASH_TRIALS=20 $(GO) test -count=1 -timeout 80m -v \
		-run 'TestPendingUploads|TestCrashLoop' ./cmd/bucketfs
	BUCKETFS_MODEL_OPS=4000 $(GO) test -race -count=1 -timeout 20m -v -run 'TestModel' ./fs
	BUCKETFS_MODEL_OPS=100000 $(GO) test -count=1 -timeout 60m -v -run 'TestModel' ./fs
	@set -o pipefail; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t#*:}; echo "fuzz $$name ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) ./$$pkg 2>&1 | grep -E '^(fuzz: elapsed|ok|FAIL|---)' | tail -3 || exit 1; \
	done

# test-short runs the unit tests only: no server, no mount.
test-short:
	$(GO) test -count=1 -short ./...

demo: deps build
	@BUCKETFS_MINIO=$(MINIO) BUCKETFS_BIN=$(CURDIR)/$(BIN) $(GO) run ./backend/miniotest/s3dev demo -dir $(DEMO)

demo-stop:
	-@umount $(DEMO)/mnt 2>/dev/null || fusermount3 -u -z $(DEMO)/mnt 2>/dev/null; true
	@$(GO) run ./backend/miniotest/s3dev stop -dir $(DEMO)

BENCH_ENV = BUCKETFS_MINIO=$(MINIO) BUCKETFS_VERSITYGW=$(VERSITYGW) BUCKETFS_BIN=$(CURDIR)/$(BIN) BUCKETFS_BENCH=1

# bench runs TestCompare (bucketfs against the raw SDK, s3fs and rclone,
# every workload on the same MinIO; 7 minutes on 2 cores; it writes
# docs/bench), then TestBench (3 minutes). BENCH=name runs that TestBench figure
# alone, as before; COMPARE=name one TestCompare workload (ttfb, seq-read,
# parallel-read, ls-dir, ls-many, find, cp-rm, fio, versitygw-ls), whose
# tables are printed but not written.
bench: bench-deps build
ifeq ($(BENCH),)
	$(BENCH_ENV) BENCH_COMMAND='make bench' \
		$(GO) test -count=1 -timeout 60m -run '^TestCompare$$/$(COMPARE)' -v ./cmd/bucketfs
endif
	$(BENCH_ENV) $(GO) test -count=1 -timeout 60m -run '^TestBench$$/$(BENCH)' -v ./cmd/bucketfs

# bench-quick runs TestCompare with smaller sizes (under 3 minutes); it
# writes docs/bench/quick, which git ignores.
bench-quick: bench-deps build
	$(BENCH_ENV) BENCH_QUICK=1 BENCH_COMMAND='make bench-quick' \
		$(GO) test -count=1 -timeout 10m -run '^TestCompare$$/$(COMPARE)' -v ./cmd/bucketfs

clean:
	rm -rf bin
