#include "core/exec.hpp"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/env.hpp"
#include "core/trace.hpp"

namespace kago {

int exit_code_for_exec_error(int err) {
    return (err == ENOENT || err == ENOTDIR || err == ENAMETOOLONG || err == ELOOP) ? 127 : 126;
}

Result<std::string> self_dir() {
    char buf[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n < 0) return sys_error("read link /proc/self/exe");
    std::string p(buf, static_cast<size_t>(n));
    auto slash = p.rfind('/');
    if (slash == std::string::npos) return std::string("/");
    return slash == 0 ? std::string("/") : p.substr(0, slash);
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

Error exec_prepared(const PreparedExec& p) {
    std::vector<char*> args;
    args.reserve(p.argv.size() + 1);
    for (const auto& a : p.argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const std::string& shown = p.program.valid() ? p.program_path : p.argv[0];
    if (trace::verbose())
        trace::emit(cat("execve(", trace::quote(shown), ", ", describe_argv(p.argv), ", envp)"));
    if (p.program.valid()) {
        ::syscall(SYS_execveat, p.program.get(), "", args.data(), environ, AT_EMPTY_PATH);
    } else {
        ::execvp(args[0], args.data());
    }
    int e = errno;
    if (trace::verbose()) trace::emit(cat("execve(", trace::quote(shown), ", ...)", trace::result_suffix(-1, e)));
    errno = e;
    return sys_error(p.argv[0]);
}

std::vector<std::string> default_command() {
    const char* sh = ::getenv("SHELL");
    return {sh && *sh ? sh : "/bin/sh"};
}

}  // namespace kago
