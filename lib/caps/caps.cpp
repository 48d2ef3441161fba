#include "caps/caps.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/securebits.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>

#include "core/parse.hpp"
#include "core/proc.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"

namespace kago::caps {
namespace {

// The kernel's names, by number (include/uapi/linux/capability.h).
constexpr const char* kNames[] = {
    "chown",           "dac_override",     "dac_read_search", "fowner",
    "fsetid",          "kill",             "setgid",          "setuid",
    "setpcap",         "linux_immutable",  "net_bind_service", "net_broadcast",
    "net_admin",       "net_raw",          "ipc_lock",        "ipc_owner",
    "sys_module",      "sys_rawio",        "sys_chroot",      "sys_ptrace",
    "sys_pacct",       "sys_admin",        "sys_boot",        "sys_nice",
    "sys_resource",    "sys_time",         "sys_tty_config",  "mknod",
    "lease",           "audit_write",      "audit_control",   "setfcap",
    "mac_override",    "mac_admin",        "syslog",          "wake_alarm",
    "block_suspend",   "audit_read",       "perfmon",         "bpf",
    "checkpoint_restore",
};
constexpr int kKnown = static_cast<int>(sizeof kNames / sizeof kNames[0]);

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

std::string pr_cap(int cap) { return cat("CAP_", [&] {
    std::string n = cap_name(cap);
    for (auto& c : n) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return n;
}()); }

struct SecbitName {
    const char* name;
    unsigned bit;
};
constexpr SecbitName kSecbits[] = {
    {"noroot", SECBIT_NOROOT},
    {"noroot-locked", SECBIT_NOROOT_LOCKED},
    {"no-setuid-fixup", SECBIT_NO_SETUID_FIXUP},
    {"no-setuid-fixup-locked", SECBIT_NO_SETUID_FIXUP_LOCKED},
    {"keep-caps", SECBIT_KEEP_CAPS},
    {"keep-caps-locked", SECBIT_KEEP_CAPS_LOCKED},
    {"no-cap-ambient-raise", SECBIT_NO_CAP_AMBIENT_RAISE},
    {"no-cap-ambient-raise-locked", SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED},
};

}  // namespace

std::vector<int> CapSet::list() const {
    std::vector<int> out;
    for (int i = 0; i < 64; ++i)
        if (has(i)) out.push_back(i);
    return out;
}

int last_cap() {
    static int cached = -1;
    if (cached >= 0) return cached;
    auto text = sys::read_file("/proc/sys/kernel/cap_last_cap");
    if (text) {
        std::string_view s = trim(*text);
        auto n = parse::u64(s, "cap_last_cap");
        if (n && *n < 64) return cached = static_cast<int>(*n);
    }
    // No /proc: ask the kernel by probing the bounding set.
    int last = kKnown - 1;
    for (int c = 0; c < 64; ++c) {
        if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) < 0) break;
        last = c;
    }
    return cached = last;
}

CapSet all_caps() {
    int last = last_cap();
    return {last >= 63 ? ~uint64_t{0} : (uint64_t{1} << (last + 1)) - 1};
}

CapSet default_caps() {
    CapSet s;
    for (int c : {0 /* chown */, 1 /* dac_override */, 3 /* fowner */, 4 /* fsetid */, 5 /* kill */,
                  6 /* setgid */, 7 /* setuid */, 8 /* setpcap */, 10 /* net_bind_service */,
                  13 /* net_raw */, 18 /* sys_chroot */, 27 /* mknod */, 29 /* audit_write */,
                  31 /* setfcap */})
        s.add(c);
    return s;
}

std::string cap_name(int cap) {
    if (cap >= 0 && cap < kKnown) return kNames[cap];
    return cat("cap_", cap);
}

std::string known_names() {
    std::string out;
    for (int i = 0; i < kKnown; ++i) {
        if (i) out += ' ';
        out += kNames[i];
    }
    return out;
}

Result<int> cap_from_name(std::string_view name) {
    std::string n = lower(trim(name));
    std::string_view v = n;
    if (v.starts_with("cap_")) v.remove_prefix(4);
    for (int i = 0; i < kKnown; ++i)
        if (v == kNames[i]) return i;
    // cap_41 style numbers for capabilities newer than this table.
    if (!v.empty() && std::isdigit(static_cast<unsigned char>(v[0]))) {
        auto num = parse::u64(v, "capability");
        if (num && *num <= static_cast<uint64_t>(last_cap())) return static_cast<int>(*num);
    }
    return usage_error(cat("unknown capability '", name, "'"))
        .with_hint(cat("known capabilities: ", known_names()));
}

Result<CapSet> parse_caps(std::string_view list) {
    CapSet set;
    if (lower(trim(list)) == "all") return all_caps();
    if (lower(trim(list)) == "none") return set;
    for (const auto& word : parse::split(list, ',')) {
        if (trim(word).empty()) continue;
        if (lower(trim(word)) == "all") {
            set = set | all_caps();
            continue;
        }
        set.add(TRY(cap_from_name(word)));
    }
    return set;
}

std::string format_caps(CapSet set) {
    if (set.empty()) return "none";
    if ((all_caps() - set).empty()) return "all";
    std::string out;
    for (int c : set.list()) {
        if (!out.empty()) out += ',';
        out += cap_name(c);
    }
    return out;
}

