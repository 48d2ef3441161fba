#include "caps/seccomp.hpp"

#include <errno.h>
#include <linux/sched.h>
#include <sys/mman.h>
#include <unistd.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/utsname.h>

#include <cstdio>
#include <cstring>
#include <utility>

#include "caps/json_value.hpp"
#include "core/fd.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"

namespace kago::caps {
namespace {

constexpr Action kEperm{Action::Kind::Errno, EPERM};

struct NsFlag {
    uint64_t bit;
    const char* name;
};
constexpr NsFlag kNsFlags[] = {
    {CLONE_NEWNS, "CLONE_NEWNS"},         {CLONE_NEWUTS, "CLONE_NEWUTS"},
    {CLONE_NEWIPC, "CLONE_NEWIPC"},       {CLONE_NEWUSER, "CLONE_NEWUSER"},
    {CLONE_NEWPID, "CLONE_NEWPID"},       {CLONE_NEWNET, "CLONE_NEWNET"},
    {CLONE_NEWCGROUP, "CLONE_NEWCGROUP"}, {0x80 /* CLONE_NEWTIME */, "CLONE_NEWTIME"},
};

Rule rule(const char* name, Action a, const char* why, std::vector<ArgCmp> args = {}) {
    return Rule{name, a, std::move(args), why};
}

std::string errno_name(uint32_t e) {
    const char* n = strerrorname_np(static_cast<int>(e));
    return n ? n : cat(e);
}

const char* op_name(ArgCmp::Op op) {
    switch (op) {
    case ArgCmp::Op::Ne: return "!=";
    case ArgCmp::Op::Lt: return "<";
    case ArgCmp::Op::Le: return "<=";
    case ArgCmp::Op::Eq: return "==";
    case ArgCmp::Op::Ge: return ">=";
    case ArgCmp::Op::Gt: return ">";
    case ArgCmp::Op::MaskedEq: return "&";
    }
    return "?";
}

std::string hex(uint64_t v) {
    char b[24];
    snprintf(b, sizeof b, v < 10 ? "%llu" : "0x%llx", static_cast<unsigned long long>(v));
    return b;
}

uint32_t to_scmp(const Action& a) {
    switch (a.kind) {
    case Action::Kind::Allow: return SCMP_ACT_ALLOW;
    case Action::Kind::Errno: return SCMP_ACT_ERRNO(a.value);
    case Action::Kind::KillThread: return SCMP_ACT_KILL_THREAD;
    case Action::Kind::KillProcess: return SCMP_ACT_KILL_PROCESS;
    case Action::Kind::Trap: return SCMP_ACT_TRAP;
    case Action::Kind::Log: return SCMP_ACT_LOG;
    case Action::Kind::Trace: return SCMP_ACT_TRACE(a.value);
    }
    return SCMP_ACT_KILL_PROCESS;
}

scmp_compare to_scmp(ArgCmp::Op op) {
    switch (op) {
    case ArgCmp::Op::Ne: return SCMP_CMP_NE;
    case ArgCmp::Op::Lt: return SCMP_CMP_LT;
    case ArgCmp::Op::Le: return SCMP_CMP_LE;
    case ArgCmp::Op::Eq: return SCMP_CMP_EQ;
    case ArgCmp::Op::Ge: return SCMP_CMP_GE;
    case ArgCmp::Op::Gt: return SCMP_CMP_GT;
    case ArgCmp::Op::MaskedEq: return SCMP_CMP_MASKED_EQ;
    }
    return SCMP_CMP_EQ;
}

struct ArchName {
    const char* oci;
    const char* shown;
    uint32_t token;
};
constexpr ArchName kArches[] = {
    {"SCMP_ARCH_X86_64", "x86_64", SCMP_ARCH_X86_64},
    {"SCMP_ARCH_X86", "x86", SCMP_ARCH_X86},
    {"SCMP_ARCH_X32", "x32", SCMP_ARCH_X32},
    {"SCMP_ARCH_AARCH64", "aarch64", SCMP_ARCH_AARCH64},
    {"SCMP_ARCH_ARM", "arm", SCMP_ARCH_ARM},
    {"SCMP_ARCH_RISCV64", "riscv64", SCMP_ARCH_RISCV64},
    {"SCMP_ARCH_PPC64LE", "ppc64le", SCMP_ARCH_PPC64LE},
    {"SCMP_ARCH_S390X", "s390x", SCMP_ARCH_S390X},
    {"SCMP_ARCH_S390", "s390", SCMP_ARCH_S390},
    {"SCMP_ARCH_MIPS", "mips", SCMP_ARCH_MIPS},
    {"SCMP_ARCH_MIPS64", "mips64", SCMP_ARCH_MIPS64},
    {"SCMP_ARCH_MIPSEL", "mipsel", SCMP_ARCH_MIPSEL},
    {"SCMP_ARCH_MIPSEL64", "mipsel64", SCMP_ARCH_MIPSEL64},
    {"SCMP_ARCH_MIPS64N32", "mips64n32", SCMP_ARCH_MIPS64N32},
    {"SCMP_ARCH_MIPSEL64N32", "mipsel64n32", SCMP_ARCH_MIPSEL64N32},
    {"SCMP_ARCH_PARISC", "parisc", SCMP_ARCH_PARISC},
    {"SCMP_ARCH_PARISC64", "parisc64", SCMP_ARCH_PARISC64},
    {"SCMP_ARCH_PPC", "ppc", SCMP_ARCH_PPC},
    {"SCMP_ARCH_PPC64", "ppc64", SCMP_ARCH_PPC64},
};

const ArchName* find_arch(std::string_view s) {
    for (const auto& a : kArches)
        if (s == a.oci || s == a.shown) return &a;
    return nullptr;
}

// The architectures a process on this machine can issue system calls for.
bool runs_here(const ArchName& a) {
    uint32_t native = seccomp_arch_native();
    if (a.token == native) return true;
    if (native == SCMP_ARCH_X86_64) return a.token == SCMP_ARCH_X86 || a.token == SCMP_ARCH_X32;
    if (native == SCMP_ARCH_AARCH64) return a.token == SCMP_ARCH_ARM;
    return false;
}

class ProfileReader {
  public:
    ProfileReader(std::string_view source, CapSet kept) : source_(source), kept_(kept) {}

