# SwiftVLA — the two entry points from the README, plus helpers.
SWIFT ?= swift

.PHONY: demo test build bench bootstrap clean

bootstrap:
	scripts/bootstrap

build: bootstrap
	$(SWIFT) build -c release --product vla

## Bootstrap, build and run the main job.
demo: build
	.build/release/vla demo

## Bootstrap and run the whole test suite, one test at a time: in parallel, CPU-bound tests
## fill Swift's two-thread cooperative pool and starve the gRPC servers of fleet tests.
test: bootstrap
	$(SWIFT) test --no-parallel

## Performance benchmarks (never part of `make test`).
bench: build
	scripts/bootstrap --bench
	.build/release/vla bench tensor

clean:
	rm -rf .build
