#include "core/exec.hpp"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "core/env.hpp"
#include "core/proc.hpp"
#include "core/trace.hpp"

namespace kago {

namespace {

// A sealed copy is named after the host path it was copied from, so that
// /proc/self/exe reads "/memfd:/usr/local/bin/cap-drop (deleted)".
constexpr std::string_view kMemfdPrefix = "/memfd:";
constexpr std::string_view kDeleted = " (deleted)";
constexpr size_t kMemfdNameMax = 249;  // memfd_create(2)

Result<std::string> self_exe() {
    char buf[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n < 0) return sys_error("read link /proc/self/exe");
    return std::string(buf, static_cast<size_t>(n));
}

bool is_sealed_name(std::string_view exe) {
    return exe.substr(0, kMemfdPrefix.size()) == kMemfdPrefix;
}

// The end of the last PT_LOAD segment in the file: everything exec maps.
// 0 when the file is not a 64-bit ELF of ours (then all of it is copied).
off_t loaded_size(int fd) {
    Elf64_Ehdr eh;
    if (::pread(fd, &eh, sizeof eh, 0) != static_cast<ssize_t>(sizeof eh)) return 0;
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 64)
        return 0;
    Elf64_Phdr ph[64];
    auto want = static_cast<ssize_t>(sizeof(Elf64_Phdr) * eh.e_phnum);
    if (::pread(fd, ph, static_cast<size_t>(want), static_cast<off_t>(eh.e_phoff)) != want)
        return 0;
    Elf64_Off end = eh.e_phoff + static_cast<Elf64_Off>(want);  // the headers themselves
    for (int i = 0; i < eh.e_phnum; ++i)
        if (ph[i].p_type == PT_LOAD) end = std::max(end, ph[i].p_offset + ph[i].p_filesz);
    return static_cast<off_t>(end);
}

}  // namespace

Result<std::string> self_dir() {
    std::string p = TRY(self_exe());
    if (is_sealed_name(p)) {
        p.erase(0, kMemfdPrefix.size());
        if (p.size() >= kDeleted.size() &&
            p.compare(p.size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0)
            p.erase(p.size() - kDeleted.size());
    }
    auto slash = p.rfind('/');
    if (slash == std::string::npos) return std::string("/");
    return slash == 0 ? std::string("/") : p.substr(0, slash);
}

bool running_sealed() {
    auto exe = self_exe();
    return exe && is_sealed_name(*exe);
}

Status seal_program(PreparedExec& p) {
    if (!p.program.valid() || p.sealed) return {};
    const std::string what = cat("a sealed copy of ", p.program_path);
    std::string name = p.program_path.size() <= kMemfdNameMax ? p.program_path : p.argv[0];
    unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
#ifdef MFD_EXEC
    flags |= MFD_EXEC;
#endif
    if (trace::dry_run()) {
        trace::emit(cat("memfd_create(", trace::quote(name),
                        ", MFD_CLOEXEC|MFD_ALLOW_SEALING|MFD_EXEC)"
                        " + sendfile + F_ADD_SEALS (dry run)"));
        p.sealed = true;
        return {};
    }
    UniqueFd src(::open(cat("/proc/self/fd/", p.program.get()).c_str(), O_RDONLY | O_CLOEXEC));
    if (!src.valid()) return sys_error(cat("open ", p.program_path));
    off_t size = loaded_size(src.get());
    if (size == 0) {
        struct stat st;
        if (::fstat(src.get(), &st) != 0) return sys_error(cat("stat ", p.program_path));
        size = st.st_size;
    }
    UniqueFd mem(static_cast<int>(::syscall(SYS_memfd_create, name.c_str(), flags)));
#ifdef MFD_EXEC
    if (!mem.valid() && errno == EINVAL)  // a kernel before 6.3 knows no MFD_EXEC
        mem.reset(static_cast<int>(::syscall(SYS_memfd_create, name.c_str(), flags & ~MFD_EXEC)));
#endif
    if (!mem.valid()) return sys_error(cat("memfd_create for ", what));
    for (off_t off = 0; off < size;) {
        ssize_t n = ::sendfile(mem.get(), src.get(), &off, static_cast<size_t>(size - off));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = EIO;
            return sys_error(cat("copy ", p.program_path, " into ", what));
        }
    }
    int seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
    if (::fcntl(mem.get(), F_ADD_SEALS, seals) != 0) return sys_error(cat("seal ", what));
    if (trace::verbose())
        trace::emit(cat(
            "memfd_create(", trace::quote(name), ") + sendfile(", size,
            " bytes) + fcntl(F_ADD_SEALS, F_SEAL_SEAL|F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE) = ",
            mem.get()));
    p.program = std::move(mem);
    p.sealed = true;
    return {};
}

