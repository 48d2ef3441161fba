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
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <tuple>
#include <unordered_set>
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
//
// Up to three kinds of threads share a layer (set_threads()):
//  - the reader (UnpackOptions::reader) reads the blob and inflates it a
//    few blocks ahead of the parser (Reader);
//  - the parser (the calling thread) hashes the plain stream (the
//    diff_id; unless UnpackOptions::hash_plain leaves a plain one to
//    LayerWriter's hasher), reads the tar's headers with libarchive,
//    checks each entry, makes the directories, and hands the files,
//    symlinks and nodes to
//  - the workers (Pool; UnpackOptions::workers > 1), which make them. The
//    entries of one directory all go to one worker, in the tar's order: a
//    later entry replaces an earlier one of the same name as tar does, and
//    no two workers queue on one directory's lock. A file larger than
//    kInline is written by the parser itself, from libarchive's buffer, so
//    that the bytes in flight stay bounded (kMaxBytes).
// Whatever the parser does itself to a path that a worker still has queued
// (or to a path below it) waits until the workers are done (a barrier):
// hard links, whiteouts, a directory where a file was, an entry that
// replaces a directory. The directories' own metadata comes last, after a
// barrier. The first error stops the workers; it is the one reported.
// With one worker the parser does everything itself, in one thread.

namespace {

using Xattrs = std::vector<std::pair<std::string, std::string>>;

// The plain stream, hashed for the diff_id as it goes by, in blocks of
// kBlock: read and inflated by a thread of its own up to kBlocks ahead of
// the tar parser (threaded), or when the parser asks for the next block.
// Who hashes a block is whoever has time to spare: the parser when the
// reader inflates (inflating is most of the reader's work), the reader when
// the layer is not compressed (reading is a copy, and hashing would be
// most of the parser's work: a 195 MB layer hashes in 0.17 s here, against
// 0.2 s for tar -x of it). `hash` false: no diff_id (someone else hashes
// the same bytes: LayerWriter's hasher).
class Reader {
  public:
    static constexpr size_t kBlock = 1 << 20, kBlocks = 4;
    Reader(Decompressor& src, bool threaded, bool hash)
        : src_(src),
          hash_(hash),
          reader_hashes_(hash && threaded && src.compression() == Compression::none) {
        blocks_.resize(threaded ? kBlocks : 1);
        for (size_t i = 0; i < blocks_.size(); ++i) {
            blocks_[i].resize(kBlock);
            free_.push_back(i);
        }
        if (!threaded) return;
        try {
            thread_ = std::thread([this] { run(); });
        } catch (const std::system_error&) {
            // No thread to be had: the parser reads for itself.
        }
    }
    ~Reader() { stop(); }
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;

    // The next block: its size, 0 at the end of the stream, -1 when it
    // failed (error()).
    ssize_t next(const void** out) {
        if (!thread_.joinable()) {
            auto n = src_.read(blocks_[0].data(), kBlock);
            if (!n) {
                failed_ = n.error();
                return -1;
            }
            if (hash_) diff_.update(blocks_[0].data(), *n);
            *out = blocks_[0].data();
            return static_cast<ssize_t>(*n);
        }
        std::unique_lock<std::mutex> l(mu_);
        if (held_ < blocks_.size()) {
            free_.push_back(held_);
            held_ = blocks_.size();
            room_.notify_one();
        }
        ready_.wait(l, [&] { return !full_.empty() || done_; });
        if (full_.empty()) return failed_ ? -1 : 0;
        auto [b, n] = full_.front();
        full_.pop_front();
        held_ = b;
        l.unlock();
        if (hash_ && !reader_hashes_) diff_.update(blocks_[b].data(), n);
        *out = blocks_[b].data();
        return static_cast<ssize_t>(n);
    }
    bool failed() {
        std::lock_guard<std::mutex> l(mu_);
        return failed_.has_value() && full_.empty();
    }
    Error error() {
        std::lock_guard<std::mutex> l(mu_);
        return *failed_;
    }
    // The rest of the stream after the tar's end (its padding counts for
    // the diff_id; a gzip member's CRC-32 is checked there), then the
    // diff_id.
    Result<std::string> finish() {
        const void* p;
        for (;;) {
            ssize_t n = next(&p);
            if (n < 0) return error();
            if (n == 0) break;
        }
        stop();
        return hash_ ? diff_.finish() : std::string();
    }

