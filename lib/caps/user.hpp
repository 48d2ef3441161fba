// The user and groups to switch to, resolved in the container's own
// /etc/passwd and /etc/group (fgetpwent/fgetgrent on those files), never
// through the host's NSS.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace kago::caps {

struct Identity {
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;  // supplementary; empty: cleared
    std::string name;           // from passwd, or the number
    std::string home = "/";     // from passwd, or "/"
};

struct UserFiles {
    std::string passwd = "/etc/passwd";
    std::string group = "/etc/group";
};

// USER[:GROUP], names or numbers. A name must be in the passwd (group) file;
// a number need not be. Without GROUP the passwd entry's group is used, or
// the uid's number when the uid has no entry.
Result<Identity> resolve_user(std::string_view spec, const UserFiles& files = {});
// A comma-separated list of group names or numbers.
Result<std::vector<gid_t>> resolve_groups(std::string_view list, const UserFiles& files = {});

// Traced: setgroups, setresgid, setresuid. Clearing groups where the
// user namespace denies setgroups (/proc/self/setgroups is "deny") is
// skipped when no groups are asked for.
Status switch_user(const Identity& id);

}  // namespace kago::caps
