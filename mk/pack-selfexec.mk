# pack-selfexec: the packer, and the static runner ("stub") it puts at the
# front of every packed file.
#
# The stub (lib/pack/stub/stub.cpp) is built from the same lib/ sources as
# the programs (core, ns, mount, caps, cgroup, pack, and lib/net/usermode
# for pasta), compiled a second time for
# size: -Os, no exception tables, one section per function so that
# --gc-sections keeps only what the runner calls, and lib/pack/stub/slim.c
# to keep glibc's gettext and libsodium's unused runtime out. It is then
# embedded in the packer through an .incbin object, so that pack-selfexec
# is one file. It must stay under 1.5 MiB (checked here).
PACK_STUB := $(BUILD)/pack/kago-stub
PACK_STUB_MAX := 1572864
PACK_STUB_SRCS := $(filter-out lib/core/cli.cpp,$(wildcard lib/core/*.cpp)) \
	$(wildcard lib/ns/*.cpp lib/mount/*.cpp lib/caps/*.cpp) \
	$(filter-out lib/cgroup/spawn.cpp,$(wildcard lib/cgroup/*.cpp)) \
	lib/net/usermode.cpp lib/net/addr.cpp \
	lib/pack/format.cpp lib/pack/reader.cpp lib/pack/cache.cpp lib/pack/runtime.cpp
PACK_STUB_OBJS := $(patsubst %.cpp,$(BUILD)/stub/%.o,$(PACK_STUB_SRCS))
PACK_STUB_CXXFLAGS = $(filter-out -O% -g -fsanitize=% -fno-sanitize-recover=%,$(CXXFLAGS)) -Os \
	-ffunction-sections -fdata-sections -fno-exceptions -fno-asynchronous-unwind-tables
# A static file of its own, not a link to the multi-call binary: its
# libraries would weigh on every chain step, and it hands off to none.
SEPARATE_PROGRAMS += pack-selfexec
# --image reads the image store and imports archives (lib/image: libarchive).
LDLIBS_pack-selfexec := $(BUILD)/pack/stub-blob.o -Wl,-u,__archive_write_entry_filetype_unsupported -larchive \
	-lzstd -llzma -lbz2 -lz -lsodium -lcrypto -lseccomp -lcap -pthread
UNIT_LDLIBS += -lzstd -lsodium -lcrypto
ifneq ($(filter pack-selfexec,$(PROGRAMS)),)
EXTRA_TARGETS += $(BUILD)/tests/pack-hostile
endif

$(BUILD)/stub/%.o: %.cpp
	@mkdir -p $(@D)
	$(CXX) $(PACK_STUB_CXXFLAGS) -c -o $@ $<

$(BUILD)/stub/slim.o: lib/pack/stub/slim.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Os -c -o $@ $<

$(BUILD)/stub/libstub.a: $(PACK_STUB_OBJS)
	rm -f $@
	ar rcs $@ $^

# The code a warm run takes, together: with ld.lld, the functions of
# mk/stub.order (tools/stub-order.sh: perf samples of warm runs, mapped
# through the unstripped link, $(PACK_STUB).full) come first, so that a
# run touches a few 64 KiB fault-around windows of text instead of most
# of its 1.2 MB (as the multi-call binary does with mk/kago.order).
STUB_LLD_FLAGS := -fuse-ld=lld -Wl,--symbol-ordering-file=mk/stub.order -Wl,--no-warn-symbol-ordering
STUB_LDFLAGS = $(if $(filter yes,$(HAVE_LLD)),$(STUB_LLD_FLAGS))

$(PACK_STUB): $(BUILD)/stub/lib/pack/stub/stub.o $(BUILD)/stub/slim.o $(BUILD)/stub/libstub.a mk/stub.order
	@mkdir -p $(@D)
	$(CXX) -static -Wl,--gc-sections $(STUB_LDFLAGS) -o $@.full $(filter %.o %.a,$^) -lzstd -lsodium -lcrypto -lseccomp -lcap -pthread
	strip -o $@ $@.full
	@size=$$(stat -c %s $@); if [ $$size -gt $(PACK_STUB_MAX) ]; then \
		echo "$@: $$size bytes, over the $(PACK_STUB_MAX)-byte limit" >&2; rm -f $@; exit 1; fi

$(BUILD)/pack/stub-blob.S: $(PACK_STUB)
	printf '\t.section .rodata\n\t.balign 64\n\t.globl kago_pack_stub_start\nkago_pack_stub_start:\n\t.incbin "%s"\n\t.globl kago_pack_stub_end\nkago_pack_stub_end:\n\t.section .note.GNU-stack,"",@progbits\n' "$(abspath $(PACK_STUB))" >$@

$(BUILD)/pack/stub-blob.o: $(BUILD)/pack/stub-blob.S $(PACK_STUB)
	$(CC) -c -o $@ $<

$(BIN)/pack-selfexec: $(BUILD)/pack/stub-blob.o

# The hostile corpus generator (tests/pack/hostile.cpp).
$(BUILD)/tests/pack-hostile: $(BUILD)/tests/pack/hostile.o $(BUILD)/libkago.a $(BUILD)/pack/stub-blob.o
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/pack/stub-blob.o $(BUILD)/libkago.a -lzstd -lsodium -lcrypto -pthread

-include $(PACK_STUB_OBJS:.o=.d) $(BUILD)/stub/lib/pack/stub/stub.d $(BUILD)/tests/pack/hostile.d
