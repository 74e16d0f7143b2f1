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

## Bootstrap and run the whole test suite.
test: bootstrap
	$(SWIFT) test

## Performance benchmarks (never part of `make test`).
bench: build
	scripts/bootstrap --bench
	.build/release/vla bench tensor

clean:
	rm -rf .build
