// libFuzzer target: unshare-run's option values (lib/ns): --join
// TYPE=PATH, --join-pid, namespace names, --monotonic/--boottime offsets,
// --propagation; and resolve(), which checks a whole set of options.
#include "fuzz.hpp"
#include "ns/join.hpp"
#include "ns/types.hpp"

using namespace kago;
using namespace kago::ns;

namespace {

// The first line holds one letter per flag; then KEY=VALUE lines.
void resolve_request(std::string_view text) {
    auto lines = fuzz::pieces(text, '\n');
    Request r;
    for (char c : lines[0]) {
        switch (c) {
        case 'U': r.user = true; break;
        case 'p': r.pid = true; break;
        case 'm': r.mount = true; break;
        case 'u': r.uts = true; break;
        case 'i': r.ipc = true; break;
        case 'n': r.net = true; break;
        case 'c': r.cgroup = true; break;
        case 't': r.time = true; break;
        case 'a': r.all = true; break;
        case 'r': r.map_root = true; break;
        case 'A': r.map_auto = true; break;
        case '1': r.as_pid_1 = true; break;
        case 'P': r.mount_proc = true; break;
        }
    }
    bool privileged = lines[0].find('!') != std::string_view::npos;
    unsigned long joins = 0;
    for (size_t i = 1; i < lines.size(); ++i) {
        auto eq = lines[i].find('=');
        if (eq == std::string_view::npos) continue;
        auto k = lines[i].substr(0, eq);
        std::string v(lines[i].substr(eq + 1));
        if (k == "hostname") r.hostname = v;
        else if (k == "monotonic") r.monotonic = v;
        else if (k == "boottime") r.boottime = v;
        else if (k == "propagation") r.propagation = v;
        else if (k == "join") r.join.push_back(v);
        else if (k == "join-pid") r.join_pid = v;
        else if (k == "map-user") r.map_user.push_back(v);
        else if (k == "map-group") r.map_group.push_back(v);
        else if (k == "joined") {
            if (auto t = parse_type(v)) joins |= clone_flag(*t);
        }
    }
    if (resolve(r, privileged, joins)) {
        for (auto t : types_of(r.create)) FUZZ_CHECK(clone_flag(t) & r.create);
        if (r.monotonic_offset) FUZZ_CHECK(r.monotonic_offset->nsec >= 0 && r.monotonic_offset->nsec < 1000000000);
        (void)offsets_text(r.monotonic_offset, r.boottime_offset);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto in = fuzz::choose(data, size, "jpTorR");
    auto text = in.text;
    switch (in.kind) {
    case 0:
        if (auto j = parse_join(text)) FUZZ_CHECK(!j->path.empty());
        break;
    case 1:
        if (auto p = parse_pid(text)) FUZZ_CHECK(*p > 0);
        break;
    case 2:
        if (auto t = parse_type(text)) FUZZ_CHECK(fuzz::gives(parse_type(name(*t)), *t));
        break;
    case 3:
        if (auto o = parse_offset(text, "--monotonic")) {
            FUZZ_CHECK(o->nsec >= 0 && o->nsec < 1000000000);
            // Written as SECONDS.NANOSECONDS, it reads back the same.
            int64_t s = o->sec;
            int64_t ns = o->nsec;
            std::string back;
            if (s < 0 && ns > 0) back = cat("-", -(s + 1), ".", std::string(9 - std::to_string(1000000000 - ns).size(), '0'), 1000000000 - ns);
            else back = cat(s, ".", std::string(9 - std::to_string(ns).size(), '0'), ns);
            FUZZ_CHECK(fuzz::gives(parse_offset(back, "again"), *o));
        }
        break;
    case 4:
        if (auto p = parse_propagation(text)) (void)propagation_flags(*p);
        break;
    case 5: resolve_request(text); break;
    }
    return 0;
}
