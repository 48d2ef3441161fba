// libFuzzer target: user namespace id maps (lib/ns/idmap): --map-user and
// --map-group values, /etc/subuid and /etc/subgid (--map-auto), and the
// user name lookup in /etc/passwd.
#include <algorithm>

#include "fuzz.hpp"
#include "ns/idmap.hpp"

using namespace kago;
using namespace kago::ns;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto in = fuzz::choose(data, size, "mMsu");
    auto text = in.text;
    switch (in.kind) {
    case 0:
        // One option value: what it parses to is written back the same way.
        if (auto m = parse_map(text, "--map-user")) {
            FUZZ_CHECK(!m->empty());
            FUZZ_CHECK(fuzz::gives(parse_map(map_spec(*m), "again"), *m));
            auto lines = map_text(*m);
            FUZZ_CHECK(static_cast<size_t>(std::count(lines.begin(), lines.end(), '\n')) == m->size());
        }
        break;
    case 1: {
        // Several option values, one a line: a map that passes check_map
        // is one the kernel takes.
        std::vector<std::string> specs;
        for (auto p : fuzz::pieces(text, '\n')) specs.emplace_back(p);
        if (auto m = parse_maps(specs, "--map-user")) {
            FUZZ_CHECK(m->size() <= 340);
            for (const auto& r : *m) {
                FUZZ_CHECK(r.count > 0);
                FUZZ_CHECK(uint64_t{r.inside} + r.count <= (uint64_t{1} << 32));
                FUZZ_CHECK(uint64_t{r.outside} + r.count <= (uint64_t{1} << 32));
            }
        }
        break;
    }
    case 2: {
        // /etc/subuid for "kago" (uid 1000), then the --map-auto map.
        auto ranges = parse_subid(text, "kago", 1000);
        for (const auto& r : ranges) FUZZ_CHECK(r.count > 0 && uint64_t{r.start} + r.count <= (uint64_t{1} << 32));
        if (auto m = auto_map(1000, ranges, "/etc/subuid")) {
            FUZZ_CHECK(check_map(*m, "again").ok());
            FUZZ_CHECK((*m)[0] == (IdRange{0, 1000, 1}));
        }
        break;
    }
    case 3: {
        auto name = user_name(text, 1000);
        FUZZ_CHECK(name.find('\n') == std::string::npos && name.find(':') == std::string::npos);
        break;
    }
    }
    return 0;
}
