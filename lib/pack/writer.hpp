// Writing a packed file: the stub, the compressed frames (in parallel), the
// manifest, the frame table and the trailer.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "pack/format.hpp"
#include "pack/tree.hpp"

namespace kago::pack {

struct WriteOptions {
    int level = 3;          // zstd level
    bool long_mode = true;  // long-distance matching
    uint32_t frame_size = kDefaultFrameSize;
    unsigned threads = 0;   // 0: one per CPU
    std::span<const uint8_t> stub;
    int spill_fd = -1;      // the tree's spill file, for Content::Spill
    // Ed25519 secret key (64 bytes, libsodium layout), or empty.
    std::vector<uint8_t> secret_key;
    // Called after each frame: bytes of contents done, and the total.
    std::function<void(uint64_t done, uint64_t total)> progress;
};

struct WriteResult {
    Trailer trailer;
    uint64_t file_size = 0;
};

// Write the packed file to out (a fresh, empty regular file).
Result<WriteResult> write_packed(int out, const Tree::Built& built, const WriteOptions& o);

// Write the packed file to `path` through a temporary file beside it (mode
// 0755, synced), renamed over `path` once complete: a reader never sees
// half a file, and a failure leaves nothing.
Result<WriteResult> write_packed_file(const std::string& path, const Tree::Built& built,
                                      const WriteOptions& o);

// Lower level, for the hostile corpus: frames from raw contents and any
// manifest, with no checks.
Result<WriteResult> write_raw(int out, const Manifest& m, std::span<const uint8_t> contents,
                              const WriteOptions& o);

// zstd-compress one buffer with the options' level and long mode.
Result<std::vector<uint8_t>> compress(std::span<const uint8_t> in, int level, bool long_mode);

}  // namespace kago::pack