  private:
    void run() {
        for (;;) {
            size_t b;
            {
                std::unique_lock<std::mutex> l(mu_);
                room_.wait(l, [&] { return !free_.empty() || stop_; });
                if (stop_) return;
                b = free_.back();
                free_.pop_back();
            }
            auto n = src_.read(blocks_[b].data(), kBlock);
            if (n && reader_hashes_) diff_.update(blocks_[b].data(), *n);
            std::lock_guard<std::mutex> l(mu_);
            if (!n) failed_ = n.error();
            if (!n || *n == 0) {
                done_ = true;
                ready_.notify_one();
                return;
            }
            full_.emplace_back(b, *n);
            ready_.notify_one();
        }
    }
    void stop() {
        if (!thread_.joinable()) return;
        {
            std::lock_guard<std::mutex> l(mu_);
            stop_ = true;
        }
        room_.notify_one();
        thread_.join();
    }

    Decompressor& src_;
    const bool hash_;
    // The blocks in the stream's order, hashed by the reader (as it reads
    // them) or by the parser (as it takes them), never by both.
    const bool reader_hashes_;
    Sha256 diff_;
    std::vector<std::vector<char>> blocks_;
    std::mutex mu_;
    std::condition_variable room_, ready_;
    std::deque<std::pair<size_t, size_t>> full_;  // (block, bytes), in order
    std::vector<size_t> free_;
    size_t held_ = SIZE_MAX;  // the block libarchive reads now
    bool done_ = false, stop_ = false;
    std::optional<Error> failed_;
    std::thread thread_;
};

la_ssize_t reader_read(struct archive* inner, void* ctx, const void** out) {
    auto* r = static_cast<Reader*>(ctx);
    ssize_t n = r->next(out);
    if (n < 0) archive_set_error(inner, EIO, "%s", r->error().what.c_str());
    return n;
}

// What a worker (or the parser) counts as it makes entries.
struct Counts {
    uint64_t bytes = 0, xattrs_dropped = 0;
};

// A file, symlink or node to make, all its metadata decided.
struct Op {
    enum class Kind { file, symlink, node } kind = Kind::file;
    std::shared_ptr<const UniqueFd> dir;  // its directory (O_PATH)
    std::string base, path;
    uid_t uid = 0;
    gid_t gid = 0;
    mode_t mode = 0;  // permissions, setid bits already kept or stripped
    mode_t node = 0;  // S_IFCHR, S_IFBLK or S_IFIFO
    dev_t rdev = 0;
    struct timespec mtime = {};
    Xattrs xattrs;
    // A file's bytes (its segments one after the other: a sparse file has
    // holes between them), or a symlink's target.
    std::string data;
    std::vector<std::pair<int64_t, size_t>> segments;  // (offset, length)
    int64_t size = 0;
};

// Making entries: what the parser and the workers share. Const: any
// number of threads use one.
class Maker {
  public:
    Maker(const UnpackOptions& o, std::string_view what) : o_(o), what_(what) {}
    Error bad(std::string_view path, std::string_view why) const {
        return usage_error(cat(what_, ": entry '", path, "': ", why));
    }
    Error failed(std::string_view path, std::string_view step) const {
        return sys_error(cat(what_, ": ", step, " ", path));
    }
    const std::string& what() const { return what_; }
    const UnpackOptions& options() const { return o_; }

