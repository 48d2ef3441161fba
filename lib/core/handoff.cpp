#include "core/handoff.hpp"

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <string>

#include "core/env.hpp"
#include "core/proc.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"

namespace kago::handoff {
namespace {

const Program* g_programs = nullptr;
size_t g_count = 0;
// A shared library was loaded (open_library()): exec from then on.
bool g_libraries_loaded = false;
// KAGO_EXEC=1 as the running program found it at its start: the last
// program of a chain removes the KAGO_ variables before its exec.
bool g_exec_forced = false;

std::string_view base_name(std::string_view path) {
    auto slash = path.rfind('/');
    return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

Main find(std::string_view name) {
    for (size_t i = 0; i < g_count; ++i)
        if (g_programs[i].name == name) return g_programs[i].main;
    return nullptr;
}

// --- build IDs: the same code ------------------------------------------------

struct BuildId {
    unsigned char bytes[64];
    size_t size = 0;
    bool operator==(const BuildId& o) const {
        return size == o.size && memcmp(bytes, o.bytes, size) == 0;
    }
};

// The NT_GNU_BUILD_ID note among the notes in [p, p + n).
BuildId note_id(const unsigned char* p, size_t n) {
    BuildId id;
    size_t off = 0;
    while (off + sizeof(Elf64_Nhdr) <= n) {
        Elf64_Nhdr h;
        memcpy(&h, p + off, sizeof h);
        size_t name_at = off + sizeof h;
        size_t desc_at = name_at + ((h.n_namesz + 3) & ~3u);
        size_t next = desc_at + ((h.n_descsz + 3) & ~3u);
        if (next > n || desc_at > n) break;
        if (h.n_type == NT_GNU_BUILD_ID && h.n_namesz == 4 && memcmp(p + name_at, "GNU", 4) == 0 &&
            h.n_descsz > 0 && h.n_descsz <= sizeof id.bytes) {
            memcpy(id.bytes, p + desc_at, h.n_descsz);
            id.size = h.n_descsz;
            return id;
        }
        off = next;
    }
    return id;
}

int own_note(struct dl_phdr_info* info, size_t, void* data) {
    auto* id = static_cast<BuildId*>(data);
    for (int i = 0; i < info->dlpi_phnum && id->size == 0; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        if (ph.p_type == PT_NOTE)
            *id = note_id(reinterpret_cast<const unsigned char*>(info->dlpi_addr + ph.p_vaddr),
                          ph.p_memsz);
    }
    return 1;  // the first object is the program itself
}

const BuildId& own_build_id() {
    static const BuildId id = [] {
        BuildId b;
        dl_iterate_phdr(own_note, &b);
        return b;
    }();
    return id;
}

BuildId file_build_id(int fd) {
    Elf64_Ehdr eh;
    if (::pread(fd, &eh, sizeof eh, 0) != static_cast<ssize_t>(sizeof eh) ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 64)
        return {};
    Elf64_Phdr ph[64];
    auto want = static_cast<ssize_t>(sizeof(Elf64_Phdr) * eh.e_phnum);
    if (::pread(fd, ph, static_cast<size_t>(want), static_cast<off_t>(eh.e_phoff)) != want)
        return {};
    for (int i = 0; i < eh.e_phnum; ++i) {
        if (ph[i].p_type != PT_NOTE || ph[i].p_filesz > 4096) continue;
        unsigned char buf[4096];
        auto n = static_cast<ssize_t>(ph[i].p_filesz);
        if (::pread(fd, buf, static_cast<size_t>(n), static_cast<off_t>(ph[i].p_offset)) != n)
            continue;
        BuildId id = note_id(buf, static_cast<size_t>(n));
        if (id.size) return id;
    }
    return {};
}

// --- capabilities: what exec(2) makes of them ----------------------------------

struct Caps {
    __user_cap_data_struct d[2];
};

uint64_t join(uint32_t lo, uint32_t hi) {
    return lo | (static_cast<uint64_t>(hi) << 32);
}

bool get_caps(Caps& c) {
    __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
    return ::syscall(SYS_capget, &h, c.d) == 0;
}

// capabilities(7), "Transformation of capabilities during execve()", for a
// file without capabilities and without set-user-ID or set-group-ID bits,
// run by a process whose real and effective IDs are equal: root (unless
// SECBIT_NOROOT) gets permitted = inheritable | bounding, all effective;
// everyone else keeps only the ambient set. Inheritable, ambient and
// bounding sets stay.
struct ExecCaps {
    uint64_t permitted, effective;
};
ExecCaps exec_caps(const Caps& c, uid_t euid, int securebits, const proc::SelfStatus& st) {
    uint64_t inh = join(c.d[0].inheritable, c.d[1].inheritable);
    bool root = euid == 0 && !(securebits & SECBIT_NOROOT);
    if (root) {
        uint64_t p = inh | st.bounding | st.ambient;
        return {p, p};
    }
    return {st.ambient, st.ambient};
}

bool set_caps(const Caps& old, const ExecCaps& e) {
    Caps c = old;
    c.d[0].permitted = static_cast<uint32_t>(e.permitted);
    c.d[1].permitted = static_cast<uint32_t>(e.permitted >> 32);
    c.d[0].effective = static_cast<uint32_t>(e.effective);
    c.d[1].effective = static_cast<uint32_t>(e.effective >> 32);
    __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
    return ::syscall(SYS_capset, &h, c.d) == 0;
}

// --- the checks ----------------------------------------------------------------

// Read once per process image: a label changes by an exec's domain
// transition or by a write to attr/current, which no kago program makes;
// a fork keeps it, and so does entering a program in process (which is
// what this check guards).
bool confined_by_lsm() {
    static int confined = -1;
    if (confined >= 0) return confined;
    int fd = ::open("/proc/thread-self/attr/current", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;  // no /proc: asked again next time
    char buf[256];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) {  // no LSM that labels processes (EINVAL)
        confined = 0;
        return false;
    }
    buf[n] = '\0';
    std::string_view label(buf, static_cast<size_t>(n));
    while (!label.empty() && (label.back() == '\n' || label.back() == '\0')) label.remove_suffix(1);
    confined = !label.empty() && label != "unconfined";
    return confined;
}

// The dentry name the exec'd file is reached by: what exec(2) with
// AT_EMPTY_PATH names the task ("cap-drop", or "memfd:/usr/local/bin/cap-drop"
// for a sealed copy), cut to 15 bytes.
std::string comm_for(int fd) {
    char buf[PATH_MAX];
    ssize_t n = ::readlink(cat("/proc/self/fd/", fd).c_str(), buf, sizeof buf - 1);
    if (n <= 0) return {};
    std::string_view path(buf, static_cast<size_t>(n));
    constexpr std::string_view deleted = " (deleted)";
    std::string name;
    if (path.substr(0, 7) == "/memfd:") {
        if (path.size() >= deleted.size() && path.substr(path.size() - deleted.size()) == deleted)
            path.remove_suffix(deleted.size());
        name = std::string(path.substr(1));
    } else {
        name = std::string(base_name(path));
    }
    return name.substr(0, 15);
}

// Rewrite the argument area that /proc/PID/cmdline shows with the new argv,
// NUL-separated, the rest NUL: exec would show the new one. It is cut to
// the length of the area the process was started with.
void rewrite_cmdline(char* const argv[]) {
    proc::StringAreas a = proc::own_string_areas();
    if (!a.known()) return;
    char* begin = a.args;
    size_t size = static_cast<size_t>(a.args_end - a.args), at = 0;
    for (size_t i = 0; argv[i] && at < size; ++i) {
        size_t len = strlen(argv[i]) + 1;
        if (len > size - at) len = size - at;
        memmove(begin + at, argv[i], len);
        at += len;
    }
    memset(begin + at, 0, size - at);
    begin[size - 1] = '\0';
}

}  // namespace

void close_cloexec_fds() {
    int dir = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        // The numbers first, closed after: closing while reading the
        // directory would skip entries.
        int fds[1024];
        for (;;) {
            size_t n = 0;
            bool more = false;
            ::lseek(dir, 0, SEEK_SET);
            char buf[4096];
            long got;
            while ((got = ::syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
                for (long off = 0; off < got;) {
                    auto* d = reinterpret_cast<struct dirent64*>(buf + off);
                    off += d->d_reclen;
                    char* end;
                    long fd = strtol(d->d_name, &end, 10);
                    if (*end || end == d->d_name || fd == dir) continue;
                    int flags = ::fcntl(static_cast<int>(fd), F_GETFD);
                    if (flags < 0 || !(flags & FD_CLOEXEC)) continue;
                    if (n == sizeof fds / sizeof fds[0]) {
                        more = true;
                        continue;
                    }
                    fds[n++] = static_cast<int>(fd);
                }
            }
            for (size_t i = 0; i < n; ++i) ::close(fds[i]);
            if (!more) break;
        }
        ::close(dir);
        return;
    }
    // No /proc: every number up to the limit.
    struct rlimit rl;
    int max = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                  ? static_cast<int>(rl.rlim_cur < (1u << 20) ? rl.rlim_cur : (1u << 20))
                  : 65536;
    for (int fd = 0; fd < max; ++fd) {
        int flags = ::fcntl(fd, F_GETFD);
        if (flags >= 0 && (flags & FD_CLOEXEC)) ::close(fd);
    }
}

namespace {

void reset_signals(uint64_t caught) {
    for (int sig = 1; sig < NSIG && sig <= 64; ++sig) {
        if (!(caught & (uint64_t{1} << (sig - 1)))) continue;
        struct sigaction sa;
        if (::sigaction(sig, nullptr, &sa) != 0) continue;  // glibc's own
        if (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN) continue;
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        ::sigaction(sig, &dfl, nullptr);
    }
    stack_t off;
    memset(&off, 0, sizeof off);
    off.ss_flags = SS_DISABLE;
    ::sigaltstack(&off, nullptr);
}

// Why `p` cannot be entered in process, or nullptr; `e` is then what exec
// would make of our capabilities, `st` what /proc/self/status showed.
const char* refusal(const PreparedExec& p, proc::SelfStatus& status, ExecCaps& e) {
    if (g_exec_forced || env::is_true(env::kExec)) return "KAGO_EXEC=1";
    if (g_libraries_loaded) return "a shared library was loaded (dlopen): its mappings would stay";
    if (!g_count) return "not a multi-call binary";
    if (!p.kago || !p.program.valid() || p.argv.empty())
        return "not a kago program found beside this one";
    if (!find(base_name(p.argv[0]))) return "not a program of this binary";
    std::string fdpath = cat("/proc/self/fd/", p.program.get());
    UniqueFd file(::open(fdpath.c_str(), O_RDONLY | O_CLOEXEC));
    if (!file.valid()) return "the program cannot be read (or no /proc)";
    if (p.sealed) {
        // A sealed copy of the file we were copied from: the same code, and
        // the same directory for self_dir().
        if (!running_sealed()) return "the exec moves the process to a sealed copy";
        if (own_build_id().size == 0 || !(file_build_id(file.get()) == own_build_id()))
            return "another build";
        auto dir = self_dir();
        std::string_view path = p.program_path;
        auto slash = path.rfind('/');
        std::string_view pdir = slash == std::string_view::npos ? "."
                                : slash == 0                    ? "/"
                                                                : path.substr(0, slash);
        if (!dir || *dir != pdir) return "a program of another directory";
    } else {
        // The very file that runs (one of its names).
        struct stat want, have;
        if (::fstat(file.get(), &want) != 0 || ::stat("/proc/self/exe", &have) != 0 ||
            want.st_dev != have.st_dev || want.st_ino != have.st_ino)
            return "another file";
    }
    struct stat st;
    if (::fstat(file.get(), &st) != 0 || (st.st_mode & (S_ISUID | S_ISGID)))
        return "a set-user-ID or set-group-ID file";
    if (::fgetxattr(file.get(), "security.capability", nullptr, 0) >= 0)
        return "a file with capabilities";
    struct statvfs vfs;
    if (::fstatvfs(file.get(), &vfs) != 0 || (vfs.f_flag & ST_NOEXEC)) return "a noexec mount";
    if (::faccessat(AT_FDCWD, fdpath.c_str(), X_OK | R_OK, AT_EACCESS) != 0)
        return "not executable and readable by us";
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;
    if (::getresuid(&ruid, &euid, &suid) != 0 || ::getresgid(&rgid, &egid, &sgid) != 0 ||
        ruid != euid || rgid != egid)
        return "real and effective IDs differ";
    int securebits = ::prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
    if (securebits < 0 || (securebits & SECBIT_KEEP_CAPS)) return "SECBIT_KEEP_CAPS is set";
    Caps c;
    if (!get_caps(c)) return "capget failed";
    if (!proc::self_status(status)) return "/proc/self/status cannot be read";
    e = exec_caps(c, euid, securebits, status);
    uint64_t perm = join(c.d[0].permitted, c.d[1].permitted);
    if ((e.permitted & ~perm) != 0) return "the exec would regain capabilities";
    if (status.threads != 1) return "more than one thread";
    if (confined_by_lsm()) return "confined by an LSM";
    return nullptr;
}

}  // namespace

void forget_loaded_libraries() {
    g_libraries_loaded = false;
}

void* open_library(const char* soname) {
    g_libraries_loaded = true;  // even a failed dlopen may leave objects mapped
    return ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
}

void reset_caught_signals() {
    proc::SelfStatus st;
    reset_signals(proc::self_status(st) ? st.caught : ~uint64_t{0});
}

const char* refusal(const PreparedExec& p) {
    proc::SelfStatus st;
    ExecCaps e;
    return refusal(p, st, e);
}

void maybe_enter(const PreparedExec& p, char* const argv[], char* const envp[]) {
    proc::SelfStatus st;
    ExecCaps e;
    if (refusal(p, st, e)) return;
    Main main = find(base_name(p.argv[0]));
    // The credentials exec gives (refusal() made sure they are ours to set).
    Caps c;
    if (!get_caps(c) || !set_caps(c, e)) return;
    if (trace::verbose())
        trace::emit(cat("execve(", trace::quote(p.program_path), ", ", describe_argv(p.argv),
                        ", envp) (in process)"));
    ::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    std::string comm = comm_for(p.program.get());
    if (!comm.empty()) ::prctl(PR_SET_NAME, comm.c_str(), 0, 0, 0);
    rewrite_cmdline(argv);
    // What the old program had buffered and not written, exec loses.
    __fpurge(stdin);
    __fpurge(stdout);
    __fpurge(stderr);
    close_cloexec_fds();
    reset_signals(st.caught);
    // The previous program's state in lib/.
    trace::set_verbose(false);
    trace::set_dry_run(false);
    trace::set_program("kago");
    int argc = 0;
    while (argv[argc]) ++argc;
    environ = const_cast<char**>(envp);
    g_exec_forced = env::is_true(env::kExec);
    program_invocation_name = argv[0];
    program_invocation_short_name = const_cast<char*>(base_name(argv[0]).data());
    errno = 0;
    exit(main(argc, const_cast<char**>(argv)));
}

int multicall(const Program* programs, size_t n, int argc, char** argv) {
    g_programs = programs;
    g_count = n;
    g_exec_forced = env::is_true(env::kExec);
    std::string_view name = argc > 0 ? base_name(argv[0]) : std::string_view();
    if (Main m = find(name)) return m(argc, argv);
    if (name == "kago" && argc > 1) {
        if (Main m = find(base_name(argv[1]))) return m(argc - 1, argv + 1);
    }
    // Exec'd through a descriptor with an unusual argv[0]: the file's name.
    char buf[PATH_MAX];
    ssize_t len = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (len > 0) {
        std::string_view exe(buf, static_cast<size_t>(len));
        constexpr std::string_view deleted = " (deleted)";
        if (exe.size() >= deleted.size() && exe.substr(exe.size() - deleted.size()) == deleted)
            exe.remove_suffix(deleted.size());
        if (Main m = find(base_name(exe))) return m(argc, argv);
    }
    std::string msg = "kago: a multi-call binary of";
    for (size_t i = 0; i < n; ++i) msg += cat(i ? ", " : " ", programs[i].name);
    msg += cat("\nkago: run it by one of these names, or as 'kago PROGRAM [ARG...]'\n");
    (void)!::write(2, msg.data(), msg.size());
    return 127;
}

}  // namespace kago::handoff
