# The two commands: `make demo` and `make test`. Both install what is missing first.
SWIFT ?= swift
BIN := .build/debug

.PHONY: all deps build demo test test-unit check-protos protos format lint test-kill bench bench-dispatch bench-stream bench-fetch bench-ranges bench-analysis bench-swarm check-deploy clean

all: build

deps:
	@scripts/install-deps

build: deps
	$(SWIFT) build

demo: deps
	$(SWIFT) build --product haat
	$(BIN)/haat demo

# Every test: the Swift suites (unit, protocol, store, fetch, records, cluster), the check
# that the generated protocol code matches protos/, the formatting lint, and every report
# against the independent DuckDB reference on a small generated sample (scripts/analysis).
test: deps
	@scripts/install-deps analysis
	@scripts/install-deps test
	$(SWIFT) build --build-tests
	scripts/gen-protos --check
	@$(MAKE) --no-print-directory lint
	scripts/run-tests
	scripts/analysis/run

protos: deps
	scripts/gen-protos

# Generated protocol code is left as protoc-gen-swift writes it (gen-protos --check guards it).
SWIFT_FILES = $(shell find Sources Tests Benchmarks -name '*.swift' -not -path '*/Generated/*') Package.swift

format:
	@$(SWIFT) format --in-place $(SWIFT_FILES)

lint:
	@$(SWIFT) format lint --strict $(SWIFT_FILES) && echo "lint: swift format finds nothing to change"

# The kill -9 tests, ten times in a row (acceptance for issue 2).
test-kill: deps
	$(SWIFT) build --build-tests
	@for i in 1 2 3 4 5 6 7 8 9 10; do \
	  echo "== run $$i"; \
	  $(SWIFT) test --skip-build --filter 'killed' 2>&1 | grep -E '✔ Test run|✘' || exit 1; \
	done

# Acceptance runs, each alone, never beside the rest of the suite: issue 11's rate governor
# (8 workers, 40 accounts, one token's limit, on the wall clock); issue 12's media_lift
# calibration (1,000 seeded runs), the keyed map's memory at its bound, and every report
# against DuckDB (and the clv fits against lifetimes) on 1M posts, 1M orders and 200k
# messages, once on one worker and once merged from 4 workers over byte ranges; issue 13's
# failover: kill -9 of the active coordinator of two on one PostgreSQL, ten times in a row.
.PHONY: accept
accept: deps
	@scripts/install-deps analysis
	@scripts/install-deps lifetimes
	$(SWIFT) build --build-tests
	HAAT_ACCEPT=1 $(SWIFT) test --skip-build --no-parallel --filter 'eightWorkersOnFortyAccounts|MediaLiftKernelTests/calibration|CustomersTests/memoryAtTheBound'
	@scripts/install-deps postgres
	HAAT_FAILOVER_ROUNDS=10 scripts/run-tests --filter FailoverTests
	ANALYSIS_POSTS=1000000 ANALYSIS_ORDERS=1000000 ANALYSIS_MESSAGES=200000 ANALYSIS_WORKERS=1 \
	  ANALYSIS_CLV_PYTHON=.build/clv-venv/bin/python scripts/analysis/run
	ANALYSIS_POSTS=1000000 ANALYSIS_ORDERS=1000000 ANALYSIS_MESSAGES=200000 ANALYSIS_WORKERS=4 \
	  ANALYSIS_SPLIT_BYTES=8MiB ANALYSIS_CLV_PYTHON=.build/clv-venv/bin/python scripts/analysis/run

# Benchmarks: release builds, never part of `make test`.
bench: bench-dispatch bench-stream bench-fetch bench-ranges bench-analysis bench-swarm

# Haat on SQLite (full, normal) and on PostgreSQL (a server of its own, scripts/postgres)
# beside beanstalkd, in one run.
bench-dispatch:
	@scripts/install-deps bench
	@scripts/install-deps postgres
	$(SWIFT) build -c release
	@pg=$$(mktemp -u /tmp/haat-bench-pg.XXXXXX); url=$$(scripts/postgres start $$pg) || exit 1; \
	  HAAT_POSTGRES_URL=$$url .build/release/haat-bench dispatch; status=$$?; \
	  scripts/postgres stop $$pg; exit $$status
	.build/release/haat-bench latency

