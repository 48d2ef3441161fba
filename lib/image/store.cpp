#include "image/store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <set>
#include <vector>

#include "core/env.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"
#include "image/digest.hpp"

namespace kago::image {

namespace {

Result<std::string> read_all(int fd, const std::string& what) {
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return sys_error(cat("read ", what));
        }
        if (n == 0) return out;
        out.append(buf, static_cast<size_t>(n));
    }
}

long rename_call(int fromfd, const std::string& from, int tofd, const std::string& to,
                 unsigned flags) {
    return trace::call(
        [&] {
            return cat("renameat2(tmp/", from, ", ", trace::quote(to), flags ? ", RENAME_NOREPLACE)" : ", 0)");
        },
        [&] { return ::renameat2(fromfd, from.c_str(), tofd, to.c_str(), flags); });
}

Status renameat_traced(int fromfd, const std::string& from, int tofd, const std::string& to,
                       unsigned flags) {
    if (rename_call(fromfd, from, tofd, to, flags) != 0)
        return sys_error(cat("rename tmp/", from, " to ", to));
    return {};
}

std::vector<std::string> list_dir(int dirfd, const char* sub) {
    std::vector<std::string> out;
    int fd = sys::open_beneath(dirfd, sub, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return out;
    DIR* d = ::fdopendir(fd);
    if (!d) {
        ::close(fd);
        return out;
    }
    while (struct dirent* e = ::readdir(d))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) out.emplace_back(e->d_name);
    ::closedir(d);
    return out;
}

// The store decides what a chain runs (and, for root, what runs as root):
// as ssh with a key, it is trusted only when nobody but the caller can
// change it. Its root and the directories and index that name or hold
// what runs must belong to the caller and be writable by the owner alone.
Status check_private(const struct stat& st, const std::string& path) {
    std::string shown = cat("store ", path);
    uid_t me = ::geteuid();
    if (st.st_uid != me)
        return Error{
            0,
            cat(shown, ": owned by uid ", st.st_uid, ", not by uid ", me, " who runs image-layers"),
            "a store is trusted only by its owner: use a store of your own (--store DIR)"};
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        const char* who = (st.st_mode & S_IWGRP) && (st.st_mode & S_IWOTH) ? "group and others"
                          : (st.st_mode & S_IWGRP)                         ? "group"
                                                                           : "others";
        char mode[8];
        snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        return Error{0, cat(shown, ": writable by ", who, " (mode ", mode, ")"),
                     cat("a store must be writable by its owner only: chmod go-w ", path)};
    }
    return {};
}

Status check_store(int dirfd, const std::string& path) {
    struct stat st;
    if (::fstat(dirfd, &st) != 0) return sys_error(cat("stat store ", path));
    TRY(check_private(st, path));
    for (const char* sub : {"blobs", "blobs/sha256", "layers", "tmp", "index.json"}) {
        if (::fstatat(dirfd, sub, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) continue;
            return sys_error(cat("stat store ", path, "/", sub));
        }
        if (S_ISLNK(st.st_mode))
            return Error{0, cat("store ", path, "/", sub, ": a symlink"),
                         "a store holds none at its top"};
        TRY(check_private(st, cat(path, "/", sub)));
    }
    return {};
}

}  // namespace

std::string default_store() {
    // Root of the initial user namespace only: root in a user namespace
    // (unshare-run --map-auto) is still the user whose store it is.
    auto map = sys::read_file("/proc/self/uid_map");
    bool initial = map && map->find("4294967295") != std::string::npos;
    if (::geteuid() == 0 && initial) return "/var/lib/kago/images";
    std::string_view xdg = env::get("XDG_DATA_HOME");
    if (!xdg.empty()) return cat(xdg, "/kago/images");
    std::string_view home = env::get("HOME");
    return cat(home.empty() ? "/tmp" : home, "/.local/share/kago/images");
}

Result<std::string> normalize_name(const std::string& name, const std::string& what) {
    if (name.empty() || name[0] == '-' || name[0] == '/' || name.back() == ':')
        return usage_error(cat(what, " '", name, "': not an image name (NAME[:TAG])"));
    for (unsigned char c : name)
        if (c <= ' ' || c == 0x7f) return usage_error(cat(what, " '", name, "': an image name holds no spaces or control characters"));
    auto slash = name.rfind('/');
    auto colon = name.rfind(':');
    if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) return name + ":latest";
    return name;
}