    Error fail(const JsonValue& v, std::string_view what) const {
        return usage_error(cat(source_, ":", where(v), what));
    }

    Result<Action> action(const JsonValue& v, const JsonValue* errno_ret, uint32_t default_errno) {
        if (!v.is(JsonValue::Type::String)) return fail(v, cat("an action must be a string, not ", v.type_name()));
        uint32_t value = default_errno;
        if (errno_ret) {
            uint64_t n;
            if (!errno_ret->as_u64(n) || n > 4095) return fail(*errno_ret, "errnoRet must be a number from 0 to 4095");
            value = static_cast<uint32_t>(n);
        }
        const std::string& s = v.text;
        if (s == "SCMP_ACT_ALLOW") return Action{Action::Kind::Allow, 0};
        if (s == "SCMP_ACT_ERRNO") return Action{Action::Kind::Errno, value};
        if (s == "SCMP_ACT_KILL" || s == "SCMP_ACT_KILL_THREAD") return Action{Action::Kind::KillThread, 0};
        if (s == "SCMP_ACT_KILL_PROCESS") return Action{Action::Kind::KillProcess, 0};
        if (s == "SCMP_ACT_TRAP") return Action{Action::Kind::Trap, 0};
        if (s == "SCMP_ACT_LOG") return Action{Action::Kind::Log, 0};
        if (s == "SCMP_ACT_TRACE") return Action{Action::Kind::Trace, errno_ret ? value : 0};
        return fail(v, cat("unsupported action '", s, "'"));
    }

