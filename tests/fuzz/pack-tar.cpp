// libFuzzer target: the tar reader and name normalization on arbitrary
// bytes: pack-selfexec's tar input (make fuzz).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "pack/tar.hpp"

using namespace kago;
using namespace kago::pack;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    size_t pos = 0;
    TarReader r([&](uint8_t* buf, size_t n) -> Result<size_t> {
        size_t k = std::min(n, size - pos);
        memcpy(buf, data + pos, k);
        pos += k;
        return k;
    });
    TarEntry e;
    for (int i = 0; i < 1000; ++i) {
        auto more = r.next(e);
        if (!more || !*more) break;
        (void)normalize_name(e.name);
        if (i % 2 == 0) {
            uint64_t total = 0;
            auto s = r.read_data([&](const uint8_t*, size_t n) -> Status {
                total += n;
                return {};
            });
            if (!s) break;
        }
    }
    return 0;
}
