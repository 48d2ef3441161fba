#include "ns/join.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>

#include "core/parse.hpp"
#include "core/sys.hpp"

namespace kago::ns {

Result<JoinSpec> parse_join(std::string_view spec) {
    auto eq = spec.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == spec.size())
        return usage_error(cat("--join '", spec, "': expected TYPE=PATH, like net=/run/netns/web"));
    auto t = parse_type(spec.substr(0, eq));
    if (!t) return usage_error(cat("--join '", spec, "': ", t.error().what));
    return JoinSpec{*t, std::string(spec.substr(eq + 1))};
}

Result<pid_t> parse_pid(std::string_view s) {
    auto n = parse::u64(s, cat("--join-pid '", s, "'"));
    if (!n) return std::move(n).error();
    if (*n == 0 || *n > 4194304) return usage_error(cat("--join-pid '", s, "': not a process id"));
    return static_cast<pid_t>(*n);
}

unsigned long Joins::types() const {
    unsigned long f = 0;
    for (const auto& j : ns) f |= clone_flag(j.type);
    return f;
}

Result<Joins> open_joins(const std::vector<JoinSpec>& specs, pid_t pid) {
    Joins j;
    for (const auto& s : specs) {
        auto fd = TRY(sys::open(s.path.c_str(), O_RDONLY));
        j.ns.erase(std::remove_if(j.ns.begin(), j.ns.end(),
                                  [&](const Join& x) { return x.type == s.type; }),
                   j.ns.end());
        j.ns.push_back({s.type, s.path, std::move(fd)});
    }
    if (pid > 0) {
        std::string dir = cat("/proc/", pid);
        struct stat st;
        if (::stat(dir.c_str(), &st) != 0) {
            if (errno == ENOENT) errno = ESRCH;
            return sys_error(cat("--join-pid ", pid, ": process ", pid));
        }
        for (Type t : kTypes) {
            bool explicit_join =
                std::any_of(j.ns.begin(), j.ns.end(), [&](const Join& x) { return x.type == t; });
            if (explicit_join) continue;
            std::string path = cat(dir, "/ns/", name(t));
            std::string ours = cat("/proc/self/ns/", name(t));
            struct stat theirs, mine;
            if (::stat(path.c_str(), &theirs) != 0) {
                if (errno == ENOENT && ::stat(ours.c_str(), &mine) != 0)
                    continue;  // not in this kernel
                return sys_error(cat("--join-pid ", pid, ": ", path));
            }
            if (::stat(ours.c_str(), &mine) == 0 && mine.st_ino == theirs.st_ino &&
                mine.st_dev == theirs.st_dev)
                continue;  // the same as ours: setns would refuse a user namespace, and the rest is
                           // moot
            auto fd = sys::open(path.c_str(), O_RDONLY);
            if (!fd)
                return Error{fd.error().err, cat("--join-pid ", pid, ": ", fd.error().what), ""};
            j.ns.push_back({t, path, std::move(*fd)});
        }
        j.root_path = cat(dir, "/root");
        j.cwd_path = cat(dir, "/cwd");
        auto root = sys::open(j.root_path.c_str(), O_RDONLY | O_DIRECTORY);
        if (!root)
            return Error{root.error().err, cat("--join-pid ", pid, ": ", root.error().what), ""};
        auto cwd = sys::open(j.cwd_path.c_str(), O_RDONLY | O_DIRECTORY);
        if (!cwd)
            return Error{cwd.error().err, cat("--join-pid ", pid, ": ", cwd.error().what), ""};
        j.root = std::move(*root);
        j.cwd = std::move(*cwd);
    }
    std::stable_sort(j.ns.begin(), j.ns.end(), [](const Join& a, const Join& b) {
        return static_cast<int>(a.type) < static_cast<int>(b.type);
    });
    return j;
}

}  // namespace kago::ns