    // includes/excludes: does the rule apply here?
    Result<bool> condition(const JsonValue* v, bool include) {
        if (!v) return true;
        if (!v->is(JsonValue::Type::Object)) return fail(*v, cat(include ? "includes" : "excludes", " must be an object"));
        if (const JsonValue* caps = v->get("caps")) {
            if (!caps->is(JsonValue::Type::Array)) return fail(*caps, "caps must be an array");
            for (const auto& c : caps->items) {
                if (!c.is(JsonValue::Type::String)) return fail(c, "a capability must be a string");
                auto cap = cap_from_name(c.text);
                if (!cap) return fail(c, cap.error().what);
                bool held = kept_.has(*cap);
                if (include && !held) return false;  // needs every capability listed
                if (!include && held) return false;  // any listed capability excludes
            }
        }
        if (const JsonValue* arches = v->get("arches")) {
            if (!arches->is(JsonValue::Type::Array)) return fail(*arches, "arches must be an array");
            bool native_listed = false;
            for (const auto& a : arches->items) {
                if (!a.is(JsonValue::Type::String)) return fail(a, "an architecture must be a string");
                std::string name = a.text;
                if (name == "amd64") name = "x86_64";
                if (name == "386") name = "x86";
                if (name == "arm64") name = "aarch64";
                const ArchName* arch = find_arch(name);
                if (arch && arch->token == seccomp_arch_native()) native_listed = true;
            }
            if (include && !native_listed) return false;
            if (!include && native_listed) return false;
        }
        if (const JsonValue* mk = v->get("minKernel")) {
            if (!mk->is(JsonValue::Type::String)) return fail(*mk, "minKernel must be a string");
            unsigned want_major = 0, want_minor = 0, major = 0, minor = 0;
            if (sscanf(mk->text.c_str(), "%u.%u", &want_major, &want_minor) < 1)
                return fail(*mk, cat("minKernel '", mk->text, "' is not a version"));
            struct utsname u;
            if (uname(&u) == 0 && sscanf(u.release, "%u.%u", &major, &minor) >= 1) {
                bool new_enough = major > want_major || (major == want_major && minor >= want_minor);
                if (include != new_enough) return false;
            }
        }
        return true;
    }

    Result<Profile> read(const JsonValue& root) {
        Profile p;
        p.source = std::string(source_);
        p.bad_arch = Action{Action::Kind::KillProcess, 0};
        if (!root.is(JsonValue::Type::Object)) return fail(root, "a profile must be a JSON object");
        const JsonValue* def = root.get("defaultAction");
        if (!def) return fail(root, "the profile has no defaultAction");
        uint32_t default_errno = EPERM;
        if (const JsonValue* d = root.get("defaultErrnoRet")) {
            uint64_t n;
            if (!d->as_u64(n) || n > 4095) return fail(*d, "defaultErrnoRet must be a number from 0 to 4095");
            default_errno = static_cast<uint32_t>(n);
        }
        p.default_action = TRY(action(*def, root.get("defaultErrnoRet"), default_errno));
        if (const JsonValue* arches = root.get("architectures")) {
            if (!arches->is(JsonValue::Type::Array)) return fail(*arches, "architectures must be an array");
            for (const auto& a : arches->items) TRY(add_arch(p, a));
        }
        if (const JsonValue* map = root.get("archMap")) {
            if (!map->is(JsonValue::Type::Array)) return fail(*map, "archMap must be an array");
            for (const auto& entry : map->items) {
                const JsonValue* arch = entry.get("architecture");
                if (!arch || !arch->is(JsonValue::Type::String)) return fail(entry, "an archMap entry needs an architecture");
                const ArchName* a = find_arch(arch->text);
                if (!a) return fail(*arch, cat("unknown architecture '", arch->text, "'"));
                if (a->token != seccomp_arch_native()) continue;
                if (const JsonValue* subs = entry.get("subArchitectures"); subs && !subs->is(JsonValue::Type::Null)) {
                    if (!subs->is(JsonValue::Type::Array)) return fail(*subs, "subArchitectures must be an array");
                    for (const auto& s : subs->items) TRY(add_arch(p, s));
                }
            }
        }
        if (const JsonValue* calls = root.get("syscalls")) {
            if (!calls->is(JsonValue::Type::Array)) return fail(*calls, "syscalls must be an array");
            for (const auto& call : calls->items) TRY(syscall_entry(p, call, default_errno));
        }
        return p;
    }

