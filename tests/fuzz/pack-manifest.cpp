// libFuzzer target: a packed file's manifest and settings (lib/pack/format
// decode_manifest; lib/pack/cache decode_config, which reads the cache's
// config file back), what the runner makes of the settings (its
// environment, its capabilities), and --kago-bind SRC:DST.
//
// The input's first byte says how many entries the trailer announces; the
// rest is the manifest. pack-trailer covers the trailer and frame table.
#include "caps/policy.hpp"
#include "fuzz.hpp"
#include "pack/cache.hpp"
#include "pack/format.hpp"
#include "pack/runtime.hpp"

using namespace kago;
using namespace kago::pack;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    std::span<const uint8_t> bytes(data + 1, size - 1);
    if (data[0] == 'b') {
        // --kago-bind
        std::string s(bytes.begin(), bytes.end());
        if (auto b = parse_bind(s)) FUZZ_CHECK(b->first[0] == '/' && b->second[0] == '/');
        return 0;
    }
    if (data[0] == 'h') {
        std::string_view s(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        if (auto b = unhex(s)) FUZZ_CHECK(hex(*b).size() == s.size());
        return 0;
    }
    if (auto c = decode_config(bytes)) {
        (void)container_env(*c, "/root");
        auto o = cap_options(*c);
        (void)caps::select_caps(o, caps::all_caps());
    }
    Trailer t;
    t.total_entries = data[0] % 16 + 1;
    t.total_bytes = 0;
    auto m = decode_manifest(bytes, t);
    for (uint64_t total : {1, 10, 4096}) {
        if (m) break;
        t.total_bytes = total;
        m = decode_manifest(bytes, t);
    }
    if (!m) return 0;
    for (uint32_t i = 0; i < m->entries.size(); ++i) {
        auto p = entry_path(*m, i);
        FUZZ_CHECK(p.find("//") == std::string::npos && (p.empty() || p[0] != '/'));
    }
    // What is written back reads the same.
    auto again = encode_manifest(*m);
    auto m2 = decode_manifest(again, t);
    FUZZ_CHECK(m2 && encode_manifest(*m2) == again);
    return 0;
}