    // A later entry of the same name replaces an earlier one, as tar does.
    Status clear(int pfd, const std::string& base, const std::string& path) const {
        if (::unlinkat(pfd, base.c_str(), 0) == 0 || errno == ENOENT) return {};
        if (errno == EISDIR && ::unlinkat(pfd, base.c_str(), AT_REMOVEDIR) == 0) return {};
        return failed(path, "replace");
    }
    // Create with `make`; when the name is taken, clear it and create
    // again. A fresh layer directory pays one system call per entry
    // instead of two.
    template <typename Make>
    Status create(int pfd, const std::string& base, const std::string& path, Make make) const {
        if (make()) return {};
        if (errno != EEXIST) return {};  // the caller reports it, with its step
        TRY(clear(pfd, base, path));
        (void)make();
        return {};
    }
    void set_xattrs(int fd, const Xattrs& xs, Counts& c) const {
        for (const auto& [k, v] : xs)
            if (::fsetxattr(fd, k.c_str(), v.data(), v.size(), 0) != 0) ++c.xattrs_dropped;
    }
    // A regular file's metadata, once its bytes are written.
    Status finish_file(int fd, const Op& op, Counts& c) const {
        if (o_.owners && ::fchown(fd, op.uid, op.gid) != 0) return failed(op.path, "chown");
        set_xattrs(fd, op.xattrs, c);
        // After chown: chown clears the setuid bits and the capability.
        if (::fchmod(fd, op.mode) != 0) return failed(op.path, "chmod");
        struct timespec times[2] = {op.mtime, op.mtime};
        ::futimens(fd, times);
        return {};
    }
    Result<UniqueFd> create_file(int pfd, const Op& op) const {
        int fd = -1;
        TRY(create(pfd, op.base, op.path, [&] {
            fd = sys::open_beneath(pfd, op.base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW,
                                   0600);
            return fd >= 0;
        }));
        if (fd < 0) return failed(op.path, "create");
        return UniqueFd(fd);
    }
    Status write_at(int fd, const char* p, size_t n, int64_t off, const std::string& path,
                    Counts& c) const {
        while (n > 0) {
            ssize_t w = ::pwrite(fd, p, n, off);
            if (w < 0) {
                if (errno == EINTR) continue;
                return failed(path, "write");
            }
            p += w;
            off += w;
            n -= static_cast<size_t>(w);
            c.bytes += static_cast<uint64_t>(w);
        }
        return {};
    }
    // A sparse file's hole at the end: no block was written there.
    Status end_file(int fd, const Op& op, int64_t end) const {
        if (end != op.size && ::ftruncate(fd, op.size) != 0) return failed(op.path, "truncate");
        return {};
    }

    Status make(const Op& op, Counts& c) const {
        int pfd = op.dir->get();
        struct timespec times[2] = {op.mtime, op.mtime};
        switch (op.kind) {
            case Op::Kind::file: {
                UniqueFd f = TRY(create_file(pfd, op));
                const char* p = op.data.data();
                int64_t end = 0;
                for (auto [off, n] : op.segments) {
                    TRY(write_at(f.get(), p, n, off, op.path, c));
                    p += n;
                    end = std::max(end, off + static_cast<int64_t>(n));
                }
                TRY(end_file(f.get(), op, end));
                return finish_file(f.get(), op, c);
            }
            case Op::Kind::symlink: {
                bool made = false;
                TRY(create(pfd, op.base, op.path, [&] {
                    return made = ::symlinkat(op.data.c_str(), pfd, op.base.c_str()) == 0;
                }));
                if (!made) return failed(op.path, "symlink");
                if (o_.owners &&
                    ::fchownat(pfd, op.base.c_str(), op.uid, op.gid, AT_SYMLINK_NOFOLLOW) != 0)
                    return failed(op.path, "chown");
                ::utimensat(pfd, op.base.c_str(), times, AT_SYMLINK_NOFOLLOW);
                return {};
            }
            case Op::Kind::node: {
                bool made = false;
                TRY(create(pfd, op.base, op.path, [&] {
                    return made = ::mknodat(pfd, op.base.c_str(), op.node | 0600, op.rdev) == 0;
                }));
                if (!made) return failed(op.path, "mknod");
                if (o_.owners &&
                    ::fchownat(pfd, op.base.c_str(), op.uid, op.gid, AT_SYMLINK_NOFOLLOW) != 0)
                    return failed(op.path, "chown");
                if (::fchmodat(pfd, op.base.c_str(), op.mode, 0) != 0)
                    return failed(op.path, "chmod");
                ::utimensat(pfd, op.base.c_str(), times, AT_SYMLINK_NOFOLLOW);
                return {};
            }
        }
        return {};
    }

