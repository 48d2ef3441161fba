#include "core/trace.hpp"

#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdio>

#include "core/result.hpp"

namespace kago::trace {
namespace {
char g_program[64] = "kago";
bool g_verbose = false;
bool g_dry_run = false;
}  // namespace

void set_program(std::string_view name) {
    size_t n = name.size() < sizeof g_program - 1 ? name.size() : sizeof g_program - 1;
    memcpy(g_program, name.data(), n);
    g_program[n] = '\0';
}
const char* program() { return g_program; }
void set_verbose(bool on) { g_verbose = on; }
void set_dry_run(bool on) { g_dry_run = on; }
bool verbose() { return g_verbose; }
bool dry_run() { return g_dry_run; }

void emit(std::string_view text) {
    char buf[4096];
    size_t plen = strlen(g_program);
    size_t n = 0;
    auto put = [&](const char* s, size_t len) {
        if (len > sizeof buf - 1 - n) len = sizeof buf - 1 - n;
        memcpy(buf + n, s, len);
        n += len;
    };
    put(g_program, plen);
    put(": ", 2);
    put(text.data(), text.size());
    buf[n++] = '\n';
    int saved = errno;
    const char* p = buf;
    while (n > 0) {
        ssize_t w = ::write(2, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            break;
        }
        p += w;
        n -= static_cast<size_t>(w);
    }
    errno = saved;
}

std::string result_suffix(long ret, int err) {
    if (ret != -1) return cat(" = ", ret);
    const char* name = strerrorname_np(err);
    return cat(" = -1 ", name ? name : "E?", " (", strerror(err), ")");
}

void emit_result(std::string_view description, long r, int e) {
    char line[4096];
    size_t n = description.size() < 3900 ? description.size() : 3900;
    memcpy(line, description.data(), n);
    int m;
    if (r == -1) {
        const char* name = strerrorname_np(e);
        const char* desc = strerrordesc_np(e);
        m = snprintf(line + n, sizeof line - n, " = -1 %s (%s)", name ? name : "E?", desc ? desc : "?");
    } else {
        m = snprintf(line + n, sizeof line - n, " = %ld", r);
    }
    emit(std::string_view(line, n + (m > 0 ? static_cast<size_t>(m) : 0)));
}

long call_prepared(std::string_view description, long (*fn)(void*), void* arg,
                   long dry_value) {
    if (dry_run()) {
        char line[4096];
        size_t n = description.size() < 4000 ? description.size() : 4000;
        memcpy(line, description.data(), n);
        memcpy(line + n, " (dry run)", 10);
        emit(std::string_view(line, n + 10));
        return dry_value;
    }
    long r = fn(arg);
    int e = errno;
    if (verbose()) emit_result(description, r, e);
    errno = e;
    return r;
}

std::string quote(std::string_view s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20 || c >= 0x7f) {
                char b[5];
                snprintf(b, sizeof b, "\\x%02x", c);
                out += b;
            } else {
                out += static_cast<char>(c);
            }
        }
    }
    out += '"';
    return out;
}

std::string flags(unsigned long v, std::initializer_list<FlagName> names) {
    if (v == 0) return "0";
    std::string out;
    for (const auto& f : names) {
        if (f.value != 0 && (v & f.value) == f.value) {
            if (!out.empty()) out += '|';
            out += f.name;
            v &= ~f.value;
        }
    }
    if (v != 0) {
        char b[24];
        snprintf(b, sizeof b, "%#lx", v);
        if (!out.empty()) out += '|';
        out += b;
    }
    return out;
}

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

std::string clone_flags(unsigned long v) {
    unsigned long sig = v & 0x7f;  // clone()'s exit signal (0x80 is CLONE_NEWTIME)
    std::string out = flags(v & ~0x7ful, {{CLONE_NEWUSER, "CLONE_NEWUSER"},
                     {CLONE_NEWPID, "CLONE_NEWPID"},
                     {CLONE_NEWNS, "CLONE_NEWNS"},
                     {CLONE_NEWUTS, "CLONE_NEWUTS"},
                     {CLONE_NEWIPC, "CLONE_NEWIPC"},
                     {CLONE_NEWNET, "CLONE_NEWNET"},
                     {CLONE_NEWCGROUP, "CLONE_NEWCGROUP"},
                     {CLONE_NEWTIME, "CLONE_NEWTIME"},
                     {CLONE_VM, "CLONE_VM"},
                     {CLONE_VFORK, "CLONE_VFORK"},
                     {CLONE_PIDFD, "CLONE_PIDFD"},
                     {CLONE_FILES, "CLONE_FILES"},
                     {CLONE_FS, "CLONE_FS"}});
    if (sig == SIGCHLD) out = out == "0" ? "SIGCHLD" : out + "|SIGCHLD";
    else if (sig != 0) out += cat("|", sig);
    return out;
}

std::string mount_flags(unsigned long v) {
    return flags(v, {{MS_RDONLY, "MS_RDONLY"},
                     {MS_NOSUID, "MS_NOSUID"},
                     {MS_NODEV, "MS_NODEV"},
                     {MS_NOEXEC, "MS_NOEXEC"},
                     {MS_REMOUNT, "MS_REMOUNT"},
                     {MS_BIND, "MS_BIND"},
                     {MS_MOVE, "MS_MOVE"},
                     {MS_REC, "MS_REC"},
                     {MS_PRIVATE, "MS_PRIVATE"},
                     {MS_SLAVE, "MS_SLAVE"},
                     {MS_SHARED, "MS_SHARED"},
                     {MS_UNBINDABLE, "MS_UNBINDABLE"},
                     {MS_RELATIME, "MS_RELATIME"},
                     {MS_NOATIME, "MS_NOATIME"},
                     {MS_STRICTATIME, "MS_STRICTATIME"},
                     {MS_SILENT, "MS_SILENT"}});
}

std::string umount_flags(unsigned long v) {
    return flags(v, {{MNT_FORCE, "MNT_FORCE"},
                     {MNT_DETACH, "MNT_DETACH"},
                     {MNT_EXPIRE, "MNT_EXPIRE"},
                     {UMOUNT_NOFOLLOW, "UMOUNT_NOFOLLOW"}});
}

}  // namespace kago::trace