Result<unsigned> parse_securebits(std::string_view list) {
    unsigned bits = 0;
    for (const auto& word : parse::split(list, ',')) {
        std::string w = lower(trim(word));
        if (w.empty()) continue;
        for (auto& c : w)
            if (c == '_') c = '-';
        if (w.starts_with("secbit-")) w.erase(0, 7);
        bool found = false;
        for (const auto& s : kSecbits) {
            if (w == s.name) {
                bits |= s.bit;
                // A locked bit is useful only with its bit: lock the set state.
                found = true;
            }
        }
        if (!found) {
            std::string names;
            for (const auto& s : kSecbits) names += cat(names.empty() ? "" : " ", s.name);
            return usage_error(cat("unknown securebit '", word, "'"))
                .with_hint(cat("known securebits: ", names));
        }
    }
    return bits;
}

std::string format_securebits(unsigned bits) {
    std::string out;
    for (const auto& s : kSecbits) {
        if (bits & s.bit) out += cat(out.empty() ? "" : "|", "SECBIT_", [&] {
            std::string n = s.name;
            for (auto& c : n) c = c == '-' ? '_' : static_cast<char>(std::toupper(c));
            return n;
        }());
    }
    return out.empty() ? "0" : out;
}

Result<ProcessCaps> current(bool bounding, bool ambient) {
    ProcessCaps pc;
    cap_t c = cap_get_proc();
    if (!c) return sys_error("read the capabilities of this process");
    int last = last_cap();
    // The bounding and ambient sets in one read of /proc/self/status, or
    // one prctl per capability without /proc.
    proc::SelfStatus st;
    bool have_status = (bounding || ambient) && proc::self_status(st);
    for (int i = 0; i <= last; ++i) {
        cap_flag_value_t v;
        if (cap_get_flag(c, i, CAP_EFFECTIVE, &v) == 0 && v) pc.effective.add(i);
        if (cap_get_flag(c, i, CAP_PERMITTED, &v) == 0 && v) pc.permitted.add(i);
        if (cap_get_flag(c, i, CAP_INHERITABLE, &v) == 0 && v) pc.inheritable.add(i);
        uint64_t bit = uint64_t{1} << i;
        if (bounding &&
            (have_status ? (st.bounding & bit) != 0 : prctl(PR_CAPBSET_READ, i, 0, 0, 0) == 1))
            pc.bounding.add(i);
        if (ambient && (have_status ? (st.ambient & bit) != 0
                                    : prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, i, 0, 0) == 1))
            pc.ambient.add(i);
    }
    cap_free(c);
    return pc;
}

Status drop_bounding(int cap) {
    long r = trace::call([&] { return cat("prctl(PR_CAPBSET_DROP, ", pr_cap(cap), ")"); },
                         [&] { return prctl(PR_CAPBSET_DROP, cap, 0, 0, 0); });
    if (r == 0) return {};
    Error e = sys_error(cat("drop ", cap_name(cap), " from the bounding set"));
    if (e.err == EPERM) return std::move(e).with_hint("dropping capabilities needs CAP_SETPCAP (run as root)");
    return e;
}

Status set_proc(CapSet eff, CapSet perm, CapSet inh) {
    auto describe = [&] {
        return cat("capset({effective=", format_caps(eff), ", permitted=", format_caps(perm),
                   ", inheritable=", format_caps(inh), "})");
    };
    long r = trace::call(describe, [&]() -> long {
        cap_t c = cap_init();
        if (!c) return -1;
        int last = last_cap();
        for (int i = 0; i <= last; ++i) {
            cap_value_t v = i;
            if (eff.has(i)) cap_set_flag(c, CAP_EFFECTIVE, 1, &v, CAP_SET);
            if (perm.has(i)) cap_set_flag(c, CAP_PERMITTED, 1, &v, CAP_SET);
            if (inh.has(i)) cap_set_flag(c, CAP_INHERITABLE, 1, &v, CAP_SET);
        }
        int rc = cap_set_proc(c);
        int e = errno;
        cap_free(c);
        errno = e;
        return rc;
    });
    if (r == 0) return {};
    Error e = sys_error(cat("set capabilities (permitted ", format_caps(perm), ")"));
    if (e.err == EPERM)
        return std::move(e).with_hint("a kept capability is not in the permitted set of this process");
    return e;
}

Status clear_ambient() {
    long r = trace::call([] { return std::string("prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)"); },
                         [] { return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); });
    if (r == 0) return {};
    return sys_error("clear the ambient capability set");
}

Status raise_ambient(int cap) {
    long r = trace::call(
        [&] { return cat("prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, ", pr_cap(cap), ")"); },
        [&] { return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0); });
    if (r == 0) return {};
    return sys_error(cat("raise ", cap_name(cap), " in the ambient set"));
}

Status set_keepcaps(bool on) {
    long r = trace::call([&] { return cat("prctl(PR_SET_KEEPCAPS, ", on ? 1 : 0, ")"); },
                         [&] { return prctl(PR_SET_KEEPCAPS, on ? 1 : 0, 0, 0, 0); });
    if (r == 0) return {};
    return sys_error(cat("prctl(PR_SET_KEEPCAPS, ", on ? 1 : 0, ")"));
}

Status set_securebits(unsigned bits) {
    long r = trace::call([&] { return cat("prctl(PR_SET_SECUREBITS, ", format_securebits(bits), ")"); },
                         [&] { return prctl(PR_SET_SECUREBITS, bits, 0, 0, 0); });
    if (r == 0) return {};
    return sys_error(cat("set securebits ", format_securebits(bits)));
}

Result<unsigned> get_securebits() {
    int r = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
    if (r < 0) return sys_error("prctl(PR_GET_SECUREBITS)");
    return static_cast<unsigned>(r);
}

Status set_no_new_privs() {
    long r = trace::call([] { return std::string("prctl(PR_SET_NO_NEW_PRIVS, 1)"); },
                         [] { return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); });
    if (r == 0) return {};
    return sys_error("prctl(PR_SET_NO_NEW_PRIVS, 1)");
}

}  // namespace kago::caps
