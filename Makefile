# kago: the only entry point. See README.md.
#
#   make                 build bin/*
#   make deps            install the Debian packages the project needs
#   make check           unit tests, fuzz, the bats suite, torture (20 runs
#                        each, root and rootless); ends with one summary line
#   make check SANITIZE=address,undefined
#   make fuzz            every libFuzzer target (tests/fuzz/) for FUZZ_RUNS
#                        executions (10000000), or FUZZ_TIME seconds each;
#                        FUZZ_TARGETS="idmap lease" picks some (mk/fuzz.mk)
#   make format-check    clang-format on the lines changed since FORMAT_BASE
#   make install PREFIX=/usr/local DESTDIR=
#   make demo            a busybox container that shows its own isolation
#   make bench           hyperfine against unshare(1), bwrap, crun and runc
#   make torture         the whole chain killed with SIGKILL at random, RUNS
#                        times (1000), each followed by a normal run; fails
#                        naming what is left on the host (tests/torture.sh);
#                        ROOTLESS=1: the rootless chain as uid 65534.
#                        `make check` runs both with 20 runs each
#                        (KAGO_TORTURE_RUNS=N for more, KAGO_TORTURE=0 skips)
#
# O=DIR puts every build product under DIR (default: the source tree), so
# that several builds can share one checkout.

O ?= .
BUILD := $(O)/build
BIN := $(O)/bin
PREFIX ?= /usr/local
DESTDIR ?=

CXX ?= g++
CC ?= gcc
SANITIZE ?=
OPT ?= -O2
CXXFLAGS ?=
override CXXFLAGS += -std=c++20 $(OPT) -g -Wall -Wextra -Werror -Ilib -MMD -MP \
	-D_GNU_SOURCE -fno-plt
override CFLAGS += -std=gnu11 -O2 -Wall -Wextra -Werror
LDFLAGS ?=
STATIC := -static
# Programs that must link some libraries dynamically (Debian ships no
# libmnl.a) still carry their own C++ runtime: loading libstdc++ and
# libgcc_s costs about 1.3 ms per start here.
DYNAMIC := -static-libstdc++ -static-libgcc
ifneq ($(SANITIZE),)
override CXXFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
override LDFLAGS += -fsanitize=$(SANITIZE)
STATIC :=
DYNAMIC :=
endif

