// libFuzzer target: cap-drop --seccomp FILE (lib/caps/json_value,
// lib/caps/seccomp): the JSON reader and the OCI/Docker profile on top of
// it; and the JSON writer (lib/core/json), read back by the reader.
#include "caps/json_value.hpp"
#include "caps/seccomp.hpp"
#include "core/json.hpp"
#include "fuzz.hpp"

using namespace kago;
using namespace kago::caps;

namespace {

size_t depth_walk(const JsonValue& v, size_t depth) {
    FUZZ_CHECK(v.line >= 1 && v.column >= 1);
    FUZZ_CHECK(!where(v).empty());
    size_t most = depth;
    for (const auto& i : v.items) most = std::max(most, depth_walk(i, depth + 1));
    for (const auto& [k, f] : v.fields) {
        FUZZ_CHECK(v.get(k) != nullptr);
        most = std::max(most, depth_walk(f, depth + 1));
    }
    uint64_t n;
    (void)v.as_u64(n);
    return most;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto in = fuzz::choose(data, size, "jpPe");
    auto text = in.text;
    switch (in.kind) {
    case 0:
        if (auto v = parse_json(text)) (void)depth_walk(*v, 0);
        break;
    case 1:
    case 2: {
        // The profile's includes/excludes depend on the kept capabilities:
        // none, or every one.
        CapSet kept = in.kind == 1 ? CapSet{} : CapSet{~uint64_t{0} >> (63 - 40)};
        if (auto p = parse_profile(text, "fuzz.json", kept)) {
            (void)describe(*p);
            make_log_only(*p);
            (void)describe(*p);
        }
        break;
    }
    case 3: {
        // What json::escape writes is one JSON string that reads back the same.
        auto s = json::escape(text);
        auto v = parse_json(s);
        FUZZ_CHECK(v && v->is(JsonValue::Type::String) && v->text == text);
        break;
    }
    }
    return 0;
}
