// libFuzzer target: image-layers' layer reader (lib/image/layer.cpp) on
// arbitrary bytes (make fuzz). The first byte picks:
//   u  unpack_layer() of the rest (a tar, plain, gzip or zstd), then
//      remove_tree() of what it made
//   p  clean_path() of the rest
//   s  symlink_climbs_out(PATH, TARGET) of "PATH\nTARGET"
//   w  whiteout_kind() and layer_xattr() of the rest
//
// Hermetic: the layer is unpacked on a tmpfs that is mounted nowhere
// (fsopen + fsmount, in a user namespace of its own when not root), so that
// nothing is written to the host and all of it goes when the process does,
// crash or not. Without the new mount API it refuses to run rather than
// write to a host directory. Properties checked after each unpack: nothing
// but the layer directory changed beside it (a canary file, its link count
// and content), and what was made is what the reader promises: no symlink
// whose relative target climbs above the layer, no device but the 0:0
// whiteout, no setuid or setgid bit, no overlay xattr but the opaque ones
// it sets itself.
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz.hpp"
#include "image/layer.hpp"

using namespace kago;
using namespace kago::image;

namespace {

#ifndef FSCONFIG_CMD_CREATE
#define FSCONFIG_SET_STRING 1
#define FSCONFIG_CMD_CREATE 6
#endif

int g_root = -1;  // the detached tmpfs
int g_blob = -1;  // a memfd holding the input

void write_map(const char* file, const std::string& line) {
    int fd = ::open(file, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return;
    (void)!::write(fd, line.data(), line.size());
    ::close(fd);
}

int detached_tmpfs() {
    int fs = static_cast<int>(::syscall(SYS_fsopen, "tmpfs", 1 /* FSOPEN_CLOEXEC */));
    if (fs < 0) return -1;
    ::syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "size", "256m", 0);
    int m = -1;
    if (::syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) == 0)
        m = static_cast<int>(::syscall(SYS_fsmount, fs, 1 /* FSMOUNT_CLOEXEC */, 0));
    ::close(fs);
    if (m < 0) return -1;
    // fsmount gives an O_PATH descriptor: one that reads the directory keeps
    // the mount as well.
    int d = ::openat(m, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ::close(m);
    return d;
}

// A symlink's relative target, walked from the link's depth, goes above 0.
bool climbs(long depth, std::string_view target) {
    if (target.empty() || target[0] == '/') return false;
    for (auto part : fuzz::pieces(target, '/')) {
        if (part == "..") {
            if (--depth < 0) return true;
        } else if (!part.empty() && part != ".") {
            ++depth;
        }
    }
    return false;
}

void check_tree(int dirfd, long depth) {
    int dup = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
    DIR* d = ::fdopendir(dup);
    FUZZ_CHECK(d != nullptr);
    ::rewinddir(d);
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            names.emplace_back(e->d_name);
    ::closedir(d);
    for (const auto& n : names) {
        struct stat st;
        FUZZ_CHECK(::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0);
        FUZZ_CHECK(!(st.st_mode & (S_ISUID | S_ISGID)) || S_ISDIR(st.st_mode));
        FUZZ_CHECK(!S_ISBLK(st.st_mode));
        if (S_ISCHR(st.st_mode)) FUZZ_CHECK(st.st_rdev == makedev(0, 0));
        if (S_ISLNK(st.st_mode)) {
            char t[4097];
            ssize_t k = ::readlinkat(dirfd, n.c_str(), t, sizeof t - 1);
            FUZZ_CHECK(k >= 0);
            FUZZ_CHECK(!climbs(depth, std::string_view(t, static_cast<size_t>(k))));
            continue;
        }
        int fd = ::openat(dirfd, n.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) continue;  // a 0000 file (root may open it; others not)
        char names_buf[4096];
        ssize_t k = ::flistxattr(fd, names_buf, sizeof names_buf);
        for (ssize_t i = 0; i < k; i += static_cast<ssize_t>(strlen(names_buf + i)) + 1) {
            std::string_view x(names_buf + i);
            if (is_overlay_xattr(x)) FUZZ_CHECK(S_ISDIR(st.st_mode) && x.ends_with(".opaque"));
        }
        if (S_ISDIR(st.st_mode)) check_tree(fd, depth + 1);
        ::close(fd);
    }
}

void unpack(std::string_view bytes) {
    FUZZ_CHECK(::ftruncate(g_blob, 0) == 0);
    FUZZ_CHECK(::pwrite(g_blob, bytes.data(), bytes.size(), 0) ==
               static_cast<ssize_t>(bytes.size()));
    FUZZ_CHECK(::lseek(g_blob, 0, SEEK_SET) == 0);
    FUZZ_CHECK(::mkdirat(g_root, "layer", 0755) == 0);
    int dest = ::openat(g_root, "layer", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    FUZZ_CHECK(dest >= 0);
    auto r = unpack_layer(g_blob, dest, UnpackOptions{}, "fuzz");
    if (r)
        FUZZ_CHECK(r->diff_id.starts_with("sha256:") && r->diff_id.size() == 71);
    else
        FUZZ_CHECK(!r.error().message().empty());
    check_tree(dest, 0);
    ::close(dest);
    // Beside the layer, nothing changed.
    struct stat st;
    FUZZ_CHECK(::fstatat(g_root, "canary", &st, AT_SYMLINK_NOFOLLOW) == 0);
    FUZZ_CHECK(S_ISREG(st.st_mode) && st.st_nlink == 1 && st.st_size == 6);
    char buf[8] = {};
    int c = ::openat(g_root, "canary", O_RDONLY | O_CLOEXEC);
    FUZZ_CHECK(c >= 0 && ::read(c, buf, sizeof buf) == 6 && memcmp(buf, "canary", 6) == 0);
    ::close(c);
    FUZZ_CHECK(remove_tree(g_root, "layer").ok());
    DIR* d = ::fdopendir(::fcntl(g_root, F_DUPFD_CLOEXEC, 3));
    FUZZ_CHECK(d != nullptr);
    ::rewinddir(d);  // a dup shares the offset the last call left
    int count = 0;
    while (struct dirent* e = ::readdir(d))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            FUZZ_CHECK(strcmp(e->d_name, "canary") == 0);
            ++count;
        }
    ::closedir(d);
    FUZZ_CHECK(count == 1);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    // Before libFuzzer starts a thread: a user namespace needs a single thread.
    uid_t uid = ::geteuid();
    gid_t gid = ::getegid();
    g_root = detached_tmpfs();
    if (g_root < 0 && ::unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0) {
        write_map("/proc/self/setgroups", "deny");
        write_map("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1");
        write_map("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1");
        g_root = detached_tmpfs();
    }
    if (g_root < 0) {
        fprintf(stderr,
                "image-layer: no tmpfs of its own (fsopen: %s); this target writes nowhere else\n",
                strerror(errno));
        exit(1);
    }
    int c = ::openat(g_root, "canary", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (c < 0 || ::write(c, "canary", 6) != 6) abort();
    ::close(c);
    g_blob = ::memfd_create("layer", MFD_CLOEXEC);
    if (g_blob < 0) abort();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto in = fuzz::choose(data, size, "upsw");
    switch (in.kind) {
        case 0: unpack(in.text); break;
        case 1: {
            auto r = clean_path(in.text, "fuzz");
            if (!r) break;
            const std::string& p = *r;
            FUZZ_CHECK(p.empty() || (p[0] != '/' && p.back() != '/'));
            for (auto part : fuzz::pieces(p, '/'))
                FUZZ_CHECK(p.empty() || (!part.empty() && part != "." && part != ".."));
            FUZZ_CHECK(fuzz::gives(clean_path(p, "fuzz"), p));
            break;
        }
        case 2: {
            auto nl = in.text.find('\n');
            std::string_view path = in.text.substr(0, nl);
            std::string_view target = nl == std::string_view::npos ? "" : in.text.substr(nl + 1);
            auto clean = clean_path(path, "fuzz");
            if (!clean) break;
            long depth = static_cast<long>(std::count(clean->begin(), clean->end(), '/'));
            FUZZ_CHECK(symlink_climbs_out(*clean, target) == climbs(depth, target));
            break;
        }
        case 3: {
            auto k = whiteout_kind(in.text);
            if (k == Whiteout::opaque) FUZZ_CHECK(in.text == ".wh..wh..opq");
            if (k == Whiteout::file) FUZZ_CHECK(in.text.starts_with(".wh.") && in.text.size() > 4);
            if (!in.text.starts_with(".wh.")) FUZZ_CHECK(k == Whiteout::none);
            if (is_overlay_xattr(in.text)) FUZZ_CHECK(!layer_xattr(in.text));
            break;
        }
    }
    return 0;
}