  private:
    UnpackOptions o_;
    std::string what_;
};

// The workers: each makes the ops queued for it, in order. At most kMaxOps
// ops and kMaxBytes of file data are queued or being made at once; push()
// waits for room. The first op that fails is the error; the ops after it
// are dropped unmade.
class Pool {
  public:
    static constexpr size_t kMaxOps = 4096, kMaxBytes = 16 << 20;
    Pool(const Maker& m, unsigned n) : maker_(m) {
        for (unsigned i = 0; i < n; ++i) {
            auto w = std::make_unique<Worker>();
            Worker* p = w.get();
            try {
                threads_.emplace_back([this, p] { run(*p); });
            } catch (const std::system_error&) {
                break;  // fewer workers (RLIMIT_NPROC)
            }
            workers_.push_back(std::move(w));
        }
    }
    ~Pool() {
        {
            std::lock_guard<std::mutex> l(mu_);
            stop_ = true;
            failed_ = failed_ || ops_ > 0;  // left unmade
        }
        for (auto& w : workers_) w->cv.notify_one();
        for (auto& t : threads_) t.join();
    }
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;

    size_t size() const { return workers_.size(); }
    // Queue op for worker i. False: a worker failed (error()).
    bool push(size_t i, Op&& op) {
        size_t n = op.data.size();
        std::unique_lock<std::mutex> l(mu_);
        room_.wait(
            l, [&] { return failed_ || ops_ == 0 || (ops_ < kMaxOps && bytes_ + n <= kMaxBytes); });
        if (failed_) return false;
        ++ops_;
        bytes_ += n;
        workers_[i]->q.push_back(std::move(op));
        workers_[i]->cv.notify_one();
        return true;
    }
    // Wait until every op queued is made (or dropped). False: one failed.
    bool drain() {
        std::unique_lock<std::mutex> l(mu_);
        room_.wait(l, [&] { return ops_ == 0; });
        return !failed_;
    }
    Error error() {
        std::lock_guard<std::mutex> l(mu_);
        return *error_;
    }
    // What the workers counted; after drain().
    Counts counts() {
        std::lock_guard<std::mutex> l(mu_);
        Counts c;
        for (auto& w : workers_) {
            c.bytes += w->counts.bytes;
            c.xattrs_dropped += w->counts.xattrs_dropped;
        }
        return c;
    }

  private:
    struct Worker {
        std::deque<Op> q;
        std::condition_variable cv;
        Counts counts;  // the worker's alone, read under mu_ once drained
    };
    void run(Worker& w) {
        std::unique_lock<std::mutex> l(mu_);
        for (;;) {
            w.cv.wait(l, [&] { return !w.q.empty() || stop_; });
            if (w.q.empty()) return;
            Status st;
            size_t n;
            {
                Op op = std::move(w.q.front());
                w.q.pop_front();
                bool skip = failed_;
                n = op.data.size();
                l.unlock();
                if (!skip) st = maker_.make(op, w.counts);
            }  // the op's memory and its directory's fd go before the lock is taken again
            l.lock();
            --ops_;
            bytes_ -= n;
            if (!st && !failed_) {
                failed_ = true;
                error_ = std::move(st).error();
            }
            room_.notify_one();
        }
    }

    const Maker& maker_;
    std::mutex mu_;
    std::condition_variable room_;  // the parser waits here: for room, or for none in flight
    std::vector<std::unique_ptr<Worker>> workers_;
    std::vector<std::thread> threads_;
    size_t ops_ = 0, bytes_ = 0;  // queued or being made
    bool failed_ = false, stop_ = false;
    std::optional<Error> error_;
};

struct DirMeta {
    std::string path;
    uid_t uid;
    gid_t gid;
    mode_t mode;
    struct timespec mtime;
    Xattrs xattrs;
};

struct PathHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using PathSet = std::unordered_set<std::string, PathHash, std::equal_to<>>;

class Unpacker {
  public:
    // Files up to this size are read into memory and made by a worker.
    static constexpr int64_t kInline = 256 << 10;
    // A barrier at least this often, so that the paths queued since the
    // last one stay few whatever the layer's size.
    static constexpr size_t kMaxPending = 1 << 16;

    Unpacker(int dest, const UnpackOptions& o, std::string_view what)
        : dest_(dest), o_(o), maker_(o, what) {
        if (o.workers > 1) {
            pool_ = std::make_unique<Pool>(maker_, o.workers);
            if (pool_->size() == 0) pool_.reset();
        }
    }
    Status entry(struct archive* a, struct archive_entry* e);
    Status finish();
    UnpackStats stats;

