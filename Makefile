# The two README commands, the benchmark and the soak. Each installs what it needs (scripts/setup.sh).
.PHONY: dev test bench soak build
dev:    ## Start Clavex locally with a demo organization, client and user
	bash scripts/dev.sh
test:   ## Run every test: native unit tests, then integration tests through wrangler dev
	bash scripts/test.sh
bench:  ## Benchmark Clavex against a no-op Worker and oidc-provider
	bash scripts/bench.sh
soak:   ## Mixed steady load on one Clavex for 2 minutes; fails on any 5xx, timeout or wrong answer
	bash scripts/soak.sh
build:
	bash scripts/setup.sh && bash scripts/build.sh
