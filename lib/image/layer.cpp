#include "image/layer.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <tuple>
#include <vector>

#include "core/fd.hpp"
#include "core/sys.hpp"
#include "image/decompress.hpp"
#include "image/digest.hpp"
#include "mount/root.hpp"

namespace kago::image {

namespace {

std::pair<std::string, std::string> split(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return {"", path};
    return {path.substr(0, slash), path.substr(slash + 1)};
}

using Archive = std::unique_ptr<struct archive, int (*)(struct archive*)>;

}  // namespace

Result<std::string> clean_path(std::string_view raw, std::string_view what) {
    if (raw.find('\0') != std::string_view::npos) return usage_error(cat(what, ": an entry name holds a NUL byte"));
    if (!raw.empty() && raw[0] == '/')
        return usage_error(cat(what, ": entry '", raw, "': an absolute path (a layer's entries are relative)"));
    std::string out;
    size_t i = 0;
    while (i <= raw.size()) {
        size_t j = raw.find('/', i);
        if (j == std::string_view::npos) j = raw.size();
        std::string_view part = raw.substr(i, j - i);
        if (part == "..") return usage_error(cat(what, ": entry '", raw, "': '..' would climb out of the layer"));
        if (!part.empty() && part != ".") {
            if (!out.empty()) out += '/';
            out += part;
        }
        i = j + 1;
    }
    return out;
}

Whiteout whiteout_kind(std::string_view base) {
    if (base == ".wh..wh..opq") return Whiteout::opaque;
    if (base.size() > 4 && base.substr(0, 4) == ".wh.") return Whiteout::file;
    return Whiteout::none;
}

bool symlink_climbs_out(std::string_view path, std::string_view target) {
    if (target.empty() || target[0] == '/') return false;
    // Depth of the link's directory, then walk the target's parts.
    long depth = static_cast<long>(std::count(path.begin(), path.end(), '/'));
    size_t i = 0;
    while (i <= target.size()) {
        size_t j = target.find('/', i);
        if (j == std::string_view::npos) j = target.size();
        std::string_view part = target.substr(i, j - i);
        if (part == "..") {
            if (--depth < 0) return true;
        } else if (!part.empty() && part != ".") {
            ++depth;
        }
        i = j + 1;
    }
    return false;
}

const char* archive_why(struct archive* a, const char* fallback) {
    const char* why = archive_error_string(a);
    return why && *why ? why : fallback;
}

bool is_overlay_xattr(std::string_view name) {
    return name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.");
}

bool layer_xattr(std::string_view name) {
    if (is_overlay_xattr(name)) return false;
    return name.starts_with("user.") || name == "security.capability";
}

Status remove_tree(int dirfd, const std::string& name) {
    if (::unlinkat(dirfd, name.c_str(), 0) == 0 || errno == ENOENT) return {};
    if (errno != EISDIR) return sys_error(cat("remove ", name));
    int fd = sys::open_beneath(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0 && errno == EACCES) {
        ::fchmodat(dirfd, name.c_str(), 0700, 0);
        fd = sys::open_beneath(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY);
    }
    if (fd < 0) return sys_error(cat("open ", name));
    ::fchmod(fd, 0700);
    DIR* d = ::fdopendir(fd);
    if (!d) {
        ::close(fd);
        return sys_error(cat("read ", name));
    }
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
    Status st;
    for (const auto& n : names)
        if (auto r = remove_tree(::dirfd(d), n); !r) {
            st = Error{r.error().err, cat(name, "/", r.error().what), ""};
            break;
        }
    ::closedir(d);
    if (!st) return st;
    if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) return sys_error(cat("remove ", name));
    return {};
}

// --- unpacking --------------------------------------------------------------

