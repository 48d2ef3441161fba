#include "pack/cache.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/sys.hpp"
#include "core/trace.hpp"

namespace kago::pack {
namespace {

Status mkdir_parents(const std::string& path) {
    std::string cur;
    size_t i = 1;
    while (i <= path.size()) {
        size_t j = path.find('/', i);
        if (j == std::string::npos) j = path.size();
        cur = path.substr(0, j);
        i = j + 1;
        if (cur.empty()) continue;
        if (::mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) return sys_error(cat("create ", cur));
    }
    return {};
}

Result<std::string> check_base(int fd) {
    struct stat st;
    if (::fstat(fd, &st) != 0) return sys_error("stat");
    if (st.st_uid != ::geteuid()) return std::string("owned by another user");
    if (st.st_mode & 022) return std::string("writable by others");
    if (::faccessat(fd, ".", W_OK | X_OK, AT_EACCESS) != 0) return std::string("not writable");
    struct statvfs v;
    if (::fstatvfs(fd, &v) == 0 && (v.f_flag & ST_NOEXEC)) return std::string("mounted noexec");
    return std::string();
}

bool owned_private(int dirfd, const char* name, bool want_dir) {
    struct stat st;
    if (::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return false;
    if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) return false;
    return st.st_uid == ::geteuid() && !(st.st_mode & 022);
}

Status write_at(int dirfd, const char* name, std::span<const uint8_t> data) {
    UniqueFd fd(::openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) return sys_error(cat("create ", name));
    return sys::write_all(fd.get(), data.data(), data.size(), name);
}

Result<std::vector<uint8_t>> read_at(int dirfd, const char* name) {
    UniqueFd fd(::openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return sys_error(cat("open ", name));
    std::vector<uint8_t> out;
    uint8_t buf[4096];
    for (;;) {
        ssize_t r = ::read(fd.get(), buf, sizeof buf);
        if (r < 0) {
            if (errno == EINTR) continue;
            return sys_error(cat("read ", name));
        }
        if (r == 0) break;
        out.insert(out.end(), buf, buf + r);
        if (out.size() > (1 << 20)) return usage_error(cat(name, ": too large"));
    }
    return out;
}

}  // namespace

std::vector<std::string> cache_candidates(const std::string& override_dir) {
    if (!override_dir.empty()) return {override_dir};
    std::vector<std::string> c;
    if (::geteuid() == 0) {
        c.push_back("/var/cache/kago");
    } else {
        const char* xdg = ::getenv("XDG_CACHE_HOME");
        if (xdg && xdg[0] == '/') {
            c.push_back(cat(xdg, "/kago"));
        } else {
            const char* home = ::getenv("HOME");
            std::string h = home && home[0] == '/' ? home : "";
            if (!h.empty() && h != "/") c.push_back(h + "/.cache/kago");
        }
    }
    const char* run = ::getenv("XDG_RUNTIME_DIR");
    if (run && run[0] == '/') c.push_back(cat(run, "/kago"));
    return c;
}

Result<CacheBase> open_cache_base(const std::string& override_dir) {
    CacheBase b;
    auto cands = cache_candidates(override_dir);
    for (auto& path : cands) {
        // Made on the first run only: later runs open it at once.
        UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd && errno == ENOENT) {
            if (auto s = mkdir_parents(path); !s) {
                b.skipped.push_back(s.error().message());
                if (!override_dir.empty()) return std::move(s).error();
                continue;
            }
            fd.reset(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        }
        if (!fd) {
            if (!override_dir.empty()) return sys_error(cat("cache directory ", path));
            b.skipped.push_back(sys_error(path).message());
            continue;
        }
        std::string why = TRY(check_base(fd.get()));
        if (!why.empty()) {
            if (!override_dir.empty()) {
                errno = EACCES;
                return sys_error(cat("cache directory ", path, ": ", why));
            }
            b.skipped.push_back(cat(path, ": ", why));
            continue;
        }
        b.path = path;
        b.fd = std::move(fd);
        return b;
    }
    errno = EACCES;
    std::string all;
    for (auto& s : b.skipped) all += (all.empty() ? "" : "; ") + s;
    return sys_error(cat("no usable cache directory (", all.empty() ? "none configured" : all, ")"))
        .with_hint("use --kago-cache DIR, or set XDG_CACHE_HOME or XDG_RUNTIME_DIR");
}

Result<std::optional<CacheEntry>> cache_lookup(const CacheBase& base, const std::string& key) {
    if (!owned_private(base.fd.get(), key.c_str(), true)) return std::optional<CacheEntry>();
    UniqueFd dir(::openat(base.fd.get(), key.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir) return std::optional<CacheEntry>();
    if (!owned_private(dir.get(), "complete", false) || !owned_private(dir.get(), "root", true) ||
        !owned_private(dir.get(), "mnt", true) || !owned_private(dir.get(), "config", false))
        return std::optional<CacheEntry>();
    auto bytes = TRY(read_at(dir.get(), "config"));
    CacheEntry e;
    e.config = TRY(decode_config(bytes));
    e.dir = base.path + "/" + key;
    e.root = e.dir + "/root";
    e.hit = true;
    return std::optional<CacheEntry>(std::move(e));
}

namespace {
// The temporary directories of key's extractions: ".tmp-<16 hex>-XXXXXX".
std::string stale_prefix(const std::string& key) { return ".tmp-" + key.substr(0, 16) + "-"; }

// Remove the ones a run left when it died while holding the lock.
Status remove_stale(const CacheBase& base, const std::string& key) {
    std::string stale = stale_prefix(key);
    std::vector<std::string> old;
    if (DIR* d = ::fdopendir(::dup(base.fd.get()))) {
        while (struct dirent* de = ::readdir(d))
            if (strncmp(de->d_name, stale.c_str(), stale.size()) == 0) old.emplace_back(de->d_name);
        ::closedir(d);
    }
    Status first;
    for (auto& n : old) {
        auto st = remove_tree_at(base.fd.get(), n, base.path + "/" + n);
        if (!st && first) first = std::move(st);
    }
    return first;
}
}  // namespace

Result<CacheEntry> cache_get(const CacheBase& base, Packed& p, const ExtractOptions& o) {
    std::string key = p.key();
    if (auto hit = TRY(cache_lookup(base, key))) return std::move(*hit);
    std::string lockname = key + ".lock";
    UniqueFd lock(::openat(base.fd.get(), lockname.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!lock) return sys_error(cat("open ", base.path, "/", lockname));
    long r = trace::call([&] { return cat("flock(", base.path, "/", lockname, ", LOCK_EX)"); },
                         [&] { return ::flock(lock.get(), LOCK_EX); });
    if (r != 0) return sys_error(cat("lock ", base.path, "/", lockname));
    if (auto hit = TRY(cache_lookup(base, key))) return std::move(*hit);  // another run made it
    (void)remove_stale(base, key);  // leftovers of a run that died holding the lock
    std::string tmpl = base.path + "/" + stale_prefix(key) + "XXXXXX";
    long made = trace::call([&] { return cat("mkdtemp(", trace::quote(tmpl), ")"); },
                            [&] { return ::mkdtemp(tmpl.data()) ? 0 : -1; });
    if (made != 0) return sys_error(cat("create a directory in ", base.path));
    std::string tmpname = tmpl.substr(base.path.size() + 1);
    struct Cleanup {
        const CacheBase& base;
        std::string name;
        bool armed = true;
        ~Cleanup() {
            if (armed) (void)remove_tree_at(base.fd.get(), name, base.path + "/" + name);
        }
    } cleanup{base, tmpname};
    UniqueFd tmp(::openat(base.fd.get(), tmpname.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!tmp) return sys_error(cat("open ", tmpl));
    if (::mkdirat(tmp.get(), "root", 0700) != 0) return sys_error(cat("create ", tmpl, "/root"));
    if (::mkdirat(tmp.get(), "mnt", 0700) != 0) return sys_error(cat("create ", tmpl, "/mnt"));
    UniqueFd root(::openat(tmp.get(), "root", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!root) return sys_error(cat("open ", tmpl, "/root"));
    if (p.manifest().entries.empty()) TRY(p.load_manifest());
    CacheEntry e;
    e.stats = TRY(extract(p, root.get(), o));
    e.config = p.manifest().config;
    TRY(write_at(tmp.get(), "config", encode_config(e.config)));
    TRY(write_at(tmp.get(), "complete", std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(key.data()), key.size())));
    long rr = trace::call(
        [&] { return cat("renameat2(", trace::quote(tmpl), ", ", trace::quote(base.path + "/" + key), ", RENAME_NOREPLACE)"); },
        [&] { return ::renameat2(base.fd.get(), tmpname.c_str(), base.fd.get(), key.c_str(), RENAME_NOREPLACE); });
    if (rr != 0) {
        if (errno != EEXIST && errno != ENOTEMPTY) return sys_error(cat("publish ", base.path, "/", key));
        // Someone published it without our lock: use theirs if it is sound.
        if (auto hit = TRY(cache_lookup(base, key))) return std::move(*hit);
        return sys_error(cat("publish ", base.path, "/", key));
    }
    cleanup.armed = false;
    e.dir = base.path + "/" + key;
    e.root = e.dir + "/root";
    return e;
}

Status cache_clean(const CacheBase& base, const std::string& key) {
    std::string lockname = key + ".lock";
    UniqueFd lock(::openat(base.fd.get(), lockname.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (lock) ::flock(lock.get(), LOCK_EX);
    Status s = remove_tree_at(base.fd.get(), key, base.path + "/" + key);
    if (!s && s.error().err != ENOENT) return s;
    TRY(remove_stale(base, key));
    ::unlinkat(base.fd.get(), lockname.c_str(), 0);
    return {};
}

Status remove_tree_at(int dirfd, const std::string& name, const std::string& shown) {
    struct stat st;
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return sys_error(cat("remove ", shown));
    if (!S_ISDIR(st.st_mode)) {
        if (::unlinkat(dirfd, name.c_str(), 0) != 0) return sys_error(cat("remove ", shown));
        return {};
    }
    struct stat pst;
    if (::fstat(dirfd, &pst) == 0 && pst.st_dev != st.st_dev) {
        errno = EBUSY;
        return sys_error(cat("remove ", shown, " (a mount point)"));
    }
    int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        ::fchmodat(dirfd, name.c_str(), 0700, 0);
        fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return sys_error(cat("open ", shown));
    }
    if ((st.st_mode & 0700) != 0700) ::fchmod(fd, 0700);
    DIR* d = ::fdopendir(fd);
    if (!d) {
        ::close(fd);
        return sys_error(cat("open ", shown));
    }
    std::vector<std::string> names;
    while (struct dirent* de = ::readdir(d))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) names.emplace_back(de->d_name);
    Status result;
    for (auto& n : names) {
        auto r = remove_tree_at(::dirfd(d), n, shown + "/" + n);
        if (!r && result) result = std::move(r);
    }
    ::closedir(d);
    if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && result) result = sys_error(cat("remove ", shown));
    return result;
}

std::vector<uint8_t> encode_config(const Config& c) {
    Manifest m;
    m.config = c;
    m.entries.resize(1);
    m.entries[0].type = Type::Dir;
    return encode_manifest(m);
}

Result<Config> decode_config(std::span<const uint8_t> bytes) {
    Trailer t;
    t.total_entries = 1;
    t.total_bytes = 0;
    Manifest m = TRY(decode_manifest(bytes, t));
    return m.config;
}

}  // namespace kago::pack
