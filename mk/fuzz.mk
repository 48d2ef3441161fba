# libFuzzer targets: tests/fuzz/TARGET.cpp, one per parser that a user or a
# file reaches (tests/fuzz/README.md lists them).
#
# They are built with clang, -fsanitize=fuzzer,address,undefined, from the
# same lib/ sources as the programs but compiled a second time into
# $(BUILD)/fuzz/, so that the g++ build is left alone:
#   $(BUILD)/fuzz/obj/lib/...o   lib/ compiled by clang, with coverage
#   $(BUILD)/fuzz/libkago.a      the archive each target links
#   $(BUILD)/fuzz/TARGET         the fuzzers
#   $(BUILD)/fuzz/corpus/TARGET  the corpus each run grows, seeded from
#                                tests/fuzz/corpus/TARGET (committed)
#
#   make fuzz                          every target for FUZZ_RUNS executions
#   make fuzz FUZZ_TIME=60             every target for 60 seconds instead
#   make fuzz FUZZ_TARGETS="idmap lease"
# A crash is left in $(BUILD)/fuzz/crash-TARGET-*; rerun it with
#   $(BUILD)/fuzz/TARGET FILE
# `make check` builds them (fuzz-build) and tests/run.sh runs each briefly.
FUZZ_CXX ?= clang++
FUZZ_RUNS ?= 10000000
FUZZ_TIME ?=
FUZZ_SANITIZE := address,undefined
FUZZ_CXXFLAGS := -std=c++20 -O1 -g -Ilib -D_GNU_SOURCE -MMD -MP -Wall -Wextra \
	-fno-omit-frame-pointer -fno-sanitize-recover=all
FUZZ_LDLIBS := -larchive -lz -lseccomp -lcap -lnftnl -lmnl -lzstd -lsodium -lcrypto -pthread
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_ALL := $(sort $(patsubst tests/fuzz/%.cpp,%,$(wildcard tests/fuzz/*.cpp)))
FUZZ_TARGETS ?= $(FUZZ_ALL)
# (mk/*.mk is read before the Makefile sets LIB_SRCS.)
FUZZ_LIB_OBJS := $(patsubst %.cpp,$(FUZZ_DIR)/obj/%.o,$(sort $(wildcard lib/*/*.cpp)))
FUZZ_BINS := $(addprefix $(FUZZ_DIR)/,$(FUZZ_ALL))

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)

$(FUZZ_DIR)/obj/%.o: %.cpp
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer-no-link,$(FUZZ_SANITIZE) -c -o $@ $<

$(FUZZ_DIR)/libkago.a: $(FUZZ_LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/%: $(FUZZ_DIR)/obj/tests/fuzz/%.o $(FUZZ_DIR)/libkago.a
	$(FUZZ_CXX) -fsanitize=fuzzer,$(FUZZ_SANITIZE) -o $@ $< $(FUZZ_DIR)/libkago.a $(FUZZ_LDLIBS)

# The longest input each target is given: short for option values, longer
# for files. A smaller ASan quarantine than the default 256 MB keeps the
# targets fast and small; inputs are a few KiB.
FUZZ_MAX_LEN := 4096
FUZZ_MAX_LEN_parse := 512
FUZZ_MAX_LEN_caps := 512
FUZZ_MAX_LEN_cg-limit := 1024
FUZZ_MAX_LEN_mount-spec := 1024
FUZZ_MAX_LEN_net-addr := 512
FUZZ_MAX_LEN_ns-options := 1024
FUZZ_MAX_LEN_pack-tar := 65536
FUZZ_MAX_LEN_image-layer := 65536
FUZZ_MAX_LEN_pack-elf := 16384
FUZZ_ASAN_OPTIONS ?= quarantine_size_mb=16
fuzz_max_len = $(or $(FUZZ_MAX_LEN_$(1)),$(FUZZ_MAX_LEN))
fuzz_flags = $(if $(FUZZ_TIME),-max_total_time=$(FUZZ_TIME),-runs=$(FUZZ_RUNS)) -max_len=$(call fuzz_max_len,$(1)) \
	-print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crash-$(1)-

# Each target in turn; the first that fails stops the run.
define fuzz_run
	@mkdir -p $(FUZZ_DIR)/corpus/$(1)
	@echo "== fuzz $(1): $(if $(FUZZ_TIME),$(FUZZ_TIME) seconds,$(FUZZ_RUNS) runs) (log: $(FUZZ_DIR)/$(1).log)"
	@ASAN_OPTIONS=$(FUZZ_ASAN_OPTIONS) $(FUZZ_DIR)/$(1) $(call fuzz_flags,$(1)) \
		$(FUZZ_DIR)/corpus/$(1) tests/fuzz/corpus/$(1) >$(FUZZ_DIR)/$(1).log 2>&1; rc=$$?; \
	grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|INFO: Seed|SUMMARY|==[0-9]+==ERROR)|runtime error|check failed' \
		$(FUZZ_DIR)/$(1).log; \
	[ $$rc -eq 0 ] || { echo "fuzz $(1): failed (status $$rc)"; exit 1; }

endef
fuzz: $(addprefix $(FUZZ_DIR)/,$(FUZZ_TARGETS))
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_run,$(t)))

-include $(FUZZ_LIB_OBJS:.o=.d) $(patsubst %,$(FUZZ_DIR)/obj/tests/fuzz/%.d,$(FUZZ_ALL))