namespace {

// The tar reader's input: the plain stream, hashed for the diff_id as it
// goes by, in blocks of 128 KiB.
struct Feed {
    Decompressor* src = nullptr;
    Sha256 diff;
    std::vector<char> buf = std::vector<char>(1 << 17);
    std::optional<Error> failed;
};

la_ssize_t feed_read(struct archive* inner, void* ctx, const void** out) {
    auto* f = static_cast<Feed*>(ctx);
    auto n = f->src->read(f->buf.data(), f->buf.size());
    if (!n) {
        f->failed = n.error();
        archive_set_error(inner, EIO, "%s", f->failed->what.c_str());
        return -1;
    }
    f->diff.update(f->buf.data(), *n);
    *out = f->buf.data();
    return static_cast<la_ssize_t>(*n);
}

struct DirMeta {
    std::string path;
    uid_t uid;
    gid_t gid;
    mode_t mode;
    struct timespec mtime;
    std::vector<std::pair<std::string, std::string>> xattrs;
};

class Unpacker {
  public:
    Unpacker(int dest, const UnpackOptions& o, std::string_view what) : dest_(dest), o_(o), what_(what) {}
    Status entry(struct archive* a, struct archive_entry* e);
    Status finish();
    UnpackStats stats;

  private:
    Error bad(std::string_view path, std::string_view why) const {
        return usage_error(cat(what_, ": entry '", path, "': ", why));
    }
    Error failed(std::string_view path, std::string_view step) const {
        return sys_error(cat(what_, ": ", step, " ", path));
    }
    Result<UniqueFd> parent(const std::string& dir, const std::string& shown);
    // parent(), kept open for the entries that follow in the same
    // directory (a tar lists a directory's entries together). Borrowed:
    // valid until the next call. Anything clear() removes drops it.
    Result<int> parent_cached(const std::string& dir, const std::string& shown);
    Status clear(int pfd, const std::string& base, const std::string& path);
    // Create with `make`; when the name is taken (a later entry replaces an
    // earlier one, as tar does), clear it and create again. A fresh layer
    // directory pays one system call per entry instead of two.
    template <typename Make>
    Status create(int pfd, const std::string& base, const std::string& path, Make make);
    mode_t mode_of(mode_t m) {
        m &= 07777;
        if (!o_.setid && (m & 06000)) {
            m &= ~06000u;
            ++stats.setid_stripped;
        }
        return m;
    }
    std::vector<std::pair<std::string, std::string>> xattrs_of(struct archive_entry* e) {
        std::vector<std::pair<std::string, std::string>> out;
        archive_entry_xattr_reset(e);
        const char* name;
        const void* value;
        size_t size;
        while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
            if (!layer_xattr(name)) {
                ++stats.xattrs_dropped;
                continue;
            }
            out.emplace_back(name, std::string(static_cast<const char*>(value), size));
        }
        return out;
    }
    void set_xattrs(int fd, const std::vector<std::pair<std::string, std::string>>& xs) {
        for (const auto& [k, v] : xs)
            if (::fsetxattr(fd, k.c_str(), v.data(), v.size(), 0) != 0) ++stats.xattrs_dropped;
    }

    int dest_;
    UnpackOptions o_;
    std::string what_;
    std::vector<DirMeta> dirs_;
    std::string cached_dir_;
    UniqueFd cached_fd_;
    bool cache_valid_ = false;
    std::vector<char> buf_ = std::vector<char>(1 << 17);
};

// The directory `dir` below the layer root, made when missing (a tar may
// omit parents). A symlink on the way is refused: it came from an earlier
// entry, and writing through it is what an escape looks like.
Result<UniqueFd> Unpacker::parent(const std::string& dir, const std::string& shown) {
    if (dir.empty()) return UniqueFd(::fcntl(dest_, F_DUPFD_CLOEXEC, 3));
    int fd = sys::open_beneath(dest_, dir.c_str(), O_PATH | O_DIRECTORY);
    if (fd >= 0) return UniqueFd(fd);
    if (errno == ELOOP || errno == EXDEV) return bad(shown, cat("its directory ", dir, " goes through a symlink"));
    if (errno == ENOTDIR) return bad(shown, cat(dir, " is not a directory"));
    if (errno != ENOENT) return failed(dir, "open");
    UniqueFd cur(::fcntl(dest_, F_DUPFD_CLOEXEC, 3));
    std::string sofar;
    size_t i = 0;
    while (i <= dir.size()) {
        size_t j = dir.find('/', i);
        if (j == std::string::npos) j = dir.size();
        std::string part = dir.substr(i, j - i);
        sofar += (sofar.empty() ? "" : "/") + part;
        if (::mkdirat(cur.get(), part.c_str(), 0755) != 0 && errno != EEXIST) return failed(sofar, "mkdir");
        int next = sys::open_beneath(cur.get(), part.c_str(), O_PATH | O_DIRECTORY);
        if (next < 0) {
            if (errno == ELOOP || errno == EXDEV) return bad(shown, cat("its directory ", sofar, " goes through a symlink"));
            if (errno == ENOTDIR) return bad(shown, cat(sofar, " is not a directory"));
            return failed(sofar, "open");
        }
        cur.reset(next);
        i = j + 1;
    }
    return cur;
}