Result<Store> Store::open(const std::string& path, bool create) {
    if (path.find(':') != std::string::npos)
        return usage_error(cat("store ", path, ": a store path holds no ':' (it separates the layer directories)"));
    Store s;
    s.path_ = path;
    // Absolute: the layer directories are handed to a chain that may change directory.
    if (!path.empty() && path[0] != '/') {
        char cwd[4096];
        if (::getcwd(cwd, sizeof cwd)) s.path_ = cat(cwd, "/", path);
    }
    if (create) {
        auto made = sys::mkdir_p(s.path_, 0700);
        if (!made) return made.error();
    }
    s.dir_.reset(::open(s.path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!s.dir_) {
        if (errno == ENOENT) return Error{ENOENT, cat("store ", path), "import an image first: image-layers --import SRC NAME"};
        return sys_error(cat("open store ", path));
    }
    TRY(check_store(s.dir_.get(), s.path_));
    if (!create) return s;
    TRY(s.lock());
    return s;
}

Status Store::lock() {
    if (lock_) return {};
    int fd = ::openat(dir_.get(), "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return sys_error(cat("open ", path_, "/lock"));
    lock_.reset(fd);
    long r = trace::call([&] { return cat("flock(", trace::quote(path_ + "/lock"), ", LOCK_EX) "); },
                         [&] { return ::flock(lock_.get(), LOCK_EX); });
    if (r != 0) return sys_error(cat("lock ", path_, "/lock"));
    for (const char* d : {"blobs", "blobs/sha256", "layers", "tmp"})
        if (::mkdirat(dir_.get(), d, 0700) != 0 && errno != EEXIST) return sys_error(cat("mkdir ", path_, "/", d));
    tmp_.reset(sys::open_beneath(dir_.get(), "tmp", O_RDONLY | O_DIRECTORY));
    if (!tmp_) return sys_error(cat("open ", path_, "/tmp"));
    // What is in tmp/ now was left by a writer that was killed.
    TRY(clear_tmp());
    struct stat st;
    if (::fstatat(dir_.get(), "oci-layout", &st, AT_SYMLINK_NOFOLLOW) != 0) {
        std::string n = tmp_name("oci-layout");
        int fd2 = ::openat(tmp_.get(), n.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd2 < 0) return sys_error(cat("create ", path_, "/oci-layout"));
        UniqueFd f(fd2);
        std::string text = "{\"imageLayoutVersion\":\"1.0.0\"}";
        TRY(sys::write_all(f.get(), text.data(), text.size(), "oci-layout"));
        TRY(renameat_traced(tmp_.get(), n, dir_.get(), "oci-layout", 0));
    }
    // A new store's empty index is not synced: cut short by a crash, it
    // is an empty file, which index() reads as the empty index it was.
    if (::fstatat(dir_.get(), "index.json", &st, AT_SYMLINK_NOFOLLOW) != 0)
        TRY(write_index(Index{}, false));
    return {};
}

Result<Index> Store::index() const {
    int fd = sys::open_beneath(dir_.get(), "index.json", O_RDONLY);
    if (fd < 0) {
        if (errno == ENOENT) return Index{};
        return sys_error(cat("open ", path_, "/index.json"));
    }
    UniqueFd f(fd);
    std::string text = TRY(read_all(f.get(), path_ + "/index.json"));
    if (text.empty()) {
        // A new store's, cut short (lock()): empty, as the store. With
        // blobs, an empty index is a broken one, not an empty one: read
        // as empty, the next import would collect every image's blobs.
        if (list_dir(dir_.get(), "blobs/sha256").empty()) return Index{};
        return usage_error(cat(path_, "/index.json is empty, but the store holds blobs: ",
                               "not reading it as a store without images"));
    }
    return parse_index(text, path_ + "/index.json");
}

Status Store::clear_tmp() {
    for (const auto& n : list_dir(dir_.get(), "tmp")) TRY(remove_tree(tmp_.get(), n));
    return {};
}

Status Store::write_index(const Index& idx, bool sync) {
    std::string n = tmp_name("index.json");
    int fd = ::openat(tmp_.get(), n.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return sys_error(cat("create ", path_, "/tmp/", n));
    UniqueFd f(fd);
    std::string text = index_json(idx);
    TRY(sys::write_all(f.get(), text.data(), text.size(), n));
    if (sync && ::fsync(f.get()) != 0) return sys_error(cat("fsync ", n));
    return renameat_traced(tmp_.get(), n, dir_.get(), "index.json", 0);
}

std::string Store::blob_path(const std::string& digest) const { return cat("blobs/sha256/", hex_of(digest)); }

bool Store::has_blob(const std::string& digest) const {
    struct stat st;
    return ::fstatat(dir_.get(), blob_path(digest).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
}

Result<UniqueFd> Store::open_blob(const std::string& digest) const {
    TRY(check_digest(digest, "blob"));
    int fd = sys::open_beneath(dir_.get(), blob_path(digest).c_str(), O_RDONLY);
    if (fd < 0) return sys_error(cat("blob ", digest, " in ", path_));
    return UniqueFd(fd);
}

Result<std::string> Store::read_blob(const std::string& digest) const {
    UniqueFd f = TRY(open_blob(digest));
    std::string text = TRY(read_all(f.get(), cat("blob ", digest)));
    std::string got = sha256(text);
    if (got != digest) return usage_error(cat("blob ", digest, " in ", path_, ": its content hashes to ", got));
    return text;
}

std::string Store::tmp_name(const std::string& prefix) {
    return cat(prefix, ".", ::getpid(), ".", counter_->fetch_add(1) + 1);
}

Result<BlobRef> Store::put_blob(int src_fd, const std::string& expected, int64_t expected_size, const std::string& what) {
    if (!expected.empty()) TRY(check_digest(expected, what));
    std::string n = tmp_name("blob");
    int fd = ::openat(tmp_.get(), n.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return sys_error(cat("create ", path_, "/tmp/", n));
    UniqueFd f(fd);
    Sha256 h;
    int64_t size = 0;
    std::vector<char> buf(1 << 17);
    for (;;) {
        ssize_t r = ::read(src_fd, buf.data(), buf.size());
        if (r < 0) {
            if (errno == EINTR) continue;
            return sys_error(cat("read ", what));
        }
        if (r == 0) break;
        h.update(buf.data(), static_cast<size_t>(r));
        TRY(sys::write_all(f.get(), buf.data(), static_cast<size_t>(r), n));
        size += r;
    }
    f.reset();
    std::string got = h.finish();
    if (auto ok = check_blob({got, size}, expected, expected_size, what); !ok) {
        (void)::unlinkat(tmp_.get(), n.c_str(), 0);
        return std::move(ok).error();
    }
    TRY(adopt_blob(n, got));
    return BlobRef{got, size};
}

Status check_blob(const BlobRef& got, const std::string& expected, int64_t expected_size,
                  const std::string& what) {
    if (!expected.empty() && got.digest != expected)
        return usage_error(cat(what, ": digest mismatch: the descriptor says ", expected,
                               ", the content hashes to ", got.digest));
    if (expected_size >= 0 && got.size != expected_size)
        return usage_error(
            cat(what, ": ", got.size, " bytes, the descriptor says ", expected_size));
    return {};
}

Result<BlobRef> Store::put_bytes(const std::string& bytes) {
    std::string n = tmp_name("blob");
    int fd = ::openat(tmp_.get(), n.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return sys_error(cat("create ", path_, "/tmp/", n));
    UniqueFd f(fd);
    TRY(sys::write_all(f.get(), bytes.data(), bytes.size(), n));
    f.reset();
    std::string d = sha256(bytes);
    TRY(adopt_blob(n, d));
    return BlobRef{d, static_cast<int64_t>(bytes.size())};
}

namespace {

// Whether the file at PATH below dirfd is a regular file that hashes to digest.
bool holds(int dirfd, const std::string& path, const std::string& digest) {
    UniqueFd f(sys::open_beneath(dirfd, path.c_str(), O_RDONLY));
    struct stat st;
    if (!f || ::fstat(f.get(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
    Sha256 h;
    std::vector<char> buf(1 << 17);
    for (;;) {
        ssize_t n = ::read(f.get(), buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return false;
        if (n == 0) break;
        h.update(buf.data(), static_cast<size_t>(n));
    }
    return h.finish() == digest;
}

}  // namespace

Status Store::adopt_blob(const std::string& tmp_name, const std::string& digest) {
    if (has_blob(digest)) {  // the same content: keep the published one
        (void)::unlinkat(tmp_.get(), tmp_name.c_str(), 0);
        return {};
    }
    if (rename_call(tmp_.get(), tmp_name, dir_.get(), blob_path(digest), RENAME_NOREPLACE) == 0)
        return {};
    if (errno != EEXIST && errno != ENOTEMPTY)
        return sys_error(cat("rename tmp/", tmp_name, " to ", blob_path(digest)));
    // Stored meanwhile by another thread of this writer: the same bytes,
    // unless the store was damaged; then this checked copy replaces it.
    if (holds(dir_.get(), blob_path(digest), digest)) {
        (void)::unlinkat(tmp_.get(), tmp_name.c_str(), 0);
        return {};
    }
    return renameat_traced(tmp_.get(), tmp_name, dir_.get(), blob_path(digest), 0);
}

std::string Store::layer_path(const std::string& chain) const { return cat(path_, "/layers/", hex_of(chain)); }

bool Store::has_layer(const std::string& chain) const {
    struct stat st;
    return ::fstatat(dir_.get(), cat("layers/", hex_of(chain)).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
           S_ISDIR(st.st_mode);
}

Result<std::optional<UnpackStats>> Store::add_layer(const std::string& blob, const std::string& diff_id,
                                                    const std::string& chain, const UnpackOptions& o) {
    if (has_layer(chain)) return std::optional<UnpackStats>();
    std::string n = tmp_name("layer");
    if (::mkdirat(tmp_.get(), n.c_str(), 0755) != 0) return sys_error(cat("mkdir ", path_, "/tmp/", n));
    int dfd = sys::open_beneath(tmp_.get(), n.c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd < 0) return sys_error(cat("open ", path_, "/tmp/", n));
    UniqueFd dest(dfd);
    UniqueFd src = TRY(open_blob(blob));
    std::string what = cat("layer ", blob);
    auto st = unpack_layer(src.get(), dest.get(), o, what);
    if (st && st->diff_id != diff_id)
        st = usage_error(cat(what, ": its diff_id is ", st->diff_id, ", the config says ", diff_id));
    if (!st) {
        dest.reset();
        (void)remove_tree(tmp_.get(), n);
        return std::move(st).error();
    }
    dest.reset();
    TRY(renameat_traced(tmp_.get(), n, dir_.get(), cat("layers/", hex_of(chain)), RENAME_NOREPLACE));
    return std::optional<UnpackStats>(std::move(st).value());
}

namespace {

// Every blob and chain an index entry needs (an index's manifests too).
void mark(const Store& s, const Descriptor& d, std::set<std::string>& blobs, std::set<std::string>& chains, int depth) {
    blobs.insert(d.digest);
    if (depth > 4) return;
    auto text = s.read_blob(d.digest);
    if (!text) return;
    if (is_index_type(d.media_type)) {
        if (auto idx = parse_index(*text, d.digest))
            for (const auto& m : idx->manifests) mark(s, m, blobs, chains, depth + 1);
        return;
    }
    auto m = parse_manifest(*text, d.digest);
    if (!m) return;
    blobs.insert(m->config.digest);
    for (const auto& l : m->layers) blobs.insert(l.digest);
    if (auto c = s.read_blob(m->config.digest))
        if (auto cfg = parse_config(*c, m->config.digest))
            for (const auto& ch : chain_ids(cfg->diff_ids)) chains.insert(std::string(hex_of(ch)));
}

}  // namespace

Result<std::pair<size_t, size_t>> Store::collect() {
    Index idx = TRY(index());
    std::set<std::string> blobs, chains;
    for (const auto& d : idx.manifests) mark(*this, d, blobs, chains, 0);
    std::pair<size_t, size_t> gone{0, 0};
    for (const auto& hex : list_dir(dir_.get(), "blobs/sha256")) {
        if (blobs.count("sha256:" + hex)) continue;
        std::string p = "blobs/sha256/" + hex;
        long r = trace::call([&] { return cat("unlinkat(", trace::quote(p), ", 0)"); },
                             [&] { return ::unlinkat(dir_.get(), p.c_str(), 0); });
        if (r != 0 && errno != ENOENT) return sys_error(cat("remove ", path_, "/", p));
        ++gone.first;
    }
    for (const auto& hex : list_dir(dir_.get(), "layers")) {
        if (chains.count(hex)) continue;
        // Out of layers/ first, in one rename: a kill -9 while it is being
        // removed leaves nothing half-gone where a run would look.
        std::string n = tmp_name("gone");
        TRY(renameat_traced(dir_.get(), "layers/" + hex, tmp_.get(), n, 0));
        TRY(remove_tree(tmp_.get(), n));
        ++gone.second;
    }
    return gone;
}

Result<std::vector<Descriptor>> entries(const Store& s) {
    Index idx = TRY(s.index());
    return idx.manifests;
}

Result<Image> resolve(const Store& s, const std::string& ref) {
    Index idx = TRY(s.index());
    const Descriptor* found = nullptr;
    auto name_of = [](const Descriptor& d) {
        auto it = d.annotations.find(kRefName);
        return it == d.annotations.end() ? std::string() : it->second;
    };
    auto full = normalize_name(ref, "IMAGE");
    for (const auto& d : idx.manifests)
        if (name_of(d) == ref || (full && name_of(d) == *full)) found = &d;
    std::string id = ref.starts_with("sha256:") ? ref.substr(7) : ref;
    if (!found && id.size() >= 4 && id.find_first_not_of("0123456789abcdef") == std::string::npos) {
        for (const auto& d : idx.manifests) {
            bool hit = hex_of(d.digest).starts_with(id);
            if (!hit && is_manifest_type(d.media_type))
                if (auto t = s.read_blob(d.digest))
                    if (auto m = parse_manifest(*t, d.digest)) hit = hex_of(m->config.digest).starts_with(id);
            if (!hit) continue;
            if (found && found->digest != d.digest)
                return usage_error(cat("image ", ref, ": the id is ambiguous; give more of it"));
            found = &d;
        }
    }
    if (!found) return usage_error(cat("image ", ref, ": not in the store ", s.path()));
    Image img;
    img.name = name_of(*found).empty() ? ref : name_of(*found);
    img.manifest_desc = *found;
    if (!is_manifest_type(found->media_type))
        return usage_error(cat("image ", ref, ": its entry is a ", found->media_type, ", not an image manifest"));
    std::string mtext = TRY(s.read_blob(found->digest));
    img.manifest = TRY(parse_manifest(mtext, cat("manifest ", found->digest)));
    img.config_digest = img.manifest.config.digest;
    std::string ctext = TRY(s.read_blob(img.config_digest));
    img.config = TRY(parse_config(ctext, cat("config ", img.config_digest)));
    if (img.config.diff_ids.size() != img.manifest.layers.size())
        return usage_error(cat("image ", ref, ": ", img.manifest.layers.size(), " layers, but the config lists ",
                               img.config.diff_ids.size(), " diff_ids"));
    img.size = img.manifest.config.size;
    for (const auto& l : img.manifest.layers) img.size += l.size;
    img.chains = chain_ids(img.config.diff_ids);
    for (const auto& c : img.chains) {
        if (!s.has_layer(c))
            return Error{ENOENT, cat("image ", ref, ": layer ", c, " is not unpacked in ", s.path()),
                         "import the image again"};
        img.layer_dirs.push_back(s.layer_path(c));
    }
    return img;
}

std::string si_size(int64_t n) {
    const char* units[] = {"B", "kB", "MB", "GB", "TB"};
    double v = static_cast<double>(n);
    int u = 0;
    while (v >= 1000 && u < 4) v /= 1000, ++u;
    char buf[32];
    snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
    return buf;
}

Result<std::string> list_table(const Store& s) {
    auto all = TRY(entries(s));
    std::string text =
        "NAME                                     ID            SIZE       CREATED\n";
    for (const auto& d : all) {
        auto it = d.annotations.find(kRefName);
        std::string name = it == d.annotations.end() ? "<none>" : it->second;
        auto im = resolve(s, it == d.annotations.end() ? d.digest : name);
        std::string id = im ? std::string(hex_of(im->config_digest).substr(0, 12)) : "?";
        std::string size = im ? si_size(im->size) : "?";
        std::string created = im ? im->config.created : "";
        char line[512];
        snprintf(line, sizeof line, "%-40s %-13s %-10s %s\n", name.c_str(), id.c_str(),
                 size.c_str(), created.c_str());
        text += line;
    }
    return text;
}

}  // namespace kago::image
