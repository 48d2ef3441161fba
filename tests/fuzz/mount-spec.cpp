// libFuzzer target: mount-layers' root steps (lib/mount/spec): --bind,
// --tmpfs, --symlink, --mkdir, --file, --chdir values, octal modes, and
// paths normalized inside the root.
#include "fuzz.hpp"
#include "mount/spec.hpp"

using namespace kago;
using namespace kago::mount;

namespace {

// Absolute, no empty, "." or ".." component, no trailing '/'.
bool normalized(const std::string& p) {
    if (p == "/") return true;
    if (p.empty() || p[0] != '/' || p.back() == '/') return false;
    for (auto c : fuzz::pieces(std::string_view(p).substr(1), '/'))
        if (c.empty() || c == "." || c == "..") return false;
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto in = fuzz::choose(data, size, "btsmfcMnwv");
    auto text = in.text;
    static const StepKind kinds[] = {StepKind::bind,  StepKind::tmpfs, StepKind::symlink,
                                     StepKind::mkdir, StepKind::file,  StepKind::chdir};
    switch (in.kind) {
    case 0: case 1: case 2: case 3: case 4: case 5:
        if (auto st = parse_step(kinds[in.kind], text)) {
            FUZZ_CHECK(normalized(st->dst));
            FUZZ_CHECK(st->mode <= 07777);
            FUZZ_CHECK(st->dst != "/" || st->kind == StepKind::chdir || st->kind == StepKind::mkdir);
        }
        break;
    case 6:
        if (auto m = parse_mode(text, "--tmpfs")) FUZZ_CHECK(*m <= 07777);
        break;
    case 7:
        if (auto p = normalize_in_root(text, "--bind")) {
            FUZZ_CHECK(normalized(*p));
            FUZZ_CHECK(fuzz::gives(normalize_in_root(*p, "again"), *p));
        }
        break;
    case 8: {
        auto w = workdir_for(text);
        FUZZ_CHECK(w.size() >= 5 && w.substr(w.size() - 5) == ".work");
        break;
    }
    case 9: {
        // A whole spec: one step a line, "KIND VALUE", and layers.
        RootSpec spec;
        spec.target = "/mnt";
        for (auto line : fuzz::pieces(text, '\n')) {
            if (line.size() < 2) continue;
            auto k = std::string_view("btsmfcl").find(line[0]);
            if (k == std::string_view::npos) continue;
            if (k == 6) {
                spec.layers.emplace_back(line.substr(2));
            } else if (auto st = parse_step(kinds[k], line.substr(2))) {
                spec.steps.push_back(*st);
            }
        }
        (void)validate(spec);
        break;
    }
    }
    return 0;
}