Result<int> Unpacker::parent_cached(const std::string& dir, const std::string& shown) {
    if (cache_valid_ && dir == cached_dir_) return cached_fd_.get();
    UniqueFd fd = TRY(parent(dir, shown));
    cached_fd_ = std::move(fd);
    cached_dir_ = dir;
    cache_valid_ = true;
    return cached_fd_.get();
}

// A later entry of the same name replaces an earlier one, as tar does.
Status Unpacker::clear(int pfd, const std::string& base, const std::string& path) {
    cache_valid_ = false;  // closed at the next lookup, not while in use
    if (::unlinkat(pfd, base.c_str(), 0) == 0 || errno == ENOENT) return {};
    if (errno == EISDIR && ::unlinkat(pfd, base.c_str(), AT_REMOVEDIR) == 0) return {};
    return failed(path, "replace");
}

template <typename Make>
Status Unpacker::create(int pfd, const std::string& base, const std::string& path, Make make) {
    if (make()) return {};
    if (errno != EEXIST) return {};  // the caller reports it, with its step
    TRY(clear(pfd, base, path));
    (void)make();
    return {};
}

Status Unpacker::entry(struct archive* a, struct archive_entry* e) {
    const char* raw_c = archive_entry_pathname(e);
    if (!raw_c) return usage_error(cat(what_, ": an entry has no name"));
    std::string raw = raw_c;
    std::string path = TRY(clean_path(raw, what_));
    mode_t type = archive_entry_filetype(e);
    const char* hardlink = archive_entry_hardlink(e);
    struct timespec times[2] = {{archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
                                {archive_entry_mtime(e), archive_entry_mtime_nsec(e)}};
    if (path.empty()) {  // the root: its metadata only
        if (type == AE_IFDIR)
            dirs_.push_back({"", static_cast<uid_t>(archive_entry_uid(e)), static_cast<gid_t>(archive_entry_gid(e)),
                             archive_entry_perm(e), times[0], xattrs_of(e)});
        return {};
    }
    std::string dir, base;
    std::tie(dir, base) = split(path);
    int pfd = TRY(parent_cached(dir, raw));
    ++stats.entries;

    switch (whiteout_kind(base)) {
    case Whiteout::opaque: {
        int fd = sys::open_beneath(pfd, ".", O_RDONLY | O_DIRECTORY);
        if (fd < 0) return failed(dir, "open");
        UniqueFd d(fd);
        if (::fsetxattr(d.get(), kOpaqueUser, "y", 1, 0) != 0) return failed(dir.empty() ? "/" : dir, "set user.overlay.opaque on");
        if (o_.trusted_opaque && ::fsetxattr(d.get(), kOpaqueTrusted, "y", 1, 0) != 0)
            return failed(dir.empty() ? "/" : dir, "set trusted.overlay.opaque on");
        ++stats.opaque;
        return {};
    }
    case Whiteout::file: {
        std::string name = base.substr(4);
        std::string shown = dir.empty() ? name : dir + "/" + name;
        struct stat st;
        // A whiteout hides the layers below; a file of this same layer stays.
        if (::fstatat(pfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return {};
        if (::mknodat(pfd, name.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0)
            return failed(shown, "make the whiteout (character device 0:0)");
        ++stats.whiteouts;
        return {};
    }
    case Whiteout::none:
        break;
    }

    uid_t uid = static_cast<uid_t>(archive_entry_uid(e));
    gid_t gid = static_cast<gid_t>(archive_entry_gid(e));
    auto chown_at = [&](const char* step) -> Status {
        if (o_.owners && ::fchownat(pfd, base.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
            return failed(path, step);
        return {};
    };

    if (hardlink) {
        std::string target = TRY(clean_path(hardlink, what_));
        if (target.empty()) return bad(raw, "a hard link to the layer's root");
        auto [tdir, tbase] = split(target);
        UniqueFd tfd = TRY(parent(tdir, raw));
        TRY(clear(pfd, base, path));
        if (::linkat(tfd.get(), tbase.c_str(), pfd, base.c_str(), 0) != 0)
            return sys_error(cat(what_, ": hard link ", path, " to ", target));
        return {};
    }
    switch (type) {
    case AE_IFDIR: {
        if (::mkdirat(pfd, base.c_str(), 0700) != 0) {
            struct stat st;
            if (errno != EEXIST || ::fstatat(pfd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
                return failed(path, "mkdir");
            if (!S_ISDIR(st.st_mode)) {
                TRY(clear(pfd, base, path));
                if (::mkdirat(pfd, base.c_str(), 0700) != 0) return failed(path, "mkdir");
            }
        }
        dirs_.push_back({path, uid, gid, archive_entry_perm(e), times[0], xattrs_of(e)});
        return {};
    }
    case AE_IFREG: {
        int fd = -1;
        TRY(create(pfd, base, path, [&] {
            fd = sys::open_beneath(pfd, base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW,
                                   0600);
            return fd >= 0;
        }));
        if (fd < 0) return failed(path, "create");
        UniqueFd f(fd);
        const void* block;
        size_t size;
        la_int64_t off, end = 0;
        int r;
        while ((r = archive_read_data_block(a, &block, &size, &off)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
            const char* p = static_cast<const char*>(block);
            while (size > 0) {
                ssize_t w = ::pwrite(f.get(), p, size, off);
                if (w < 0) {
                    if (errno == EINTR) continue;
                    return failed(path, "write");
                }
                p += w;
                off += w;
                size -= static_cast<size_t>(w);
                stats.bytes += static_cast<uint64_t>(w);
            }
            end = std::max(end, off);
        }
        if (r != ARCHIVE_EOF) return usage_error(cat(what_, ": ", path, ": ", archive_why(a)));
        // A sparse file's hole at the end: no block was written there.
        if (end != archive_entry_size(e) && ::ftruncate(f.get(), archive_entry_size(e)) != 0)
            return failed(path, "truncate");
        if (o_.owners && ::fchown(f.get(), uid, gid) != 0) return failed(path, "chown");
        set_xattrs(f.get(), xattrs_of(e));
        // After chown: chown clears the setuid bits and the capability.
        if (::fchmod(f.get(), mode_of(archive_entry_perm(e))) != 0) return failed(path, "chmod");
        ::futimens(f.get(), times);
        return {};
    }
    case AE_IFLNK: {
        const char* target = archive_entry_symlink(e);
        if (!target) return bad(raw, "a symlink without a target");
        if (symlink_climbs_out(path, target)) return bad(raw, cat("the symlink's target '", target, "' climbs out of the layer"));
        bool made = false;
        TRY(create(pfd, base, path,
                   [&] { return made = ::symlinkat(target, pfd, base.c_str()) == 0; }));
        if (!made) return failed(path, "symlink");
        TRY(chown_at("chown"));
        ::utimensat(pfd, base.c_str(), times, AT_SYMLINK_NOFOLLOW);
        return {};
    }
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO: {
        if (type != AE_IFIFO && !o_.devices) {
            ++stats.devices_skipped;
            return {};
        }
        mode_t kind = type == AE_IFCHR ? S_IFCHR : type == AE_IFBLK ? S_IFBLK : S_IFIFO;
        bool made = false;
        TRY(create(pfd, base, path, [&] {
            return made = ::mknodat(pfd, base.c_str(), kind | 0600, archive_entry_rdev(e)) == 0;
        }));
        if (!made) return failed(path, "mknod");
        TRY(chown_at("chown"));
        if (::fchmodat(pfd, base.c_str(), mode_of(archive_entry_perm(e)), 0) != 0)
            return failed(path, "chmod");
        ::utimensat(pfd, base.c_str(), times, AT_SYMLINK_NOFOLLOW);
        return {};
    }
    default:
        return bad(raw, "a socket or an unknown entry type");
    }
}

// Directories last, in reverse order, so that a read-only directory does
// not stop the entries below it: owner, xattrs, then mode and time.
Status Unpacker::finish() {
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
        int fd = it->path.empty()
                     ? ::fcntl(dest_, F_DUPFD_CLOEXEC, 3)
                     : sys::open_beneath(dest_, it->path.c_str(), O_RDONLY | O_DIRECTORY);
        if (fd < 0) return failed(it->path, "open");
        UniqueFd d(fd);
        if (o_.owners && ::fchown(d.get(), it->uid, it->gid) != 0) return failed(it->path, "chown");
        set_xattrs(d.get(), it->xattrs);
        if (::fchmod(d.get(), mode_of(it->mode)) != 0) return failed(it->path, "chmod");
        struct timespec times[2] = {it->mtime, it->mtime};
        ::futimens(d.get(), times);
    }
    return {};
}

}  // namespace

namespace {

class FdSource final : public ByteSource {
  public:
    explicit FdSource(int fd) : fd_(fd) {}
    ssize_t read(void* buf, size_t n) override {
        for (;;) {
            ssize_t r = ::read(fd_, buf, n);
            if (r >= 0 || errno != EINTR) return r;
        }
    }

  private:
    int fd_;
};

}  // namespace

Result<UnpackStats> unpack_layer(int blob_fd, int dest_fd, const UnpackOptions& o, std::string_view what) {
    FdSource src(blob_fd);
    return unpack_layer(src, dest_fd, o, what);
}

Result<UnpackStats> unpack_layer(ByteSource& src, int dest_fd, const UnpackOptions& o,
                                 std::string_view what) {
    auto plain = TRY(Decompressor::open(src, std::string(what)));
    Feed feed;
    feed.src = plain.get();
    Archive inner(archive_read_new(), archive_read_free);
    archive_read_support_format_tar(inner.get());
    if (archive_read_open(inner.get(), &feed, nullptr, feed_read, nullptr) != ARCHIVE_OK) {
        if (feed.failed) return std::move(*feed.failed);
        return usage_error(cat(what, ": not a tar archive: ", archive_why(inner.get())));
    }
    Unpacker u(dest_fd, o, what);
    for (;;) {
        struct archive_entry* e;
        int r = archive_read_next_header(inner.get(), &e);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) {
            if (feed.failed) return std::move(*feed.failed);
            return usage_error(cat(what, ": ", archive_why(inner.get(), "unreadable tar")));
        }
        // A failed read of the stream is the stream's error, not the entry's.
        if (Status st = u.entry(inner.get(), e); !st)
            return feed.failed ? std::move(*feed.failed) : std::move(st).error();
    }
    if (feed.failed) return std::move(*feed.failed);
    TRY(u.finish());
    // The rest of the stream (the tar's padding) counts for the diff_id,
    // and is read to its end: a gzip member's CRC-32 is checked there.
    for (;;) {
        size_t n = TRY(plain->read(feed.buf.data(), feed.buf.size()));
        if (n == 0) break;
        feed.diff.update(feed.buf.data(), n);
    }
    u.stats.diff_id = feed.diff.finish();
    u.stats.compression = compression_name(plain->compression());
    return u.stats;
}

// --- writing ----------------------------------------------------------------

namespace {

struct Sink {
    int fd;
    Sha256 hash;
    uint64_t size = 0;
    int err = 0;
};

la_ssize_t sink_write(struct archive*, void* ctx, const void* buf, size_t n) {
    auto* s = static_cast<Sink*>(ctx);
    if (sys::write_all(s->fd, buf, n) != 0) {
        s->err = errno;
        return -1;
    }
    s->hash.update(buf, n);
    s->size += n;
    return static_cast<la_ssize_t>(n);
}

std::vector<std::pair<std::string, std::string>> read_xattrs(int dirfd, const std::string& name) {
    std::vector<std::pair<std::string, std::string>> out;
    std::string path = cat("/proc/self/fd/", dirfd, "/", name);
    ssize_t n = ::llistxattr(path.c_str(), nullptr, 0);
    if (n <= 0) return out;
    std::string names(static_cast<size_t>(n), '\0');
    n = ::llistxattr(path.c_str(), names.data(), names.size());
    if (n <= 0) return out;
    for (size_t i = 0; i < static_cast<size_t>(n);) {
        std::string k = names.c_str() + i;
        i += k.size() + 1;
        ssize_t m = ::lgetxattr(path.c_str(), k.c_str(), nullptr, 0);
        if (m < 0) continue;
        std::string v(static_cast<size_t>(m), '\0');
        m = ::lgetxattr(path.c_str(), k.c_str(), v.data(), v.size());
        if (m < 0) continue;
        v.resize(static_cast<size_t>(m));
        out.emplace_back(k, v);
    }
    return out;
}

class Writer {
  public:
    Writer(struct archive* a, const WriteOptions& o, std::string_view what) : a_(a), o_(o), what_(what) {}
    Status walk(int dirfd, const std::string& rel);
    WriteStats stats;

  private:
    Status put(struct archive_entry* e, const std::string& path) {
        if (archive_write_header(a_, e) < ARCHIVE_WARN)
            return usage_error(cat(what_, ": ", path, ": ", archive_why(a_)));
        ++stats.entries;
        return {};
    }
    Status marker(const std::string& path) {
        std::unique_ptr<struct archive_entry, void (*)(struct archive_entry*)> e(archive_entry_new(), archive_entry_free);
        archive_entry_set_pathname(e.get(), path.c_str());
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_perm(e.get(), 0600);
        archive_entry_set_size(e.get(), 0);
        ++stats.whiteouts;
        return put(e.get(), path);
    }
    struct archive* a_;
    WriteOptions o_;
    std::string what_;
    std::map<std::pair<dev_t, ino_t>, std::string> links_;
};

Status Writer::walk(int dirfd, const std::string& rel) {
    int dup = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
    DIR* d = dup >= 0 ? ::fdopendir(dup) : nullptr;
    if (!d) {
        if (dup >= 0) ::close(dup);
        return sys_error(cat(what_, ": read ", rel.empty() ? "." : rel));
    }
    std::vector<std::string> names;
    while (struct dirent* de = ::readdir(d))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) names.emplace_back(de->d_name);
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
        std::string path = rel.empty() ? name : rel + "/" + name;
        struct stat st;
        if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return sys_error(cat(what_, ": stat ", path));
        if (o_.whiteouts && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
            TRY(marker(rel.empty() ? ".wh." + name : rel + "/.wh." + name));
            continue;
        }
        std::unique_ptr<struct archive_entry, void (*)(struct archive_entry*)> e(archive_entry_new(), archive_entry_free);
        archive_entry_set_pathname(e.get(), path.c_str());
        archive_entry_copy_stat(e.get(), &st);
        archive_entry_set_ino64(e.get(), 0);
        archive_entry_set_dev(e.get(), 0);
        if (o_.root_uid && st.st_uid == o_.root_uid) archive_entry_set_uid(e.get(), 0);
        if (o_.root_gid && st.st_gid == o_.root_gid) archive_entry_set_gid(e.get(), 0);
        bool opaque = false;
        for (auto& [k, v] : read_xattrs(dirfd, name)) {
            if (o_.whiteouts && S_ISDIR(st.st_mode) && (k == kOpaqueTrusted || k == kOpaqueUser) && v == "y")
                opaque = true;
            if (layer_xattr(k)) archive_entry_xattr_add_entry(e.get(), k.c_str(), v.data(), v.size());
        }
        if (S_ISLNK(st.st_mode)) {
            std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
            ssize_t n = ::readlinkat(dirfd, name.c_str(), target.data(), target.size());
            if (n < 0) return sys_error(cat(what_, ": readlink ", path));
            target.resize(static_cast<size_t>(n));
            archive_entry_set_symlink(e.get(), target.c_str());
            archive_entry_set_size(e.get(), 0);
        } else if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
            auto [it, fresh] = links_.emplace(std::pair{st.st_dev, st.st_ino}, path);
            if (!fresh) {
                archive_entry_set_hardlink(e.get(), it->second.c_str());
                archive_entry_set_size(e.get(), 0);
                TRY(put(e.get(), path));
                continue;
            }
        } else if (!S_ISREG(st.st_mode)) {
            archive_entry_set_size(e.get(), 0);
        }
        TRY(put(e.get(), path));
        if (S_ISREG(st.st_mode) && st.st_size > 0) {
            int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) return sys_error(cat(what_, ": open ", path));
            UniqueFd f(fd);
            std::vector<char> buf(1 << 17);
            for (;;) {
                ssize_t n = ::read(f.get(), buf.data(), buf.size());
                if (n < 0) {
                    if (errno == EINTR) continue;
                    return sys_error(cat(what_, ": read ", path));
                }
                if (n == 0) break;
                if (archive_write_data(a_, buf.data(), static_cast<size_t>(n)) < 0)
                    return usage_error(cat(what_, ": ", path, ": ", archive_why(a_)));
            }
        }
        if (S_ISDIR(st.st_mode)) {
            if (opaque) TRY(marker(path + "/.wh..wh..opq"));
            int sub = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) return sys_error(cat(what_, ": open ", path));
            UniqueFd s(sub);
            TRY(walk(s.get(), path));
        }
    }
    return {};
}

}  // namespace

Result<WriteStats> write_layer(int src_fd, int out_fd, const WriteOptions& o, std::string_view what) {
    // The sink outlives the archive: freeing an archive that was not
    // closed (an error below) still writes its last blocks through it.
    Sink sink{out_fd, {}};
    Archive a(archive_write_new(), archive_write_free);
    archive_write_set_format_pax_restricted(a.get());
    archive_write_add_filter_none(a.get());
    archive_write_set_bytes_in_last_block(a.get(), 1);
    if (archive_write_open(a.get(), &sink, nullptr, sink_write, nullptr) != ARCHIVE_OK)
        return usage_error(cat(what, ": ", archive_why(a.get())));
    Writer w(a.get(), o, what);
    TRY(w.walk(src_fd, ""));
    if (archive_write_close(a.get()) != ARCHIVE_OK) {
        if (sink.err) return Error{sink.err, cat(what, ": write"), ""};
        return usage_error(cat(what, ": ", archive_why(a.get())));
    }
    w.stats.digest = sink.hash.finish();
    w.stats.size = sink.size;
    return w.stats;
}

namespace {

bool rootless() {
    return ::geteuid() != 0 || mount::in_user_namespace();
}

// Root of a user namespace whose uid_map holds more than one id.
bool mapped_range() {
    if (::geteuid() != 0 || !mount::in_user_namespace()) return false;
    auto m = sys::read_file("/proc/self/uid_map");
    if (!m) return false;
    uint64_t ids = 0;
    size_t i = 0;
    while (i < m->size()) {
        size_t e = m->find('\n', i);
        if (e == std::string::npos) e = m->size();
        unsigned long a = 0, b = 0, n = 0;
        if (sscanf(m->substr(i, e - i).c_str(), "%lu %lu %lu", &a, &b, &n) == 3) ids += n;
        i = e + 1;
    }
    return ids > 1;
}

}  // namespace

UnpackOptions caller_unpack_options() {
    UnpackOptions u;
    u.owners = u.devices = u.setid = u.trusted_opaque = !rootless();
    if (mapped_range()) u.owners = u.setid = true;
    return u;
}

WriteOptions caller_write_options() {
    WriteOptions w;
    if (rootless() && !mapped_range()) w.root_uid = ::getuid(), w.root_gid = ::getgid();
    return w;
}

void add_stats(UnpackStats& t, const UnpackStats& s) {
    t.entries += s.entries;
    t.bytes += s.bytes;
    t.whiteouts += s.whiteouts;
    t.opaque += s.opaque;
    t.devices_skipped += s.devices_skipped;
    t.setid_stripped += s.setid_stripped;
    t.xattrs_dropped += s.xattrs_dropped;
}

}  // namespace kago::image
