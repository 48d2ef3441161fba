# image-layers: libarchive reads and writes the layers. It links statically,
# like the other programs: started first in a chain, a dynamic one paid
# about 5 ms loading libarchive, libxml2, ICU and libcrypto at every start.
# lib/image/archive_link.cpp keeps libarchive's format table (and libxml2
# with it) out of the link: -u makes the linker take that member of
# libkago.a before it reads libarchive.a.
# Part of the multi-call binary, so that a chain started from an image
# enters unshare-run in process: 0.22 ms over a chain given --layer,
# against 1.21 ms as a file of its own (1,000 interleaved runs of each).
# Its chain-form functions are in mk/kago.order (tools/hot-order.sh samples
# a chain from an image too); without them, libarchive's and libcrypto's
# code spread the chain's hot pages (17 more page faults a chain). A
# process that loaded libcurl or ISA-L (handoff::open_library) always execs.
# --pull loads libcurl.so.4 with dlopen(3) (lib/image/registry.cpp): not
# linked, so a chain start never pays for it (DESIGN.md); it needs only
# libcurl4 at run time, and the headers of libcurl4-openssl-dev to build.
# gzip layers are inflated by ISA-L (lib/image/decompress.cpp), loaded from
# libisal.so.2 with dlopen(3) the same way: Debian's libisal-dev ships no
# libisal.a. Without libisal2, zlib (linked) inflates them; zstd is libzstd's.
LDLIBS_image-layers := -Wl,-u,__archive_write_entry_filetype_unsupported -larchive -lzstd -llzma -lbz2 -lz -lcrypto -pthread
UNIT_LDLIBS += -larchive -lz
