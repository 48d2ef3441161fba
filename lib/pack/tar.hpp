// A reader for tar streams: POSIX ustar, pax (extended headers with path,
// linkpath, size, uid, gid, mtime and SCHILY.xattr.*), and GNU (long names
// and long link names, base-256 numbers). Sparse files and multi-volume
// archives are refused. The reader checks every header's checksum, bounds
// every length, and hands names back as they are: the caller normalizes
// them (normalize_name). It is fuzzed (tests/fuzz/pack-tar.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/result.hpp"
#include "pack/format.hpp"

namespace kago::pack {

struct TarEntry {
    Type type = Type::File;  // Hardlink: linkname names the target
    std::string name;
    std::string linkname;
    uint32_t mode = 0;
    uint32_t uid = 0, gid = 0;
    int64_t mtime = 0;
    uint64_t size = 0;
    uint32_t major = 0, minor = 0;
    std::vector<std::pair<std::string, std::string>> xattrs;
};

class TarReader {
  public:
    // read(buf, n) reads up to n bytes; 0 means the end of the stream.
    using ReadFn = std::function<Result<size_t>(uint8_t* buf, size_t n)>;
    explicit TarReader(ReadFn read) : read_(std::move(read)) {}

    // The next entry, or false at the end of the archive. The data of the
    // previous entry is skipped if it was not read.
    Result<bool> next(TarEntry& e);
    // The current entry's data, in pieces, to sink. Call at most once.
    Status read_data(const std::function<Status(const uint8_t*, size_t)>& sink);

  private:
    Status read_exact(uint8_t* buf, size_t n, bool* eof = nullptr);
    Status skip(uint64_t n);
    Result<std::string> read_string(uint64_t size, uint64_t max, const char* what);
    ReadFn read_;
    uint64_t remaining_ = 0;  // data bytes of the current entry not yet read
    uint64_t padding_ = 0;
    uint64_t block_ = 0;  // blocks read, for messages
};

// A tar name made relative and clean: leading "/" and "./" removed, "//"
// and "/./" collapsed, a trailing "/" dropped. "" is the root. A ".."
// component is an error.
Result<std::string> normalize_name(std::string_view name);

}  // namespace kago::pack
