// libFuzzer target: capability names and lists (lib/caps/caps): cap-drop
// --keep/--drop/--ambient values, pack-selfexec --keep-cap, and
// --securebits.
#include "caps/caps.hpp"
#include "fuzz.hpp"

using namespace kago;
using namespace kago::caps;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto in = fuzz::choose(data, size, "lns");
    auto text = in.text;
    switch (in.kind) {
    case 0:
        // A list prints as one that parses to the same set ("none", for the
        // empty set, is the caller's word, not parse_caps').
        if (auto set = parse_caps(text)) {
            FUZZ_CHECK((*set - all_caps()).empty());
            if (!set->empty()) FUZZ_CHECK(fuzz::gives(parse_caps(format_caps(*set)), *set));
        }
        break;
    case 1:
        if (auto c = cap_from_name(text)) {
            FUZZ_CHECK(*c >= 0 && *c <= last_cap());
            FUZZ_CHECK(fuzz::gives(cap_from_name(cap_name(*c)), *c));
        }
        break;
    case 2:
        if (auto b = parse_securebits(text)) (void)format_securebits(*b);
        break;
    }
    return 0;
}
