#include "net/netns.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "core/sys.hpp"
#include "core/trace.hpp"

namespace kago::net {

std::string netns_path(std::string_view s) {
    if (s.find('/') != std::string_view::npos) return std::string(s);
    return cat(kNetnsDir, "/", s);
}

Result<uint64_t> ns_inode(const char* path) {
    struct stat st;
    if (::stat(path, &st) != 0) return sys_error(cat("stat ", path));
    return uint64_t(st.st_ino);
}

Status bind_netns(int fd, const std::string& path) {
    auto slash = path.rfind('/');
    if (slash != std::string::npos && slash > 0) TRY(sys::mkdir_p(path.substr(0, slash), 0755));
    long r = trace::call([&] { return cat("open(", trace::quote(path), ", O_RDONLY|O_CREAT|O_EXCL, 0444)"); },
                         [&] {
                             int f = ::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
                             if (f >= 0) ::close(f);
                             return f;
                         });
    if (r < 0) return sys_error(cat("create ", path));
    std::string src = cat("/proc/self/fd/", fd);
    auto st = sys::mount(src.c_str(), path.c_str(), nullptr, MS_BIND, nullptr);
    if (!st) {
        int e = errno;
        ::unlink(path.c_str());
        errno = e;
        return st;
    }
    return {};
}

Status unbind_netns(const std::string& path) {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return {};
    auto st2 = sys::umount2(path.c_str(), MNT_DETACH);
    if (!st2 && errno != EINVAL && errno != ENOENT) return st2;
    long r = trace::call([&] { return cat("unlink(", trace::quote(path), ")"); },
                         [&] { return ::unlink(path.c_str()); });
    if (r != 0 && errno != ENOENT) return sys_error(cat("remove ", path));
    return {};
}

Status write_sysctl(const std::string& key, std::string_view value) {
    std::string path = cat("/proc/sys/", key);
    return sys::write_file(path.c_str(), value);
}

Result<std::string> read_sysctl(const std::string& key) {
    auto s = TRY(sys::read_file(cat("/proc/sys/", key).c_str()));
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

Result<UniqueFd> reserve_port(const Publish& p) {
    int family = p.host_ip ? p.host_ip->family : AF_INET;
    int type = p.proto == IPPROTO_TCP ? SOCK_STREAM : SOCK_DGRAM;
    UniqueFd fd(::socket(family, type | SOCK_CLOEXEC, 0));
    if (!fd) return sys_error(cat("--publish ", p.str(), ": socket"));
    sockaddr_storage ss{};
    socklen_t len;
    if (family == AF_INET) {
        auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
        sa->sin_family = AF_INET;
        sa->sin_port = htons(p.host_port);
        if (p.host_ip) memcpy(&sa->sin_addr, p.host_ip->bytes.data(), 4);
        len = sizeof *sa;
    } else {
        auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
        sa->sin6_family = AF_INET6;
        sa->sin6_port = htons(p.host_port);
        memcpy(&sa->sin6_addr, p.host_ip->bytes.data(), 16);
        len = sizeof *sa;
    }
    std::string shown = cat(p.host_ip ? p.host_ip->addr_str() : "0.0.0.0", ":", p.host_port, "/", p.proto_name());
    long r = trace::call([&] { return cat("bind(", fd.get(), ", ", shown, ")"); },
                         [&] { return ::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len); });
    if (r != 0) {
        if (errno == EADDRINUSE)
            return usage_error(cat("--publish '", p.str(), "': host port ", p.host_port, "/", p.proto_name(),
                                   " is in use"));
        if (errno == EADDRNOTAVAIL)
            return usage_error(cat("--publish '", p.str(), "': host address ", p.host_ip->addr_str(),
                                   " is not an address of this host"));
        return sys_error(cat("--publish ", p.str(), ": bind ", shown));
    }
    return fd;
}

}  // namespace kago::net
