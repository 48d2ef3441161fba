// libFuzzer target: lib/core/parse (numbers, sizes such as --memory and
// --tmpfs DST:SIZE, decimal fractions such as --cpus, split, human_size)
// and container names (KAGO_NAME, --name).
#include <string>

#include "core/parse.hpp"
#include "core/state.hpp"
#include "fuzz.hpp"

using namespace kago;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto in = fuzz::choose(data, size, "uiSfhsn");
    auto text = in.text;
    switch (in.kind) {
    case 0:
        if (auto v = parse::u64(text, "u64")) FUZZ_CHECK(fuzz::gives(parse::u64(std::to_string(*v), "again"), *v));
        break;
    case 1:
        if (auto v = parse::i64(text, "i64")) FUZZ_CHECK(fuzz::gives(parse::i64(std::to_string(*v), "again"), *v));
        break;
    case 2:
        if (auto v = parse::size(text, "size")) {
            FUZZ_CHECK(*v == UINT64_MAX || fuzz::gives(parse::size(std::to_string(*v), "again"), *v));
            (void)parse::human_size(*v);
        }
        break;
    case 3: {
        // The first character picks the scale: 1, 100 (percent), 100000
        // (a CPU period in us), 10^9 (nanoseconds).
        static const uint64_t scales[] = {1, 100, 100000, 1000000000};
        uint64_t scale = scales[text.empty() ? 0 : static_cast<unsigned char>(text[0]) % 4];
        if (!text.empty()) text.remove_prefix(1);
        if (auto v = parse::fraction(text, scale, "fraction")) {
            auto whole = parse::u64(text.substr(0, text.find('.')), "whole");
            if (whole) FUZZ_CHECK(*v / scale == *whole);
        }
        break;
    }
    case 4: {
        uint64_t v = 0;
        for (size_t i = 0; i < text.size() && i < 8; ++i) v = v << 8 | static_cast<unsigned char>(text[i]);
        FUZZ_CHECK(!parse::human_size(v).empty());
        break;
    }
    case 5: {
        char sep = text.empty() ? ',' : text[0];
        auto parts = parse::split(text, sep);
        std::string joined;
        for (size_t i = 0; i < parts.size(); ++i) joined += (i ? std::string(1, sep) : "") + parts[i];
        FUZZ_CHECK(joined == text);
        break;
    }
    case 6:
        if (state::validate_name(text)) {
            FUZZ_CHECK(!text.empty() && text.size() <= 32 && text[0] != '.' && text[0] != '-');
            FUZZ_CHECK(text.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                              "0123456789_.-") == std::string_view::npos);
        }
        break;
    }
    return 0;
}