Result<PreparedExec> prepare_exec(std::vector<std::string> argv) {
    PreparedExec p;
    p.argv = std::move(argv);
    if (p.argv.empty()) p.argv = default_command();
    const std::string& name = p.argv[0];
    p.kago = env::is_kago_program(name.substr(name.rfind('/') + 1));
    if (p.kago && name.find('/') != std::string::npos) {
        // A kago program given by its host path: the same rule, that file.
        int fd = ::open(name.c_str(), O_PATH | O_CLOEXEC);
        if (fd >= 0) {
            p.program.reset(fd);
            p.program_path = name;
        }
    } else if (p.kago) {
        auto dir = self_dir();
        if (dir) {
            std::string path = *dir + "/" + name;
            int fd = ::open(path.c_str(), O_PATH | O_CLOEXEC);
            if (fd >= 0) {
                p.program.reset(fd);
                p.program_path = path;
            }
        }
    }
    if (!p.kago || !running_sealed()) return p;
    // A sealed chain stays sealed: a kago program not found beside us is
    // looked up in PATH here rather than by execvp(), so that it too runs
    // from a copy.
    if (!p.program.valid()) {
        std::string_view path = env::get("PATH");
        for (size_t i = 0; !p.program.valid() && i <= path.size();) {
            size_t end = std::min(path.find(':', i), path.size());
            std::string candidate = cat(end > i ? path.substr(i, end - i) : ".", "/", name);
            if (::access(candidate.c_str(), X_OK) == 0) {
                int fd = ::open(candidate.c_str(), O_PATH | O_CLOEXEC);
                if (fd >= 0) {
                    p.program.reset(fd);
                    p.program_path = candidate;
                }
            }
            i = end + 1;
        }
    }
    TRY(seal_program(p));
    return p;
}

std::string describe_argv(const std::vector<std::string>& argv) {
    std::string s = "[";
    for (size_t i = 0; i < argv.size(); ++i) {
        if (i) s += ", ";
        s += trace::quote(argv[i]);
    }
    return s + "]";
}

std::string shell_word(std::string_view w) {
    bool plain = !w.empty();
    for (char c : w)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || (c && std::strchr("@%+=:,./-_", c)))) plain = false;
    if (plain) return std::string(w);
    std::string s = "'";
    for (char c : w) s += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return s + "'";
}

std::string shell_line(const std::vector<std::string>& argv) {
    std::string s;
    for (const auto& a : argv) s += cat(s.empty() ? "" : " ", shell_word(a));
    return s;
}

child::Exec exec_args(const PreparedExec& p) {
    child::Exec e(p.argv, p.program.valid() ? p.program.get() : -1);
    e.kago = &p;
    return e;
}

Error exec_prepared(const PreparedExec& p) {
    child::Exec e = exec_args(p);
    child::enter_in_process(e);  // returns when this must be an exec
    const std::string& shown = p.program.valid() ? p.program_path : p.argv[0];
    if (trace::verbose())
        trace::emit(cat("execve(", trace::quote(shown), ", ", describe_argv(p.argv), ", envp)"));
    errno = child::exec(e);
    int err = errno;
    if (trace::verbose())
        trace::emit(cat("execve(", trace::quote(shown), ", ...)", trace::result_suffix(-1, err)));
    errno = err;
    return sys_error(p.argv[0]);
}

std::vector<std::string> default_command() {
    // An image's Entrypoint and Cmd (image-layers), when they are set.
    if (auto image = env::string_list(env::get(env::kImageCmd)); image && !image->empty()) return *image;
    const char* sh = ::getenv("SHELL");
    return {sh && *sh ? sh : "/bin/sh"};
}

bool runs_supervisor(pid_t pid, const PreparedExec& e) {
    if (!e.kago || e.argv.empty()) return false;
    std::string name = e.argv[0].substr(e.argv[0].rfind('/') + 1);
    if (name != "cg-limit" && name != "net-setup" && name != "unshare-run" && name != "pack-selfexec") return false;
    if (e.program.valid()) {
        struct stat want, have;
        if (::fstat(e.program.get(), &want) != 0 || ::stat(cat("/proc/", pid, "/exe").c_str(), &have) != 0)
            return false;
        return want.st_dev == have.st_dev && want.st_ino == have.st_ino;
    }
    auto st = proc::read_stat(pid);
    return st && st->comm == name;
}

}  // namespace kago