# Each program is cmd/PROGRAM.cpp. A program's extra settings live in
# mk/PROGRAM.mk: LDLIBS_PROGRAM, and DYNAMIC_PROGRAMS for the ones that may
# link dynamically (the rest are static: they run after pivot_root).
PROGRAMS := $(sort $(patsubst cmd/%.cpp,%,$(wildcard cmd/*.cpp)))
DYNAMIC_PROGRAMS :=
SEPARATE_PROGRAMS :=
UNIT_LDLIBS :=
EXTRA_TARGETS :=
TEST_PROGS :=
.DEFAULT_GOAL := all
-include $(sort $(wildcard mk/*.mk))

# MODULES, PROGRAMS and UNIT_SRCS may be narrowed on the command line to
# build one program while another is being written:
#   make O=/tmp/kago-x PROGRAMS=cap-drop MODULES="core caps" UNIT_SRCS=tests/unit/caps_test.cpp
MODULES := $(notdir $(wildcard lib/*))
LIB_SRCS := $(sort $(foreach m,$(MODULES),$(wildcard lib/$(m)/*.cpp)))
LIB_OBJS := $(patsubst %.cpp,$(BUILD)/%.o,$(LIB_SRCS))
UNIT_SRCS := $(sort $(wildcard tests/unit/*_test.cpp))
UNIT_OBJS := $(patsubst %.cpp,$(BUILD)/%.o,$(UNIT_SRCS))
TEST_PROG_SRCS := $(sort $(wildcard tests/progs/*.c))
TEST_PROG_BINS := $(patsubst tests/progs/%.c,$(BUILD)/tests/progs/%,$(TEST_PROG_SRCS))
# LD_PRELOAD shims that stop a program at one step (tests/preload/NAME.c).
TEST_PROG_BINS += $(patsubst tests/preload/%.c,$(BUILD)/tests/preload/%.so,$(sort $(wildcard tests/preload/*.c)))

.PHONY: all deps check unit bats torture install uninstall demo bench clean format format-check
all: $(addprefix $(BIN)/,$(PROGRAMS)) $(EXTRA_TARGETS)

$(BUILD)/%.o: %.cpp
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -c -o $@ $<

$(BUILD)/libkago.a: $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

# --- the multi-call binary ------------------------------------------------------
# Every static program is one binary, $(BUILD)/kago, and $(BIN)/PROGRAM is a
# hard link to it: its main() (generated, lib/core/handoff.hpp) runs the
# program that argv[0] names, and one program enters the next in the same
# process instead of exec'ing it (DESIGN.md, "The in-process hand-off").
# The dynamic programs (DYNAMIC_PROGRAMS: net-setup) and SEPARATE_PROGRAMS
# (pack-selfexec: the packer, with zstd, libsodium, libcrypto and the stub,
# which would double every chain step's memory; image-layers, static, with
# libarchive and libcrypto) stay files of their own.
# cmd/PROGRAM.cpp keeps its `int main`, compiled as kago_main_PROGRAM.
# The objects are explicit targets (static pattern rules), never
# intermediates that make would delete.
MULTI_PROGRAMS := $(filter-out $(DYNAMIC_PROGRAMS) $(SEPARATE_PROGRAMS),$(PROGRAMS))
SOLO_PROGRAMS := $(filter $(DYNAMIC_PROGRAMS) $(SEPARATE_PROGRAMS),$(PROGRAMS))
link_mode = $(if $(filter $(1),$(DYNAMIC_PROGRAMS)),$(DYNAMIC),$(STATIC))
MULTI := $(BUILD)/kago
MULTI_LDLIBS = $(foreach p,$(MULTI_PROGRAMS),$(LDLIBS_$(p)))
CMD_OBJS := $(patsubst %,$(BUILD)/cmd/%.o,$(PROGRAMS))
MAIN_NAMES := $(if $(MULTI_PROGRAMS),kago) $(SOLO_PROGRAMS)
MAIN_SRCS := $(patsubst %,$(BUILD)/gen/main/%.cpp,$(MAIN_NAMES))
MAIN_OBJS := $(MAIN_SRCS:.cpp=.o)
main_symbol = kago_main_$(subst -,_,$(1))
main_programs = $(if $(filter kago,$(1)),$(MULTI_PROGRAMS),$(1))

$(CMD_OBJS): $(BUILD)/cmd/%.o: cmd/%.cpp
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -Dmain=$(call main_symbol,$*) -c -o $@ $<

# The table of programs, regenerated when the lists change: the lists are
# written at parse time to a file that changes only when they do.
MAIN_LIST := $(BUILD)/gen/main/programs.list
ifeq ($(filter clean,$(MAKECMDGOALS)),)
$(shell mkdir -p $(BUILD)/gen/main && echo 'multi: $(MULTI_PROGRAMS); separate: $(SOLO_PROGRAMS)' >$(MAIN_LIST).tmp && \
	{ cmp -s $(MAIN_LIST).tmp $(MAIN_LIST) && rm -f $(MAIN_LIST).tmp || mv -f $(MAIN_LIST).tmp $(MAIN_LIST); })
endif
$(MAIN_SRCS): $(BUILD)/gen/main/%.cpp: $(MAIN_LIST)
	@mkdir -p $(@D)
	@{ echo '// Generated by the Makefile: the programs of $(notdir $@).'; \
	  echo '#include "core/handoff.hpp"'; \
	  $(foreach p,$(call main_programs,$*),echo 'int $(call main_symbol,$(p))(int, char**);';) \
	  echo 'static constexpr kago::handoff::Program kPrograms[] = {'; \
	  $(foreach p,$(call main_programs,$*),echo '    {"$(p)", $(call main_symbol,$(p))},';) \
	  echo '};'; \
	  echo 'int main(int argc, char** argv) {'; \
	  echo '    return kago::handoff::multicall(kPrograms, sizeof kPrograms / sizeof kPrograms[0], argc, argv);'; \
	  echo '}'; } >$@

$(MAIN_OBJS): %.o: %.cpp
	$(CXX) $(CXXFLAGS) -c -o $@ $<

# The code a chain runs, together: lld places the functions of
# mk/kago.order (tools/hot-order.sh) first, so that a chain's ~700
# functions take a few 64 KiB fault-around windows instead of most of the
# 2 MB of text; each page a process touches costs a fault or a page-table
# fill here, and a chain starts 0.8 ms sooner. Every object is built with
# -ffunction-sections for it. Without ld.lld (or with SANITIZE) the
# default linker links as before.
HAVE_LLD := $(if $(SANITIZE),,$(shell command -v ld.lld >/dev/null 2>&1 && echo yes))
ifeq ($(HAVE_LLD),yes)
override CXXFLAGS += -ffunction-sections
MULTI_LDFLAGS := -fuse-ld=lld -Wl,--symbol-ordering-file=mk/kago.order -Wl,--no-warn-symbol-ordering
endif

$(MULTI): $(BUILD)/gen/main/kago.o $(patsubst %,$(BUILD)/cmd/%.o,$(MULTI_PROGRAMS)) $(BUILD)/libkago.a \
		$(filter %.o %.a,$(MULTI_LDLIBS)) mk/kago.order
	$(CXX) $(CXXFLAGS) $(LDFLAGS) $(MULTI_LDFLAGS) $(STATIC) -o $@ $(BUILD)/gen/main/kago.o \
		$(patsubst %,$(BUILD)/cmd/%.o,$(MULTI_PROGRAMS)) $(BUILD)/libkago.a $(MULTI_LDLIBS)

$(addprefix $(BIN)/,$(MULTI_PROGRAMS)): $(BIN)/%: $(MULTI)
	@mkdir -p $(@D)
	ln -f $< $@

$(addprefix $(BIN)/,$(SOLO_PROGRAMS)): $(BIN)/%: $(BUILD)/gen/main/%.o $(BUILD)/cmd/%.o $(BUILD)/libkago.a
	@mkdir -p $(@D)
	@rm -f $@  # it may have been a link to $(MULTI)
	$(CXX) $(CXXFLAGS) $(LDFLAGS) $(call link_mode,$*) -o $@ $(BUILD)/gen/main/$*.o $(BUILD)/cmd/$*.o \
		$(BUILD)/libkago.a $(LDLIBS_$*)


$(BUILD)/unit-tests: $(UNIT_OBJS) $(BUILD)/libkago.a
	$(CXX) $(CXXFLAGS) $(LDFLAGS) -o $@ $(UNIT_OBJS) $(BUILD)/libkago.a \
		-lgtest -lgtest_main -pthread $(UNIT_LDLIBS)

$(BUILD)/tests/progs/%: tests/progs/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -static -o $@ $<

$(BUILD)/tests/preload/%.so: tests/preload/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -shared -fPIC -o $@ $< -ldl

# --- dependencies ----------------------------------------------------------
DEPS := build-essential g++ make pkg-config git ca-certificates \
	libcap-dev libmnl-dev libnftnl-dev libseccomp-dev libzstd-dev \
	libsodium-dev libssl-dev libgtest-dev libarchive-dev libisal-dev nlohmann-json3-dev lld \
	bats bats-assert bats-support busybox-static uidmap passt slirp4netns \
	qemu-system-x86 hyperfine bubblewrap crun runc util-linux iproute2 nftables \
	debootstrap zstd xz-utils cpio kmod jq clang libclang-rt-14-dev squashfs-tools squashfuse makeself \
	procps psmisc file man-db groff-base bash-completion zsh fish dash \
	python3 skopeo umoci podman docker-registry libcurl4-openssl-dev apache2-utils openssl

# apt-get update runs once, and only when something is missing.
deps:
	@missing=$$(for p in $(DEPS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -z "$$missing" ]; then echo "make deps: all $(words $(DEPS)) packages are installed"; \
	else echo "make deps: installing $$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi

# --- tests -----------------------------------------------------------------
# The build under check runs in parallel on every core: CI starts from
# nothing and the whole suite must stay well under 15 minutes. It includes
# the fuzz targets (clang, about 3 CPU minutes), which run a few seconds each.
NPROC := $(shell nproc 2>/dev/null || echo 2)
check:
	@$(MAKE) --no-print-directory -j$(NPROC) all $(BUILD)/unit-tests $(TEST_PROG_BINS) fuzz-build
	@KAGO_BIN=$(abspath $(BIN)) KAGO_BUILD=$(abspath $(BUILD)) tests/run.sh

unit: $(BUILD)/unit-tests
	$(BUILD)/unit-tests

# make bats FILES=tests/bats/unshare-run.bats
bats:
	@$(MAKE) --no-print-directory -j$(NPROC) all $(TEST_PROG_BINS)
	@KAGO_BIN=$(abspath $(BIN)) KAGO_BUILD=$(abspath $(BUILD)) KAGO_UNIT=0 KAGO_FUZZ=0 tests/run.sh $(FILES)

# make torture RUNS=1000 [ROOTLESS=1] [MAX_TIME=S]: see tests/torture.sh.
# MAX_TIME starts no run after S seconds. Status 77 (a skip, with its
# reason) is not a failure.
RUNS ?= 1000
ROOTLESS ?= 0
MAX_TIME ?= 0
torture:
	@$(MAKE) --no-print-directory -j$(NPROC) all
	@KAGO_BIN=$(abspath $(BIN)) KAGO_BUILD=$(abspath $(BUILD)) tests/torture.sh --runs $(RUNS) \
		--max-time $(MAX_TIME) $(if $(filter 1,$(ROOTLESS)),--rootless); rc=$$?; [ $$rc = 77 ] && rc=0; exit $$rc

# --- install ---------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man7 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions \
		$(DESTDIR)$(PREFIX)/share/zsh/vendor-completions \
		$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	install -s -m 0755 $(MULTI) $(DESTDIR)$(PREFIX)/bin/$(firstword $(MULTI_PROGRAMS))
	for p in $(wordlist 2,$(words $(MULTI_PROGRAMS)),$(MULTI_PROGRAMS)); do \
		ln -f $(DESTDIR)$(PREFIX)/bin/$(firstword $(MULTI_PROGRAMS)) $(DESTDIR)$(PREFIX)/bin/$$p; done
	$(if $(SOLO_PROGRAMS),install -s -m 0755 $(addprefix $(BIN)/,$(SOLO_PROGRAMS)) $(DESTDIR)$(PREFIX)/bin/)
	for f in man/*.1; do [ -e "$$f" ] && install -m 0644 $$f $(DESTDIR)$(PREFIX)/share/man/man1/; done; true
	for f in man/*.7; do [ -e "$$f" ] && install -m 0644 $$f $(DESTDIR)$(PREFIX)/share/man/man7/; done; true
	for f in completions/bash/*; do [ -e "$$f" ] && install -m 0644 $$f $(DESTDIR)$(PREFIX)/share/bash-completion/completions/; done; true
	for f in completions/zsh/*; do [ -e "$$f" ] && install -m 0644 $$f $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/; done; true
	for f in completions/fish/*; do [ -e "$$f" ] && install -m 0644 $$f $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/; done; true

uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/bin/,$(PROGRAMS))

# --- demo and bench ---------------------------------------------------------
ROOTFS := $(BUILD)/rootfs-busybox
$(ROOTFS)/.done:
	tests/make-busybox-rootfs.sh $(ROOTFS)

demo: deps
	$(MAKE) all
	$(MAKE) $(ROOTFS)/.done
	PATH=$(abspath $(BIN)):$$PATH examples/demo.sh $(ROOTFS)

bench: all $(ROOTFS)/.done $(BUILD)/bench/floor
	PATH=$(abspath $(BIN)):$$PATH KAGO_FLOOR=$(abspath $(BUILD)/bench/floor) bench/start.sh $(ROOTFS)

$(BUILD)/bench/floor: bench/floor.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -static -o $@ $<

format:
	clang-format -i $(wildcard cmd/*.cpp lib/*/*.cpp lib/*/*.hpp tests/unit/*.cpp)

# The lines a change touches are formatted as .clang-format says: the C and
# C++ lines that differ from FORMAT_BASE (the merge base with origin/main or
# main; on main itself, the previous commit). The tree as a whole predates
# the check, so it is not reformatted at once.
FORMAT_BASE ?= $(shell b=$$(git merge-base HEAD origin/main 2>/dev/null || git merge-base HEAD main 2>/dev/null); \
	[ -n "$$b" ] && [ "$$b" != "$$(git rev-parse HEAD)" ] && echo $$b || git rev-parse HEAD~1 2>/dev/null)
format-check:
	@out=$$(git clang-format-14 --diff --extensions c,cpp,hpp,h $(FORMAT_BASE) -- 2>&1); \
	case "$$out" in diff*) echo "$$out"; echo "make format-check: run 'git clang-format-14 $(FORMAT_BASE)'"; exit 1 ;; \
	*) echo "make format-check: the lines changed since $(FORMAT_BASE) are formatted" ;; esac

clean:
	rm -rf $(BUILD) $(BIN)

-include $(LIB_OBJS:.o=.d) $(UNIT_OBJS:.o=.d) $(CMD_OBJS:.o=.d) $(MAIN_OBJS:.o=.d)
