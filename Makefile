# The two README commands, and the benchmark. Each installs what it needs (scripts/setup.sh).
.PHONY: dev test bench build
dev:    ## Start Clavex locally with a demo organization, client and user
	bash scripts/dev.sh
test:   ## Run every test: native unit tests, then integration tests through wrangler dev
	bash scripts/test.sh
bench:  ## Benchmark Clavex against a no-op Worker and oidc-provider
	bash scripts/bench.sh
build:
	bash scripts/setup.sh && bash scripts/build.sh
