#include "core/env.hpp"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace kago::env {

std::string_view get(const char* name) {
    const char* v = ::getenv(name);
    return v ? std::string_view(v) : std::string_view();
}

bool is_true(const char* name) { return get(name) == "1"; }

void strip_kago() {
    std::vector<std::string> names;
    for (char** e = environ; e && *e; ++e) {
        if (strncmp(*e, "KAGO_", 5) == 0) {
            const char* eq = strchr(*e, '=');
            names.emplace_back(*e, eq ? static_cast<size_t>(eq - *e) : strlen(*e));
        }
    }
    for (const auto& n : names) ::unsetenv(n.c_str());
}

bool is_kago_program(std::string_view name) {
    static constexpr std::string_view programs[] = {"unshare-run", "mount-layers", "net-setup",
                                                    "cg-limit",    "cap-drop",     "pack-selfexec"};
    for (auto p : programs)
        if (p == name) return true;
    return false;
}

}  // namespace kago::env
