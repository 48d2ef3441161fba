// libFuzzer target: the trailer, the frame table and the manifest of a
// packed file, parsed from arbitrary bytes (make fuzz).
#include <cstddef>
#include <cstdint>
#include <span>

#include "pack/format.hpp"

using namespace kago::pack;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::span<const uint8_t> in(data, size);
    if (size < kTrailerSize) {
        Trailer one;
        one.total_entries = 1;
        (void)decode_manifest(in, one);
        return 0;
    }
    auto t = decode_trailer(in.last(kTrailerSize), size);
    if (!t) {
        // Still exercise the manifest parser with a permissive trailer.
        Trailer any;
        any.total_entries = 1 + (data[0] % 8);
        any.total_bytes = data[1];
        (void)decode_manifest(in.first(size - kTrailerSize), any);
        return 0;
    }
    uint64_t table = uint64_t{t->frame_count} * kFrameRecordSize;
    if (t->frame_table_offset + table > size) return 0;
    auto frames = decode_frame_table(in.subspan(t->frame_table_offset, table), *t);
    (void)root_hash(*t, in.subspan(t->frame_table_offset, table));
    if (t->manifest_offset + t->manifest_csize <= size)
        (void)decode_manifest(in.subspan(t->manifest_offset, t->manifest_csize), *t);
    return 0;
}