  private:
    Error bad(std::string_view path, std::string_view why) const { return maker_.bad(path, why); }
    Error failed(std::string_view path, std::string_view step) const {
        return maker_.failed(path, step);
    }
    const std::string& what() const { return maker_.what(); }
    Result<UniqueFd> parent(const std::string& dir, const std::string& shown);
    // parent(), kept open for the entries that follow in the same
    // directory (a tar lists a directory's entries together), and shared
    // with the workers that make them. Anything clear() removes drops it.
    Result<std::shared_ptr<const UniqueFd>> parent_cached(const std::string& dir,
                                                          const std::string& shown);
    // Remove what is at path (a file, or an empty directory) for an entry
    // of the same name.
    Status clear(int pfd, const std::string& base, const std::string& path);
    // Before the parser itself touches `path`: when a worker has `path`
    // (self) or a directory above it queued, wait for the workers.
    Status settle(const std::string& path, bool self);
    Status barrier();
    // A file, symlink or node at path: true when the parser makes it
    // itself (after waiting for what it replaces), false when it may be
    // queued for a worker.
    Result<bool> here(int pfd, const std::string& base, const std::string& path, bool may_queue);
    Status dispatch(Op&& op, const std::string& dir);
    Status make_here(const Op& op) { return maker_.make(op, counts_); }
    mode_t mode_of(mode_t m) {
        m &= 07777;
        if (!o_.setid && (m & 06000)) {
            m &= ~06000u;
            ++stats.setid_stripped;
        }
        return m;
    }
    Xattrs xattrs_of(struct archive_entry* e) {
        Xattrs out;
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

    int dest_;
    UnpackOptions o_;
    Maker maker_;
    Counts counts_;  // the parser's own
    std::vector<DirMeta> dirs_;
    PathSet made_dirs_;  // every directory made below the root
    PathSet pending_;    // files, symlinks and nodes queued since the last barrier
    std::string cached_dir_;
    std::shared_ptr<const UniqueFd> cached_fd_;
    std::unique_ptr<Pool> pool_;  // last: its workers stop before the rest goes
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
        made_dirs_.insert(sofar);
        cur.reset(next);
        i = j + 1;
    }
    return cur;
}

Result<std::shared_ptr<const UniqueFd>> Unpacker::parent_cached(const std::string& dir,
                                                                const std::string& shown) {
    if (cached_fd_ && dir == cached_dir_) return cached_fd_;
    UniqueFd fd = TRY(parent(dir, shown));
    cached_fd_ = std::make_shared<const UniqueFd>(std::move(fd));
    cached_dir_ = dir;
    return cached_fd_;
}

Status Unpacker::clear(int pfd, const std::string& base, const std::string& path) {
    cached_fd_.reset();  // closed once nothing uses it, not while in use
    TRY(maker_.clear(pfd, base, path));
    made_dirs_.erase(path);
    return {};
}

Status Unpacker::barrier() {
    if (pool_ && !pool_->drain()) return pool_->error();
    pending_.clear();
    return {};
}

Status Unpacker::settle(const std::string& path, bool self) {
    if (pending_.empty()) return {};
    for (size_t j = path.find('/'); j != std::string::npos; j = path.find('/', j + 1))
        if (pending_.contains(std::string_view(path).substr(0, j))) return barrier();
    if (self && pending_.contains(path)) return barrier();
    return {};
}

Result<bool> Unpacker::here(int pfd, const std::string& base, const std::string& path,
                            bool may_queue) {
    if (made_dirs_.contains(path)) {
        // It replaces a directory: only an empty one goes, once nothing
        // below it is still to be made.
        TRY(barrier());
        TRY(clear(pfd, base, path));
        return true;
    }
    if (!pool_) return true;
    if (!may_queue) {
        TRY(settle(path, true));
        return true;
    }
    return false;
}

Status Unpacker::dispatch(Op&& op, const std::string& dir) {
    if (pending_.size() >= kMaxPending) TRY(barrier());
    pending_.insert(op.path);
    if (!pool_->push(std::hash<std::string>{}(dir) % pool_->size(), std::move(op)))
        return pool_->error();
    return {};
}

Status Unpacker::entry(struct archive* a, struct archive_entry* e) {
    const char* raw_c = archive_entry_pathname(e);
    if (!raw_c) return usage_error(cat(what(), ": an entry has no name"));
    std::string raw = raw_c;
    std::string path = TRY(clean_path(raw, what()));
    mode_t type = archive_entry_filetype(e);
    const char* hardlink = archive_entry_hardlink(e);
    struct timespec mtime = {archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
    if (path.empty()) {  // the root: its metadata only
        if (type == AE_IFDIR)
            dirs_.push_back({"", static_cast<uid_t>(archive_entry_uid(e)),
                             static_cast<gid_t>(archive_entry_gid(e)), archive_entry_perm(e), mtime,
                             xattrs_of(e)});
        return {};
    }
    std::string dir, base;
    std::tie(dir, base) = split(path);
    TRY(settle(path, false));
    std::shared_ptr<const UniqueFd> pdir = TRY(parent_cached(dir, raw));
    int pfd = pdir->get();
    ++stats.entries;

    switch (whiteout_kind(base)) {
    case Whiteout::opaque: {
        // The directory's own xattr: nothing queued below it is touched.
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
        TRY(settle(shown, true));
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

    Op op;
    op.base = base;
    op.path = path;
    op.uid = static_cast<uid_t>(archive_entry_uid(e));
    op.gid = static_cast<gid_t>(archive_entry_gid(e));
    op.mtime = mtime;

    if (hardlink) {
        std::string target = TRY(clean_path(hardlink, what()));
        if (target.empty()) return bad(raw, "a hard link to the layer's root");
        TRY(settle(target, true));
        TRY(settle(path, true));
        // It replaces a directory: only an empty one goes, once nothing
        // below it is still to be made.
        if (made_dirs_.contains(path)) TRY(barrier());
        auto [tdir, tbase] = split(target);
        UniqueFd tfd = TRY(parent(tdir, raw));
        TRY(clear(pfd, base, path));
        if (::linkat(tfd.get(), tbase.c_str(), pfd, base.c_str(), 0) != 0)
            return sys_error(cat(what(), ": hard link ", path, " to ", target));
        return {};
    }
    switch (type) {
    case AE_IFDIR: {
        TRY(settle(path, true));
        if (::mkdirat(pfd, base.c_str(), 0700) != 0) {
            struct stat st;
            if (errno != EEXIST || ::fstatat(pfd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
                return failed(path, "mkdir");
            if (!S_ISDIR(st.st_mode)) {
                TRY(clear(pfd, base, path));
                if (::mkdirat(pfd, base.c_str(), 0700) != 0) return failed(path, "mkdir");
            }
        }
        made_dirs_.insert(path);
        dirs_.push_back({path, op.uid, op.gid, archive_entry_perm(e), mtime, xattrs_of(e)});
        return {};
    }
    case AE_IFREG: {
        op.kind = Op::Kind::file;
        op.size = archive_entry_size(e);
        op.xattrs = xattrs_of(e);
        op.mode = mode_of(archive_entry_perm(e));
        const void* block;
        size_t size;
        la_int64_t off;
        int r;
        if (TRY(here(pfd, base, path, op.size <= kInline))) {
            // Written as libarchive reads it.
            UniqueFd f = TRY(maker_.create_file(pfd, op));
            int64_t end = 0;
            while ((r = archive_read_data_block(a, &block, &size, &off)) == ARCHIVE_OK ||
                   r == ARCHIVE_WARN) {
                TRY(maker_.write_at(f.get(), static_cast<const char*>(block), size, off, path,
                                    counts_));
                end = std::max(end, off + static_cast<int64_t>(size));
            }
            if (r != ARCHIVE_EOF) return usage_error(cat(what(), ": ", path, ": ", archive_why(a)));
            TRY(maker_.end_file(f.get(), op, end));
            return maker_.finish_file(f.get(), op, counts_);
        }
        op.data.reserve(static_cast<size_t>(std::max<int64_t>(op.size, 0)));
        while ((r = archive_read_data_block(a, &block, &size, &off)) == ARCHIVE_OK ||
               r == ARCHIVE_WARN) {
            if (size == 0) continue;
            if (!op.segments.empty() &&
                op.segments.back().first + static_cast<int64_t>(op.segments.back().second) == off)
                op.segments.back().second += size;
            else
                op.segments.emplace_back(off, size);
            op.data.append(static_cast<const char*>(block), size);
        }
        if (r != ARCHIVE_EOF) return usage_error(cat(what(), ": ", path, ": ", archive_why(a)));
        op.dir = std::move(pdir);
        return dispatch(std::move(op), dir);
    }
    case AE_IFLNK: {
        const char* target = archive_entry_symlink(e);
        if (!target) return bad(raw, "a symlink without a target");
        if (symlink_climbs_out(path, target)) return bad(raw, cat("the symlink's target '", target, "' climbs out of the layer"));
        op.kind = Op::Kind::symlink;
        op.data = target;
        break;
    }
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO: {
        if (type != AE_IFIFO && !o_.devices) {
            ++stats.devices_skipped;
            return {};
        }
        op.kind = Op::Kind::node;
        op.node = type == AE_IFCHR ? S_IFCHR : type == AE_IFBLK ? S_IFBLK : S_IFIFO;
        op.rdev = archive_entry_rdev(e);
        op.mode = mode_of(archive_entry_perm(e));
        break;
    }
    default:
        return bad(raw, "a socket or an unknown entry type");
    }
    op.dir = std::move(pdir);
    if (TRY(here(pfd, base, path, true))) return make_here(op);
    return dispatch(std::move(op), dir);
}

// Once the workers are done: directories last, in reverse order, so that a
// read-only directory does not stop the entries below it: owner, xattrs,
// then mode and time.
Status Unpacker::finish() {
    TRY(barrier());
    Counts c = counts_;
    if (pool_) {
        Counts w = pool_->counts();
        c.bytes += w.bytes;
        c.xattrs_dropped += w.xattrs_dropped;
    }
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
        int fd = it->path.empty()
                     ? ::fcntl(dest_, F_DUPFD_CLOEXEC, 3)
                     : sys::open_beneath(dest_, it->path.c_str(), O_RDONLY | O_DIRECTORY);
        // A later entry replaced it (a file, a symlink): nothing to set.
        if (fd < 0 && (errno == ENOTDIR || errno == ELOOP)) continue;
        if (fd < 0) return failed(it->path, "open");
        UniqueFd d(fd);
        if (o_.owners && ::fchown(d.get(), it->uid, it->gid) != 0) return failed(it->path, "chown");
        maker_.set_xattrs(d.get(), it->xattrs, c);
        if (::fchmod(d.get(), mode_of(it->mode)) != 0) return failed(it->path, "chmod");
        struct timespec times[2] = {it->mtime, it->mtime};
        ::futimens(d.get(), times);
    }
    stats.bytes += c.bytes;
    stats.xattrs_dropped += c.xattrs_dropped;
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

void set_threads(UnpackOptions& o, unsigned cpus) {
    o.reader = cpus >= 2;
    o.workers = cpus >= 3 ? cpus - 2 : 1;
}

Result<UnpackStats> unpack_layer(int blob_fd, int dest_fd, const UnpackOptions& o, std::string_view what) {
    FdSource src(blob_fd);
    return unpack_layer(src, dest_fd, o, what);
}

Result<UnpackStats> unpack_layer(ByteSource& src, int dest_fd, const UnpackOptions& o,
                                 std::string_view what) {
    auto plain = TRY(Decompressor::open(src, std::string(what)));
    bool compressed = plain->compression() != Compression::none;
    bool hash = compressed || o.hash_plain;
    // A plain stream nobody asks to hash is only read: the parser reads
    // it itself (a reader thread would only copy it).
    Reader reader(*plain, o.reader && hash, hash);
    Archive inner(archive_read_new(), archive_read_free);
    archive_read_support_format_tar(inner.get());
    if (archive_read_open(inner.get(), &reader, nullptr, reader_read, nullptr) != ARCHIVE_OK) {
        if (reader.failed()) return reader.error();
        return usage_error(cat(what, ": not a tar archive: ", archive_why(inner.get())));
    }
    Unpacker u(dest_fd, o, what);
    for (;;) {
        struct archive_entry* e;
        int r = archive_read_next_header(inner.get(), &e);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) {
            if (reader.failed()) return reader.error();
            return usage_error(cat(what, ": ", archive_why(inner.get(), "unreadable tar")));
        }
        // A failed read of the stream is the stream's error, not the entry's.
        if (Status st = u.entry(inner.get(), e); !st)
            return reader.failed() ? reader.error() : std::move(st).error();
    }
    if (reader.failed()) return reader.error();
    TRY(u.finish());
    u.stats.diff_id = TRY(reader.finish());
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
