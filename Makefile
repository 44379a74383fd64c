# Mosaic build and test entry points. `make test` is what CI runs.
GO        ?= go
FUZZTIME  ?= 15s
PKGS      := ./...

.PHONY: all build test test-deps vet unit fuzz bench generate clean

all: build

build:
	$(GO) build -o bin/mosaic ./cmd/mosaic

## test: install missing test tools from Debian, then vet, all tests, and short fuzz runs.
test: test-deps vet unit fuzz

test-deps:
	@scripts/test-deps.sh

vet:
	$(GO) vet $(PKGS)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi

## unit: all Go tests, with a throwaway PostgreSQL server for the store tests.
unit:
	CI=$${CI:-} scripts/with-postgres.sh $(GO) test -count=1 -timeout 20m $(PKGS)

## fuzz: each fuzz target for a short time, starting from its seed corpus.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzRead$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/dicom/
	$(GO) test -run '^$$' -fuzz '^FuzzReadWrite$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/dicom/
	$(GO) test -run '^$$' -fuzz '^FuzzDeidMarkers$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/deid/
	$(GO) test -run '^$$' -fuzz '^FuzzPartReader$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/dicomweb/

## bench: Go benchmarks of the codec and generator (figures go to docs/performance.md).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./internal/...

generate:
	$(GO) generate ./...

clean:
	rm -rf bin