    Status add_arch(Profile& p, const JsonValue& a) {
        if (!a.is(JsonValue::Type::String)) return fail(a, "an architecture must be a string");
        const ArchName* arch = find_arch(a.text);
        if (!arch) return fail(a, cat("unknown architecture '", a.text, "'"));
        if (arch->token == seccomp_arch_native() || !runs_here(*arch)) return {};
        for (const auto& have : p.arches)
            if (have == arch->shown) return {};
        p.arches.emplace_back(arch->shown);
        return {};
    }

    Status syscall_entry(Profile& p, const JsonValue& call, uint32_t default_errno) {
        if (!call.is(JsonValue::Type::Object)) return fail(call, "a syscalls entry must be an object");
        if (!TRY(condition(call.get("includes"), true))) return {};
        if (!TRY(condition(call.get("excludes"), false))) return {};
        const JsonValue* act = call.get("action");
        if (!act) return fail(call, "a syscalls entry has no action");
        Action a = TRY(action(*act, call.get("errnoRet"), default_errno));
        std::vector<ArgCmp> args;
        if (const JsonValue* list = call.get("args"); list && !list->is(JsonValue::Type::Null)) {
            if (!list->is(JsonValue::Type::Array)) return fail(*list, "args must be an array");
            for (const auto& arg : list->items) args.push_back(TRY(argument(arg)));
        }
        std::vector<const JsonValue*> names;
        if (const JsonValue* n = call.get("names")) {
            if (!n->is(JsonValue::Type::Array)) return fail(*n, "names must be an array");
            for (const auto& item : n->items) names.push_back(&item);
        }
        if (const JsonValue* n = call.get("name")) names.push_back(n);
        if (names.empty()) return fail(call, "a syscalls entry has no names");
        std::string why;
        if (const JsonValue* c = call.get("comment"); c && c->is(JsonValue::Type::String)) why = c->text;
        for (const JsonValue* n : names) {
            if (!n->is(JsonValue::Type::String)) return fail(*n, "a syscall name must be a string");
            if (seccomp_syscall_resolve_name(n->text.c_str()) == __NR_SCMP_ERROR)
                return fail(*n, cat("unknown syscall '", n->text, "'"));
            p.rules.push_back(Rule{n->text, a, args, why});
        }
        return {};
    }

    Result<ArgCmp> argument(const JsonValue& arg) {
        if (!arg.is(JsonValue::Type::Object)) return fail(arg, "an args entry must be an object");
        ArgCmp c;
        uint64_t n;
        const JsonValue* index = arg.get("index");
        if (!index || !index->as_u64(n) || n > 5) return fail(index ? *index : arg, "an argument index must be 0 to 5");
        c.index = static_cast<unsigned>(n);
        const JsonValue* value = arg.get("value");
        if (!value || !value->as_u64(c.value)) return fail(value ? *value : arg, "an argument value must be an unsigned number");
        if (const JsonValue* two = arg.get("valueTwo"); two && !two->as_u64(c.value_two))
            return fail(*two, "valueTwo must be an unsigned number");
        const JsonValue* op = arg.get("op");
        if (!op || !op->is(JsonValue::Type::String)) return fail(op ? *op : arg, "an argument needs an op");
        static constexpr std::pair<const char*, ArgCmp::Op> ops[] = {
            {"SCMP_CMP_NE", ArgCmp::Op::Ne}, {"SCMP_CMP_LT", ArgCmp::Op::Lt},
            {"SCMP_CMP_LE", ArgCmp::Op::Le}, {"SCMP_CMP_EQ", ArgCmp::Op::Eq},
            {"SCMP_CMP_GE", ArgCmp::Op::Ge}, {"SCMP_CMP_GT", ArgCmp::Op::Gt},
            {"SCMP_CMP_MASKED_EQ", ArgCmp::Op::MaskedEq},
        };
        for (auto [name, o] : ops)
            if (op->text == name) {
                c.op = o;
                return c;
            }
        return fail(*op, cat("unknown op '", op->text, "'"));
    }

