#include "core/env.hpp"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
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

// The read fields by name.
struct Field {
    const char* name;
    std::string Contract::*text;
    bool Contract::*flag;
};
constexpr Field kFields[] = {
    {kName, &Contract::name, nullptr},
    {kStateDir, &Contract::state_dir, nullptr},
    {kCgroup, &Contract::cgroup, nullptr},
    {kNetns, &Contract::netns, nullptr},
    {kTrace, nullptr, &Contract::trace},
    {kDryRun, nullptr, &Contract::dry_run},
    {kExec, nullptr, &Contract::exec},
    {kReadyFd, &Contract::ready_fd, nullptr},
    {kConsoleFd, &Contract::console_fd, nullptr},
    {kImage, &Contract::image, nullptr},
    {kImageStore, &Contract::image_store, nullptr},
    {kImageLayers, &Contract::image_layers, nullptr},
    {kImageWorkdir, &Contract::image_workdir, nullptr},
    {kImageUser, &Contract::image_user, nullptr},
    {kImageEnv, &Contract::image_env, nullptr},
    {kImageCmd, &Contract::image_cmd, nullptr},
};

}  // namespace

Contract Contract::from_environ(char* const* envp) {
    Contract c;
    for (char* const* e = envp; e && *e; ++e) {
        std::string_view var(*e);
        if (var.rfind("KAGO_", 0) != 0) continue;
        auto eq = var.find('=');
        if (eq == std::string_view::npos) continue;
        std::string_view n = var.substr(0, eq), v = var.substr(eq + 1);
        for (const Field& f : kFields) {
            if (n != f.name) continue;
            if (f.text)
                c.*f.text = std::string(v);
            else
                c.*f.flag = v == "1";
        }
    }
    return c;
}

Contract Contract::from_environ() {
    return from_environ(environ);
}

void Contract::set(const char* n, std::string value) {
    changes.push_back({n, std::move(value), false});
}

void Contract::unset(const char* n) {
    changes.push_back({n, std::nullopt, false});
}

void Contract::strip_kago() {
    changes.push_back({"", std::nullopt, true});
}

std::string Contract::get(std::string_view n) const {
    for (auto c = changes.rbegin(); c != changes.rend(); ++c) {
        if (c->all_kago) return {};
        if (c->name == n) return c->value.value_or("");
    }
    for (const Field& f : kFields)
        if (n == f.name) return f.text ? this->*f.text : this->*f.flag ? "1" : "";
    return {};
}

std::vector<std::string> Contract::render(const std::vector<std::string>& base) const {
    std::vector<std::string> out = base;
    auto name_of = [](const std::string& v) { return std::string_view(v).substr(0, v.find('=')); };
    for (const Change& c : changes) {
        if (c.all_kago) {
            std::erase_if(out, [&](const std::string& v) { return v.rfind("KAGO_", 0) == 0; });
            continue;
        }
        auto at = std::find_if(out.begin(), out.end(),
                               [&](const std::string& v) { return name_of(v) == c.name; });
        if (!c.value) {
            if (at != out.end()) out.erase(at);
        } else if (at != out.end()) {
            *at = cat(c.name, "=", *c.value);
        } else {
            out.push_back(cat(c.name, "=", *c.value));
        }
    }
    return out;
}

void Contract::apply() const {
    for (const Change& c : changes) {
        if (c.all_kago)
            env::strip_kago();
        else if (c.value)
            ::setenv(c.name.c_str(), c.value->c_str(), 1);
        else
            ::unsetenv(c.name.c_str());
    }
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
        // The image's Env (image-layers), under the user's own settings.
        if (auto image = string_list(get(kImageEnv)))
            for (const auto& v : *image)
                if (v.find('=') != std::string::npos && v.find('=') > 0) put(out, v);
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

std::optional<std::vector<std::string>> string_list(std::string_view t) {
    std::vector<std::string> out;
    size_t i = 0;
    auto space = [&] {
        while (i < t.size() && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r')) ++i;
    };
    auto hex = [&](size_t at) -> int {
        int v = 0;
        for (size_t k = at; k < at + 4; ++k) {
            char c = k < t.size() ? t[k] : 'x';
            v = v * 16 + (c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -100000);
        }
        return v;
    };
    auto utf8 = [](std::string& s, unsigned cp) {
        if (cp < 0x80) s += char(cp);
        else if (cp < 0x800) s += char(0xc0 | cp >> 6), s += char(0x80 | (cp & 0x3f));
        else if (cp < 0x10000) s += char(0xe0 | cp >> 12), s += char(0x80 | (cp >> 6 & 0x3f)), s += char(0x80 | (cp & 0x3f));
        else s += char(0xf0 | cp >> 18), s += char(0x80 | (cp >> 12 & 0x3f)), s += char(0x80 | (cp >> 6 & 0x3f)), s += char(0x80 | (cp & 0x3f));
    };
    space();
    if (i >= t.size() || t[i++] != '[') return std::nullopt;
    space();
    if (i < t.size() && t[i] == ']') return ++i, space(), i == t.size() ? std::optional(out) : std::nullopt;
    for (;;) {
        space();
        if (i >= t.size() || t[i++] != '"') return std::nullopt;
        std::string s;
        for (;;) {
            if (i >= t.size()) return std::nullopt;
            char c = t[i++];
            if (c == '"') break;
            if (c != '\\') {
                s += c;
                continue;
            }
            if (i >= t.size()) return std::nullopt;
            char e = t[i++];
            switch (e) {
            case '"': case '\\': case '/': s += e; break;
            case 'b': s += '\b'; break;
            case 'f': s += '\f'; break;
            case 'n': s += '\n'; break;
            case 'r': s += '\r'; break;
            case 't': s += '\t'; break;
            case 'u': {
                int cp = hex(i);
                if (cp < 0) return std::nullopt;
                i += 4;
                if (cp >= 0xd800 && cp < 0xdc00 && i + 6 <= t.size() && t[i] == '\\' && t[i + 1] == 'u') {
                    int lo = hex(i + 2);
                    if (lo >= 0xdc00 && lo < 0xe000) {
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                        i += 6;
                    }
                }
                utf8(s, static_cast<unsigned>(cp));
                break;
            }
            default: return std::nullopt;
            }
        }
        out.push_back(std::move(s));
        space();
        if (i >= t.size()) return std::nullopt;
        if (t[i] == ',') {
            ++i;
            continue;
        }
        if (t[i++] != ']') return std::nullopt;
        space();
        return i == t.size() ? std::optional(out) : std::nullopt;
    }
}

bool is_kago_program(std::string_view name) {
    static constexpr std::string_view programs[] = {"unshare-run", "mount-layers",  "net-setup",   "cg-limit",
                                                    "cap-drop",    "pack-selfexec", "image-layers"};
    for (auto p : programs)
        if (p == name) return true;
    return false;
}

}  // namespace kago::env
