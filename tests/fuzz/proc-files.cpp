// libFuzzer target: what kago reads from /proc, whose contents a process
// partly controls (its name, its mounts' paths, its cgroup's path):
// /proc/PID/status, uid_map and cgroup for cap-drop --show (whose JSON
// must stay valid JSON); /proc/self/mountinfo, /proc/self/cgroup and
// cgroup.controllers for cg-limit's choice of hierarchies; the NSpid line
// and uid_map for mount-layers' context.
#include "caps/json_value.hpp"
#include "caps/show.hpp"
#include "cgroup/layout.hpp"
#include "cgroup/limits.hpp"
#include "fuzz.hpp"
#include "mount/root.hpp"

using namespace kago;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto in = fuzz::choose(data, size, "sicmgCln");
    auto text = in.text;
    switch (in.kind) {
    case 0: {
        caps::ProcessState s;
        s.pid = "1";
        caps::parse_status(text, s);
        (void)caps::format_table(s);
        auto json = caps::format_json(s);
        auto v = caps::parse_json(json);
        FUZZ_CHECK(v && v->is(caps::JsonValue::Type::Object));
        break;
    }
    case 1: {
        caps::ProcessState s;
        s.uid_map = caps::parse_id_map(text);
        s.gid_map = s.uid_map;
        (void)caps::format_table(s);
        FUZZ_CHECK(caps::parse_json(caps::format_json(s)).ok());
        break;
    }
    case 2: {
        caps::ProcessState s;
        s.cgroup = caps::parse_cgroup(text);
        (void)caps::format_table(s);
        FUZZ_CHECK(caps::parse_json(caps::format_json(s)).ok());
        break;
    }
    case 3:
        for (const auto& m : cgroup::parse_mountinfo(text)) FUZZ_CHECK(m.v2 || !m.controllers.empty());
        break;
    case 4: (void)cgroup::parse_proc_cgroup(text); break;
    case 5:
        for (const auto& c : cgroup::parse_controller_list(text))
            FUZZ_CHECK(!c.empty() && c.find_first_of(" \n") == std::string::npos);
        break;
    case 6: {
        // The whole choice: mountinfo, /proc/self/cgroup, the v2 root's
        // cgroup.controllers and the needed controllers, split at NUL bytes.
        auto p = fuzz::pieces(text, '\0');
        p.resize(4);
        auto mounts = cgroup::parse_mountinfo(p[0]);
        auto self = cgroup::parse_proc_cgroup(p[1]);
        auto root = cgroup::parse_controller_list(p[2]);
        auto needed = cgroup::parse_controller_list(p[3]);
        if (auto l = cgroup::choose(mounts, self, root, needed)) {
            for (const auto& h : l->hierarchies) {
                (void)cgroup::parent_path(h.own);
                (void)cgroup::join_path(h.own, "kago");
                (void)cgroup::normalize_parent(h.own, l->hierarchies);
            }
        }
        break;
    }
    case 7:
        (void)mount::nspid_depth(text);
        (void)mount::uid_map_is_initial(text);
        break;
    }
    return 0;
}
