// What the libFuzzer targets share (make fuzz; mk/fuzz.mk).
//
// Most targets fuzz several parsers: the input's first byte chooses one
// (a letter from the target's list, so that the seeds in
// tests/fuzz/corpus/TARGET/ read as text; any other byte picks by its
// value), and the rest is the text that parser gets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace fuzz {

struct Input {
    size_t kind = 0;        // index into the target's list of parsers
    std::string_view text;  // the input after the first byte
};

inline Input choose(const uint8_t* data, size_t size, std::string_view kinds) {
    Input in;
    if (size == 0 || kinds.empty()) return in;
    auto k = kinds.find(static_cast<char>(data[0]));
    in.kind = k != std::string_view::npos ? k : data[0] % kinds.size();
    in.text = std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1);
    return in;
}

// The text cut at each `sep` (empty pieces kept).
inline std::vector<std::string_view> pieces(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    for (;;) {
        auto p = s.find(sep);
        out.push_back(s.substr(0, p));
        if (p == std::string_view::npos) return out;
        s.remove_prefix(p + 1);
    }
}

// A parse that succeeded with the value v.
template <class R, class T>
bool gives(const R& r, const T& v) {
    return r && *r == v;
}

[[noreturn]] inline void fail(const char* file, int line, const char* what) {
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
    abort();
}

}  // namespace fuzz

// A property the parser must keep (a round trip, a bound): a failure stops
// the run like a crash, and libFuzzer saves the input.
#define FUZZ_CHECK(cond) ((cond) ? (void)0 : ::fuzz::fail(__FILE__, __LINE__, #cond))
