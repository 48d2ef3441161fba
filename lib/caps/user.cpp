#include "caps/user.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>

#include "core/parse.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"

namespace kago::caps {
namespace {

// The id that set*id(2) read as "leave this id alone".
constexpr uint32_t kUnchanged = 0xffffffffu;

bool is_number(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

Result<uint32_t> id_number(std::string_view s, std::string_view what) {
    auto n = parse::u64(s, what);
    if (!n) return std::move(n).error();
    if (*n >= kUnchanged) return usage_error(cat(what, " '", s, "' is out of range"));
    return static_cast<uint32_t>(*n);
}

struct File {
    FILE* f = nullptr;
    ~File() {
        if (f) fclose(f);
    }
};

// Look up a passwd entry by name (or by uid when name is empty).
Result<std::optional<Identity>> find_passwd(const std::string& path, std::string_view name,
                                            uid_t uid) {
    File file{fopen(path.c_str(), "re")};
    if (!file.f) {
        if (errno == ENOENT) return std::optional<Identity>();
        return sys_error(cat("open ", path));
    }
    while (struct passwd* pw = fgetpwent(file.f)) {
        bool match = name.empty() ? pw->pw_uid == uid : name == pw->pw_name;
        if (!match) continue;
        // (uid_t)-1 tells setresuid(2) to change nothing: the switch would
        // leave the payload root.
        if (pw->pw_uid == kUnchanged || pw->pw_gid == kUnchanged)
            return usage_error(cat(path, ": user '", pw->pw_name, "' has id ", pw->pw_uid, ":", pw->pw_gid,
                                   "; 4294967295 is not a valid id"));
        Identity id;
        id.uid = pw->pw_uid;
        id.gid = pw->pw_gid;
        id.name = pw->pw_name;
        id.home = pw->pw_dir && *pw->pw_dir ? pw->pw_dir : "/";
        return std::optional<Identity>(id);
    }
    return std::optional<Identity>();
}

Result<std::optional<gid_t>> find_group(const std::string& path, std::string_view name) {
    File file{fopen(path.c_str(), "re")};
    if (!file.f) {
        if (errno == ENOENT) return std::optional<gid_t>();
        return sys_error(cat("open ", path));
    }
    while (struct group* gr = fgetgrent(file.f)) {
        if (name != gr->gr_name) continue;
        if (gr->gr_gid == kUnchanged)
            return usage_error(cat(path, ": group '", gr->gr_name, "' has id ", gr->gr_gid,
                                   "; 4294967295 is not a valid id"));
        return std::optional<gid_t>(gr->gr_gid);
    }
    return std::optional<gid_t>();
}

Result<gid_t> resolve_group(std::string_view g, const UserFiles& files) {
    if (is_number(g)) return static_cast<gid_t>(TRY(id_number(g, "group id")));
    auto found = TRY(find_group(files.group, g));
    if (!found) return usage_error(cat("group '", g, "': not found in ", files.group));
    return *found;
}

}  // namespace

Result<Identity> resolve_user(std::string_view spec, const UserFiles& files) {
    std::string_view user = spec, group;
    bool has_group = false;
    if (auto colon = spec.find(':'); colon != std::string_view::npos) {
        user = spec.substr(0, colon);
        group = spec.substr(colon + 1);
        has_group = true;
    }
    if (user.empty()) return usage_error(cat("user '", spec, "': empty user name"));
    if (has_group && group.empty()) return usage_error(cat("user '", spec, "': empty group name"));
    Identity id;
    if (is_number(user)) {
        uid_t uid = TRY(id_number(user, "user id"));
        auto found = TRY(find_passwd(files.passwd, "", uid));
        if (found) {
            id = *found;
        } else {
            id.uid = uid;
            id.gid = uid;
            id.name = std::string(user);
        }
    } else {
        auto found = TRY(find_passwd(files.passwd, user, 0));
        if (!found)
            return usage_error(cat("user '", user, "': not found in ", files.passwd))
                .with_hint("users are looked up in the container's own /etc/passwd; give a number instead");
        id = *found;
    }
    if (has_group) id.gid = TRY(resolve_group(group, files));
    return id;
}

Result<std::vector<gid_t>> resolve_groups(std::string_view list, const UserFiles& files) {
    std::vector<gid_t> out;
    for (const auto& g : parse::split(list, ',')) {
        if (g.empty()) continue;
        out.push_back(TRY(resolve_group(g, files)));
    }
    return out;
}

// The system calls themselves, not glibc's wrappers: those change every
// thread glibc knows of, and pack's runner calls this in a child that shares
// its parent's memory (clone(CLONE_VM|CLONE_VFORK)), where glibc's thread
// list is its parent's. This process is the only one to change.
Status switch_user(const Identity& id) {
    std::string glist;
    for (gid_t g : id.groups) glist += cat(glist.empty() ? "" : ", ", g);
    long r = trace::call([&] { return cat("setgroups(", id.groups.size(), ", [", glist, "])"); },
                         [&] { return ::syscall(SYS_setgroups, id.groups.size(), id.groups.data()); });
    if (r != 0) {
        Error e = sys_error(cat("setgroups(", id.groups.size(), ", [", glist, "])"));
        auto deny = sys::read_file("/proc/self/setgroups");
        bool denied = deny && deny->starts_with("deny");
        if (!(id.groups.empty() && e.err == EPERM && denied)) {
            if (denied) return std::move(e).with_hint("this user namespace denies setgroups");
            return e;
        }
    }
    r = trace::call([&] { return cat("setresgid(", id.gid, ", ", id.gid, ", ", id.gid, ")"); },
                    [&] { return ::syscall(SYS_setresgid, id.gid, id.gid, id.gid); });
    if (r != 0) {
        Error e = sys_error(cat("setresgid(", id.gid, ", ", id.gid, ", ", id.gid, ")"));
        if (e.err == EINVAL) return std::move(e).with_hint("the gid is not mapped in this user namespace");
        return e;
    }
    r = trace::call([&] { return cat("setresuid(", id.uid, ", ", id.uid, ", ", id.uid, ")"); },
                    [&] { return ::syscall(SYS_setresuid, id.uid, id.uid, id.uid); });
    if (r != 0) {
        Error e = sys_error(cat("setresuid(", id.uid, ", ", id.uid, ", ", id.uid, ")"));
        if (e.err == EINVAL) return std::move(e).with_hint("the uid is not mapped in this user namespace");
        return e;
    }
    return {};
}

}  // namespace kago::caps