  private:
    std::string_view source_;
    CapSet kept_;
};

struct Filter {
    scmp_filter_ctx ctx = nullptr;
    Filter() = default;
    Filter(Filter&& o) noexcept : ctx(std::exchange(o.ctx, nullptr)) {}
    Filter& operator=(Filter&& o) noexcept {
        std::swap(ctx, o.ctx);
        return *this;
    }
    Filter(const Filter&) = delete;
    ~Filter() {
        if (ctx) seccomp_release(ctx);
    }
};

Error scmp_error(int rc, std::string what) {
    Error e = usage_error(std::move(what));
    e.err = -rc;
    return e;
}

Result<Filter> build(const Profile& p, Layout layout) {
    Filter f;
    f.ctx = seccomp_init(to_scmp(p.default_action));
    if (!f.ctx) return usage_error("seccomp: cannot create a filter (libseccomp)");
    int rc = seccomp_attr_set(f.ctx, SCMP_FLTATR_ACT_BADARCH, to_scmp(p.bad_arch));
    if (rc < 0) return scmp_error(rc, cat("seccomp: set the action for other architectures to ", describe(p.bad_arch)));
    // The kernel's own errno when loading fails, not ECANCELED.
    seccomp_attr_set(f.ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
    // no_new_privs is ours to set (or not, with --allow-new-privs).
    rc = seccomp_attr_set(f.ctx, SCMP_FLTATR_CTL_NNP, 0);
    if (rc < 0) return scmp_error(rc, "seccomp: turn off libseccomp's no_new_privs");
    if (layout == Layout::tree) {
        rc = seccomp_attr_set(f.ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
        if (rc < 0) return scmp_error(rc, "seccomp: ask libseccomp for a binary tree");
    }
    for (const auto& name : p.arches) {
        const ArchName* a = find_arch(name);
        if (!a) return usage_error(cat("seccomp: unknown architecture ", name));
        rc = seccomp_arch_add(f.ctx, a->token);
        if (rc < 0 && rc != -EEXIST) return scmp_error(rc, cat("seccomp: add architecture ", name));
    }
    for (const auto& r : p.rules) {
        if (r.action == p.default_action) continue;  // libseccomp refuses these; they change nothing
        int nr = seccomp_syscall_resolve_name(r.syscall.c_str());
        if (nr == __NR_SCMP_ERROR) return usage_error(cat("seccomp: unknown syscall '", r.syscall, "'"));
        std::vector<scmp_arg_cmp> cmps;
        for (const auto& a : r.args) {
            scmp_arg_cmp c{};
            c.arg = a.index;
            c.op = to_scmp(a.op);
            c.datum_a = a.value;
            c.datum_b = a.value_two;
            cmps.push_back(c);
        }
        rc = seccomp_rule_add_array(f.ctx, to_scmp(r.action), nr, static_cast<unsigned>(cmps.size()),
                                    cmps.empty() ? nullptr : cmps.data());
        if (rc < 0) return scmp_error(rc, cat("seccomp: add the rule for ", r.syscall));
    }
    return f;
}

}  // namespace

Profile default_profile(CapSet kept) {
    Profile p;
    p.source = "default";
    p.default_action = Action{Action::Kind::Allow, 0};
    p.bad_arch = Action{Action::Kind::Errno, ENOSYS};
    auto& r = p.rules;
    for (const char* n : {"keyctl", "add_key", "request_key"})
        r.push_back(rule(n, kEperm, "the kernel keyring is not namespaced"));
    r.push_back(rule("userfaultfd", kEperm, "a common exploit primitive"));
    for (const char* n : {"kexec_load", "kexec_file_load"}) r.push_back(rule(n, kEperm, "loads a new kernel"));
    if (!kept.has(39 /* bpf */) && !kept.has(21))
        r.push_back(rule("bpf", kEperm, "eBPF programs (kept: bpf or sys_admin)"));
    if (!kept.has(38 /* perfmon */) && !kept.has(21))
        r.push_back(rule("perf_event_open", kEperm, "performance counters (kept: perfmon or sys_admin)"));
    if (!kept.has(19 /* sys_ptrace */)) {
        for (const char* n : {"ptrace", "process_vm_readv", "process_vm_writev"})
            r.push_back(rule(n, kEperm, "access to other processes (kept: sys_ptrace)"));
    }
    for (const char* n : {"io_uring_setup", "io_uring_enter", "io_uring_register"})
        r.push_back(rule(n, kEperm, "io_uring bypasses seccomp"));
    if (!kept.has(21 /* sys_admin */)) {
        for (const char* n : {"mount", "umount2", "pivot_root", "setns", "sethostname", "setdomainname",
                              "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree",
                              "mount_setattr"})
            r.push_back(rule(n, kEperm, "needs sys_admin"));
        for (const auto& f : kNsFlags) {
            std::string why = cat("new namespace ", f.name, " (kept: sys_admin)");
            ArgCmp c{0, ArgCmp::Op::MaskedEq, f.bit, f.bit};
            r.push_back(Rule{"unshare", kEperm, {c}, why});
            r.push_back(Rule{"clone", kEperm, {c}, why});
        }
        r.push_back(rule("clone3", Action{Action::Kind::Errno, ENOSYS},
                         "its flags cannot be inspected: ENOSYS makes libc fall back to clone"));
    }
    if (!kept.has(20 /* sys_pacct */)) r.push_back(rule("acct", kEperm, "needs sys_pacct"));
    for (const char* n : {"swapon", "swapoff"})
        if (!kept.has(21)) r.push_back(rule(n, kEperm, "needs sys_admin"));
    if (!kept.has(16 /* sys_module */)) {
        for (const char* n : {"init_module", "finit_module", "delete_module"})
            r.push_back(rule(n, kEperm, "kernel modules (kept: sys_module)"));
    }
    if (!kept.has(22 /* sys_boot */)) r.push_back(rule("reboot", kEperm, "needs sys_boot"));
    if (!kept.has(34 /* syslog */)) r.push_back(rule("syslog", kEperm, "the host's kernel log (kept: syslog)"));
    if (!kept.has(2 /* dac_read_search */))
        r.push_back(rule("open_by_handle_at", kEperm, "opens any inode of a bound filesystem (kept: dac_read_search)"));
    // The terminal is the caller's: whatever is pushed into its input, the
    // caller's shell runs (CVE-2017-5226). Whatever the capabilities. The
    // kernel reads the request as 32 bits, so only those are compared.
    r.push_back(Rule{"ioctl", kEperm, {ArgCmp{1, ArgCmp::Op::MaskedEq, 0xffffffffu, TIOCSTI}},
                     "TIOCSTI: input pushed into the caller's terminal"});
    r.push_back(Rule{"ioctl", kEperm, {ArgCmp{1, ArgCmp::Op::MaskedEq, 0xffffffffu, TIOCLINUX}},
                     "TIOCLINUX: the console's selection pasted as input"});
    r.push_back(Rule{"socket", kEperm, {ArgCmp{0, ArgCmp::Op::Eq, AF_ALG, 0}}, "AF_ALG: kernel crypto sockets"});
    r.push_back(Rule{"socket", kEperm, {ArgCmp{0, ArgCmp::Op::Eq, AF_VSOCK, 0}}, "AF_VSOCK: host-guest sockets"});
    return p;
}

Result<Profile> parse_profile(std::string_view json, std::string_view source, CapSet kept) {
    auto doc = parse_json(json);
    if (!doc) return usage_error(cat(source, ":", doc.error().what));
    return ProfileReader(source, kept).read(*doc);
}

Result<Profile> load_profile_file(const std::string& path, CapSet kept) {
    auto text = sys::read_file(path.c_str());
    if (!text) return std::move(text).error();
    return parse_profile(*text, path, kept);
}

void make_log_only(Profile& p) {
    auto log = [](Action& a) {
        if (a.kind != Action::Kind::Allow) a = Action{Action::Kind::Log, 0};
    };
    log(p.default_action);
    for (auto& r : p.rules) log(r.action);
}

std::string describe(const Action& a) {
    switch (a.kind) {
    case Action::Kind::Allow: return "allow";
    case Action::Kind::Errno: return cat("errno ", errno_name(a.value));
    case Action::Kind::KillThread: return "kill thread";
    case Action::Kind::KillProcess: return "kill process";
    case Action::Kind::Trap: return "trap (SIGSYS)";
    case Action::Kind::Log: return "log";
    case Action::Kind::Trace: return cat("trace ", a.value);
    }
    return "?";
}

std::string describe(const Profile& p) {
    std::string out = cat("# seccomp profile: ", p.source, "\n");
    std::string arches = "x86_64";
    for (const auto& a : p.arches) arches += cat(", ", a);
    out += cat("default action: ", describe(p.default_action), "\n");
    out += cat("architectures: ", arches, "; system calls of any other (", p.arches.empty() ? "i386, x32" : "e.g. another ABI",
               "): ", describe(p.bad_arch), "\n");
    out += cat("rules: ", p.rules.size(), "\n");
    for (const auto& r : p.rules) {
        std::string cond;
        for (const auto& a : r.args) {
            cond += cond.empty() ? " if " : " and ";
            if (a.op == ArgCmp::Op::MaskedEq)
                cond += cat("arg", a.index, " & ", hex(a.value), " == ", hex(a.value_two));
            else
                cond += cat("arg", a.index, " ", op_name(a.op), " ", hex(a.value));
        }
        std::string line = cat(r.syscall, cond);
        if (line.size() < 40) line.resize(40, ' ');
        std::string act = describe(r.action);
        if (!r.why.empty()) {
            if (act.size() < 16) act.resize(16, ' ');
            act += cat("# ", r.why);
        }
        out += cat(line, " ", act, "\n");
    }
    return out;
}

std::string filter_summary(const Profile& p) {
    size_t n = 0;
    for (const auto& r : p.rules)
        if (!(r.action == p.default_action)) ++n;
    return cat("profile ", trace::quote(p.source), ", default action ", describe(p.default_action), ", ", n, " rules");
}

std::string profile_key(const Profile& p) {
    auto action = [](const Action& a) { return cat(static_cast<int>(a.kind), ":", a.value); };
    std::string key = cat("default ", action(p.default_action), "; bad arch ", action(p.bad_arch), "; arches");
    for (const auto& a : p.arches) key += cat(" ", a);
    for (const auto& r : p.rules) {
        key += cat("; ", r.syscall, " ", action(r.action));
        for (const auto& c : r.args)
            key += cat(" arg", c.index, " op", static_cast<int>(c.op), " ", c.value, " ", c.value_two);
    }
    return key;
}

std::vector<Profile> precompiled_profiles() {
    return {default_profile(default_caps()), default_profile(all_caps()), default_profile(CapSet{})};
}

Result<CompiledFilter> compile_with_libseccomp(const Profile& p, Layout layout) {
    Filter f = TRY(build(p, layout));
    CompiledFilter out;
    out.source = p.source;
    out.what = filter_summary(p);
    UniqueFd mem(::memfd_create("kago-seccomp", MFD_CLOEXEC));
    if (!mem) return sys_error("seccomp: memfd_create for the BPF program");
    int rc = seccomp_export_bpf(f.ctx, mem.get());
    if (rc < 0) return scmp_error(rc, cat("seccomp: export the BPF program of ", p.source));
    off_t size = ::lseek(mem.get(), 0, SEEK_END);
    if (size < 0 || size % sizeof(sock_filter) != 0 || size / sizeof(sock_filter) > BPF_MAXINSNS)
        return usage_error(cat("seccomp: the filter of ", p.source, " has ", size, " bytes of BPF"));
    out.program.resize(static_cast<size_t>(size) / sizeof(sock_filter));
    if (::pread(mem.get(), out.program.data(), static_cast<size_t>(size), 0) != size)
        return sys_error("seccomp: read the BPF program back");
    return out;
}

}  // namespace kago::caps
