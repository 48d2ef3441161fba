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

Status write_state(const state::StateDir& dir, pid_t pid, const std::vector<NsInode>& ns,
                   unsigned long types) {
    if (dir.path().empty()) return {};
    // Relative to the directory, without a temporary file and rename: the
    // directory is ours and fresh, and each file is one write(). It is on
    // the path of every start, so it is kept to a few calls.
    int d = ::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0) return sys_error(cat("open ", dir.path()));
    UniqueFd owner(d);
    auto put = [&](const std::string& file, uint64_t value) -> Status {
        int fd = ::openat(d, file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0) return sys_error(cat("create ", dir.path(), "/", file));
        UniqueFd f(fd);
        std::string line = cat(value, "\n");
        if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
            return sys_error(cat("write ", dir.path(), "/", file));
        return {};
    };
    TRY(put("pid", static_cast<uint64_t>(pid)));
    if (::mkdirat(d, "ns", 0700) != 0 && errno != EEXIST) return sys_error(cat("create directory ", dir.path(), "/ns"));
    for (const auto& n : ns)
        if (types & clone_flag(n.type)) TRY(put(cat("ns/", name(n.type)), n.inode));
    return {};
}

}  // namespace kago::ns
