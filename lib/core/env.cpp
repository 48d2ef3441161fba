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

namespace {

std::string_view name_of(std::string_view var) { return var.substr(0, var.find('=')); }

// The variable NAME in vars, or nullptr.
const std::string* find(const std::vector<std::string>& vars, std::string_view name) {
    for (const auto& v : vars)
        if (name_of(v) == name && v.size() > name.size()) return &v;
    return nullptr;
}

void put(std::vector<std::string>& vars, std::string var) {
    std::string_view name = name_of(var);
    for (auto& v : vars)
        if (name_of(v) == name) {
            v = std::move(var);
            return;
        }
    vars.push_back(std::move(var));
}

bool valid_name(std::string_view n) { return !n.empty() && n.find('=') == std::string_view::npos; }

}  // namespace

Status check_plan(const Plan& p) {
    for (const auto& s : p.set) {
        auto eq = s.find('=');
        if (eq == std::string::npos || eq == 0)
            return usage_error(cat("--env ", s, ": expected NAME=VALUE"));
    }
    for (const auto& n : p.pass)
        if (!valid_name(n)) return usage_error(cat("--pass-env ", n, ": expected a variable's NAME"));
    return {};
}

std::vector<std::string> container_environ(const std::vector<std::string>& caller, const Plan& p) {
    std::vector<std::string> out;
    if (p.host) {
        out = caller;
    } else {
        out = {cat("PATH=", kContainerPath), "HOME=/root", "container=kago"};
        for (const auto& v : caller)
            if (v.rfind("KAGO_", 0) == 0 || name_of(v) == "TERM") put(out, v);
        for (const auto& n : p.pass)
            if (const std::string* v = find(caller, n)) put(out, *v);
    }
    for (const auto& s : p.set) put(out, s);
    return out;
}

std::vector<std::string> current() {
    std::vector<std::string> vars;
    for (char** e = environ; e && *e; ++e) vars.emplace_back(*e);
    return vars;
}

void replace(const std::vector<std::string>& vars) {
    ::clearenv();
    for (const auto& v : vars) {
        auto eq = v.find('=');
        if (eq == std::string::npos) continue;
        ::setenv(v.substr(0, eq).c_str(), v.c_str() + eq + 1, 1);
    }
}

bool is_kago_program(std::string_view name) {
    static constexpr std::string_view programs[] = {"unshare-run", "mount-layers", "net-setup",
                                                    "cg-limit",    "cap-drop",     "pack-selfexec"};
    for (auto p : programs)
        if (p == name) return true;
    return false;
}

}  // namespace kago::env
