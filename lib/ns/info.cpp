#include "ns/info.hpp"

#include <sys/stat.h>

#include "core/json.hpp"

namespace kago::ns {

Result<std::vector<NsInode>> ns_inodes(pid_t pid) {
    std::vector<NsInode> out;
    std::string dir = cat("/proc/", pid, "/ns/");
    for (Type t : kTypes) {
        std::string path = dir + name(t);
        struct stat st;
        if (::stat(path.c_str(), &st) != 0) {
            if (errno == ENOENT && t != Type::user) continue;
            return sys_error(cat("stat ", path));
        }
        out.push_back({t, static_cast<uint64_t>(st.st_ino)});
    }
    return out;
}

std::string info_json(pid_t pid, std::string_view name_, std::string_view state_dir,
                      const std::vector<NsInode>& ns) {
    json::Object inodes;
    for (const auto& n : ns) inodes.add(name(n.type), n.inode);
    json::Object o;
    o.add("pid", static_cast<int64_t>(pid)).add("name", name_);
    if (state_dir.empty())
        o.add_null("state_dir");
    else
        o.add("state_dir", state_dir);
    o.add_raw("namespaces", inodes.str());
    return o.str();
}

Status write_state(const state::StateDir& dir, pid_t pid, const std::vector<NsInode>& ns) {
    if (dir.path().empty()) return {};
    TRY(dir.write("pid", std::to_string(pid)));
    for (const auto& n : ns) TRY(dir.write(cat("ns/", name(n.type)), std::to_string(n.inode)));
    return {};
}

}  // namespace kago::ns
