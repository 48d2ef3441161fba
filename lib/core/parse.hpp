// Parsers for the values options take. They return a usage Error naming the
// value and what was expected.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace kago::parse {

// A decimal unsigned integer, the whole string.
Result<uint64_t> u64(std::string_view s, std::string_view what);
// A decimal signed integer, the whole string.
Result<int64_t> i64(std::string_view s, std::string_view what);
// A size: digits with an optional K/M/G/T suffix (binary: K = 1024), an
// optional trailing "B" or "iB". "max" gives UINT64_MAX.
Result<uint64_t> size(std::string_view s, std::string_view what);
// Split on a character; empty fields are kept.
std::vector<std::string> split(std::string_view s, char sep);
// A non-negative decimal fraction like "1.5"; returns it times `scale`.
Result<uint64_t> fraction(std::string_view s, uint64_t scale, std::string_view what);
// Human size: "64 MiB", "1.5 GiB", "512 bytes".
std::string human_size(uint64_t bytes);

}  // namespace kago::parse
