# Thin wrapper around meson (DESIGN.md §1). `make demo` and `make check` do the whole set-up on a
# fresh Debian 12 machine: packages (tools/deps.sh), configure, build, then their job.

BUILD ?= build
BUILD_SAN ?= build-san
# The benchmark measures what users install: no invariant walks, no fault shims (bench/README.md).
BUILD_BENCH ?= build-bench
MESON_OPTS ?= -Dexpensive-checks=true -Dfault-injection=true

.PHONY: all deps build demo check check-fast check-san format bench crash soak clean install

all: build

deps:
	@./tools/deps.sh

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) --werror $(MESON_OPTS)

build: $(BUILD)/build.ninja
	meson compile -C $(BUILD)

$(BUILD_SAN)/build.ninja: | deps
	meson setup $(BUILD_SAN) --werror $(MESON_OPTS) -Db_sanitize=address,undefined -Db_lundef=false

demo: build
	./tools/demo.sh $(BUILD)

check: build $(BUILD_SAN)/build.ninja
	./tools/check.sh $(BUILD) $(BUILD_SAN)

check-fast: build
	meson test -C $(BUILD) --print-errorlogs

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# The long crash loop (tests/crash/): K daemon kills under load, then the checker; prints the figures.
K ?= 1000
crash: build
	meson test -C $(BUILD) --print-errorlogs -t 1000 crash-loop --test-args='--kills=$(K)'
	@grep '^crash-loop:' $(BUILD)/meson-logs/testlog.txt

# A steady load for HOURS hours without kills; RSS, fds and database size every minute.
HOURS ?= 1
soak: build
	meson test -C $(BUILD) --verbose -t 1000 crash-loop \
		--test-args="--soak-seconds=$$(( $(HOURS) * 3600 ))"

$(BUILD_BENCH)/build.ninja: | deps
	meson setup $(BUILD_BENCH) --werror -Dexpensive-checks=false -Dfault-injection=false -Dtests=false

bench: $(BUILD_BENCH)/build.ninja
	meson compile -C $(BUILD_BENCH)
	./$(BUILD_BENCH)/bench/durable-bench

install: build
	meson install -C $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_BENCH)
