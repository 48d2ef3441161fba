# image-layers: libarchive reads and writes the layers, so it links
# dynamically (Debian's libarchive.a would pull a dozen compressors in
# statically); it runs on the host, first in a chain, never after pivot_root.
DYNAMIC_PROGRAMS += image-layers
LDLIBS_image-layers := -larchive -lcrypto
UNIT_LDLIBS += -larchive