# W = 1,000 / 4,000 / 10,000 simulated worker sessions during a 50,000-task job, on SQLite
# and on PostgreSQL (a server of its own, scripts/postgres): heartbeat round trips,
# dispatch rate, the coordinator's RSS and CPU (issue 13).
bench-swarm:
	@scripts/install-deps postgres
	$(SWIFT) build -c release
	@pg=$$(mktemp -u /tmp/haat-bench-pg.XXXXXX); url=$$(scripts/postgres start $$pg) || exit 1; \
	  HAAT_POSTGRES_URL=$$url .build/release/haat-bench swarm; status=$$?; \
	  scripts/postgres stop $$pg; exit $$status

bench-stream: deps
	$(SWIFT) build -c release
	.build/release/haat-bench stream

# One ≥ 1 GB export read whole, then split into byte ranges over 1, 2 and 4 workers (issue 11).
bench-ranges: deps
	$(SWIFT) build -c release
	.build/release/haat-bench ranges

# engagement + best_time + attribution over 1M posts and 1M orders: Haat (2 workers)
# against DuckDB (2 threads, from PyPI), the I/O floor and the CSV → kernel path (issue 12).
bench-analysis: deps
	@scripts/install-deps analysis
	$(SWIFT) build -c release
	.build/release/haat-bench analysis

# The fetch path alone against curl on a local nginx (both installed from apt).
bench-fetch:
	@scripts/install-deps fetch
	$(SWIFT) build -c release
	.build/release/haat-bench fetch

# deploy/ without Docker or a cluster (deploy/README.md): the Kubernetes manifests and
# compose.yaml against their schemas, checkov on the manifests and the Dockerfile, the
# runtime image's packages against ldd of a release build; then compose.yaml's topology
# run natively (PostgreSQL from scripts/postgres), with a kill -9 of the active
# coordinator. Tools from PyPI into .build/deploy-venv. Not part of `make test`.
check-deploy: deps
	@scripts/install-deps postgres
	$(SWIFT) build -c release --product haat
	HAAT_RELEASE_BIN=.build/release/haat scripts/check-deploy
	HAAT_BIN=.build/release/haat scripts/compose-native

clean:
	rm -rf .build

# The fault suite (issue 10): kill -9 storms, coordinator kills, stale attempts, hostile
# HTTP, a full disk, clock steps, a network partition, restarts under attached clients;
# real processes, a history of every message and an independent checker. A few minutes;
# root for the partition and the disk (tmpfs). docs/faults.md; one scenario:
# scripts/faults/run kill9-storm.
.PHONY: faults
faults: deps
	$(SWIFT) build -c release --product haat
	HAAT_BIN=.build/release/haat scripts/faults/run

# Fuzzing (issue 9): the libFuzzer targets of Fuzz/, built with -sanitize=fuzzer,address.
# That is a second cold build, so it is not part of `make test` (which replays the committed
# corpus, Fuzz/Corpus/). RUNS=N inputs per target (default 1000000); MERGE=1 adds the inputs
# that found new coverage to the corpus; crashes land in Fuzz/Crashes/.
.PHONY: fuzz
fuzz: deps
	scripts/fuzz

# The test suite under AddressSanitizer (issue 9) or ThreadSanitizer (issue 10): a
# separate instrumented build in .build-asan / .build-tsan, so never part of `make test`.
.PHONY: asan tsan
asan: deps
	$(SWIFT) build --build-tests --scratch-path .build-asan -Xswiftc -sanitize=address
	# Leak reports are left out: Foundation.Process and XCTest allocations live until exit.
	ASAN_OPTIONS=detect_leaks=0 SWIFT_BACKTRACE=enable=no HAAT_TEST_TIME_SCALE=4 scripts/run-tests --scratch-path .build-asan

tsan: deps
	$(SWIFT) build --build-tests --scratch-path .build-tsan -Xswiftc -sanitize=thread
	SWIFT_BACKTRACE=enable=no HAAT_TEST_TIME_SCALE=4 scripts/run-tests --scratch-path .build-tsan
