// libFuzzer target: what image-layers --pull reads before it trusts
// anything (lib/image/reference, lib/image/auth): image references (r), a
// registry's WWW-Authenticate value (w), and credential files, auth.json
// and docker's config.json (a).
#include "fuzz.hpp"
#include "image/auth.hpp"
#include "image/reference.hpp"

using namespace kago;
using namespace kago::image;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto in = fuzz::choose(data, size, "rwa");
    std::string text(in.text);
    switch (in.kind) {
        case 0:
            // A reference spelled out in full parses back to itself.
            if (auto r = parse_reference(text)) {
                FUZZ_CHECK(!r->registry.empty() && !r->repository.empty());
                FUZZ_CHECK(!r->tag.empty() || !r->digest.empty());
                auto again = parse_reference(r->str());
                FUZZ_CHECK(again.ok());
                FUZZ_CHECK(again->str() == r->str());
                (void)is_loopback(*r);
            }
            break;
        case 1:
            if (auto cs = parse_challenges(text)) {
                FUZZ_CHECK(!cs->empty());
                for (const auto& c : *cs) FUZZ_CHECK(!c.scheme.empty());
            }
            break;
        case 2: (void)parse_auth_file(text, "auth.json"); break;
    }
    return 0;
}
