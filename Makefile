# Mosaic build and test entry points. `make test` is what CI runs.
GO        ?= go
FUZZTIME  ?= 15s
PKGS      := ./...

.PHONY: all build test test-deps vet unit fuzz bench generate clean viewer viewer-if-npm

all: build

## build: the binary, with the viewer embedded when npm is there to build it.
build: viewer-if-npm
	$(GO) build -o bin/mosaic ./cmd/mosaic

## test: install missing test tools from Debian, build the viewer, then vet, all tests, and short fuzz runs.
test: test-deps viewer vet unit fuzz

## viewer: the web viewer (web/viewer) built into internal/viewer/assets/dist,
## which go build embeds. npm ci installs from the committed lock file into
## web/viewer/node_modules (git-ignored, kept between builds); nothing is
## fetched when the binary runs.
VIEWER_DIST := internal/viewer/assets/dist
VIEWER_SRC  := $(wildcard web/viewer/src/*) web/viewer/build.mjs
viewer: $(VIEWER_DIST)/index.html

web/viewer/node_modules/.package-lock.json: web/viewer/package-lock.json web/viewer/package.json
	cd web/viewer && npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

$(VIEWER_DIST)/index.html: web/viewer/node_modules/.package-lock.json $(VIEWER_SRC)
	cd web/viewer && node build.mjs

viewer-if-npm:
	@if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory viewer; \
	else \
	  echo "viewer: npm not found, building mosaic without the viewer (/viewer/ will say so)"; \
	fi

test-deps:
	@scripts/test-deps.sh

vet:
	$(GO) vet $(PKGS)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi

# The packages with goroutines of their own, run again under the race
# detector. The whole suite under -race took 3.9 times as long as without
# (28 min instead of 7 on a loaded 2-core machine, with end-to-end tests
# timing out); these packages add about half the suite's CPU time. The
# executors are left out (their concurrency is other processes, and the
# race detector's slowness makes the sandbox's limit tests race their
# watchdog), and so are the end-to-end tests of access and processing,
# which run once, without it.
RACE_PKGS := $(addprefix ./,$(addsuffix /,$(wildcard internal/node internal/hub internal/disclosure \
	internal/index internal/ingest internal/blobstore internal/fed internal/throttle \
	internal/relay internal/access internal/oidc internal/compute internal/jobs \
	internal/airlock)))

## unit: all Go tests, with a throwaway PostgreSQL server for the store tests,
## then the packages with concurrency again under the race detector (the
## headless browser test, which drives Chromium rather than Go concurrency,
## runs once, without it).
unit:
	CI=$${CI:-} scripts/with-postgres.sh sh -c '$(GO) test -count=1 -timeout 20m $(PKGS) && \
	  $(GO) test -race -count=1 -timeout 20m -skip '\''^(TestUIBrowser|TestOIDCBrowser|TestAccessEndToEnd|TestProcessingEndToEnd|TestLearnLargeModel)$$'\'' $(RACE_PKGS)'

## fuzz: each fuzz target for a short time, starting from its seed corpus.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzRead$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/dicom/
	$(GO) test -run '^$$' -fuzz '^FuzzReadWrite$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/dicom/
	$(GO) test -run '^$$' -fuzz '^FuzzDeidMarkers$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/deid/
	$(GO) test -run '^$$' -fuzz '^FuzzPartReader$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/dicomweb/
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/table/
	$(GO) test -run '^$$' -fuzz '^FuzzReadSafetensors$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/fl/
	$(GO) test -run '^$$' -fuzz '^FuzzMessages$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/secagg/
	$(GO) test -run '^$$' -fuzz '^FuzzParseFormula$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/stats/

## bench: Go benchmarks of the codec and generator (figures go to docs/performance.md).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./internal/...

generate:
	$(GO) generate ./...

clean:
	rm -rf bin $(VIEWER_DIST)
