# The two commands: `make demo` and `make test`. Both install what is missing first.
SWIFT ?= swift
BIN := .build/debug

.PHONY: all deps build demo test test-unit check-protos protos format lint test-kill bench bench-dispatch bench-stream clean

all: build

deps:
	@scripts/install-deps

build: deps
	$(SWIFT) build

demo: deps
	$(SWIFT) build --product haat
	$(BIN)/haat demo

# Every test: the Swift suites (unit, protocol, store, fetch, records, cluster) and the
# check that the generated protocol code matches protos/.
test: deps
	$(SWIFT) build --build-tests
	scripts/gen-protos --check
	$(SWIFT) test --skip-build

protos: deps
	scripts/gen-protos

format:
	$(SWIFT) format --in-place --recursive Sources Tests Benchmarks Package.swift

lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Benchmarks Package.swift

# The kill -9 tests, ten times in a row (acceptance for issue 2).
test-kill: deps
	$(SWIFT) build --build-tests
	@for i in 1 2 3 4 5 6 7 8 9 10; do \
	  echo "== run $$i"; \
	  $(SWIFT) test --skip-build --filter 'killed' 2>&1 | grep -E '✔ Test run|✘' || exit 1; \
	done

# Benchmarks: release builds, never part of `make test`.
bench: bench-dispatch bench-stream

bench-dispatch:
	@scripts/install-deps bench
	$(SWIFT) build -c release
	.build/release/haat-bench dispatch

bench-stream: deps
	$(SWIFT) build -c release
	.build/release/haat-bench stream

clean:
	rm -rf .build
