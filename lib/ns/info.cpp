#include "ns/info.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fd.hpp"
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

Status write_state(const state::StateDir& dir, pid_t pid) {
    if (dir.path().empty()) return {};
    // Relative to the directory, in as few calls as possible: they are on
    // the path of every start, and /run may be a disk file system.
    int d = ::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0) return sys_error(cat("open ", dir.path()));
    UniqueFd owner(d);
    int fd = ::openat(d, "pid", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) return sys_error(cat("create ", dir.path(), "/pid"));
    UniqueFd f(fd);
    std::string line = cat(pid, "\n");
    if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
        return sys_error(cat("write ", dir.path(), "/pid"));
    std::string target = cat("/proc/", pid, "/ns");
    (void)::unlinkat(d, "ns", 0);  // an earlier program of the chain may have made one
    if (::symlinkat(target.c_str(), d, "ns") != 0)
        return sys_error(cat("create symlink ", dir.path(), "/ns"));
    return {};
}

}  // namespace kago::ns
