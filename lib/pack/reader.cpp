#include "pack/reader.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <future>
#include <memory>
#include <thread>

#include "core/parse.hpp"
#include "core/sys.hpp"

namespace kago::pack {
namespace {

Error bad(std::string what) {
    Error e;
    e.err = 0;  // the text says it all
    e.what = cat("packed file: ", what);
    return e;
}

struct Decoded {
    std::vector<uint8_t> bytes;
    Error error;
    bool ok = true;
};

Decoded decode_one(int fd, const Frame& f, size_t index) {
    Decoded d;
    auto fail = [&](Error e) {
        d.ok = false;
        d.error = std::move(e);
        return std::move(d);
    };
    std::vector<uint8_t> in(f.csize);
    if (auto s = pread_exact(fd, in.data(), in.size(), f.offset, "a frame"); !s) return fail(s.error());
    Hash h = sha256(in);
    if (crypto_verify_32(h.data(), f.sha256.data()) != 0)
        return fail(bad(cat("frame ", index, ": SHA-256 mismatch (the file is corrupt)")));
    unsigned long long declared = ZSTD_getFrameContentSize(in.data(), in.size());
    if (declared == ZSTD_CONTENTSIZE_ERROR || declared == ZSTD_CONTENTSIZE_UNKNOWN ||
        declared != f.usize)
        return fail(bad(cat("frame ", index, ": the zstd frame does not declare ", f.usize, " bytes")));
    size_t fsize = ZSTD_findFrameCompressedSize(in.data(), in.size());
    if (ZSTD_isError(fsize) || fsize != in.size())
        return fail(bad(cat("frame ", index, ": not exactly one zstd frame")));
    d.bytes.resize(f.usize);
    ZSTD_DCtx* dctx = ZSTD_createDCtx();
    ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, 27);
    size_t n = ZSTD_decompressDCtx(dctx, d.bytes.data(), d.bytes.size(), in.data(), in.size());
    ZSTD_freeDCtx(dctx);
    if (ZSTD_isError(n)) return fail(bad(cat("frame ", index, ": zstd: ", ZSTD_getErrorName(n))));
    if (n != f.usize) return fail(bad(cat("frame ", index, ": decoded ", n, " bytes, declared ", f.usize)));
    return d;
}

// The frames, decoded ahead by worker threads, handed out in order.
class FrameStream {
  public:
    FrameStream(int fd, const std::vector<Frame>& frames, unsigned threads)
        : fd_(fd), frames_(frames), ahead_(threads ? threads : std::max(1u, std::thread::hardware_concurrency())) {}
    ~FrameStream() {
        for (auto& f : inflight_) f.wait();
    }
    Result<std::span<const uint8_t>> next() {
        while (launched_ < frames_.size() && inflight_.size() <= ahead_) {
            size_t i = launched_++;
            int fd = fd_;
            const Frame& f = frames_[i];
            inflight_.push_back(std::async(std::launch::async, [fd, &f, i] { return decode_one(fd, f, i); }));
        }
        if (inflight_.empty()) return bad("the contents run past the last frame");
        current_ = inflight_.front().get();
        inflight_.pop_front();
        if (!current_.ok) return std::move(current_.error);
        return std::span<const uint8_t>(current_.bytes);
    }

  private:
    int fd_;
    const std::vector<Frame>& frames_;
    size_t ahead_;
    size_t launched_ = 0;
    std::deque<std::future<Decoded>> inflight_;
    Decoded current_;
};

bool dropped_xattr(const std::string& name) {
    return name.starts_with("security.") || name.starts_with("trusted.");
}

}  // namespace

Status pread_exact(int fd, void* buf, size_t n, uint64_t off, const char* what) {
    auto* p = static_cast<uint8_t*>(buf);
    while (n > 0) {
        ssize_t r = ::pread(fd, p, n, static_cast<off_t>(off));
        if (r < 0) {
            if (errno == EINTR) continue;
            return sys_error(cat("read ", what, " of the packed file"));
        }
        if (r == 0) return bad(cat(what, ": unexpected end of file (truncated)"));
        p += r;
        n -= static_cast<size_t>(r);
        off += static_cast<uint64_t>(r);
    }
    return {};
}

Result<Packed> Packed::open(UniqueFd fd) {
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return sys_error("stat the packed file");
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size < kTrailerSize) return bad("the file is too short to hold a trailer (not a packed file?)");
    std::array<uint8_t, kTrailerSize> tb;
    TRY(pread_exact(fd.get(), tb.data(), tb.size(), size - kTrailerSize, "the trailer"));
    Packed p;
    p.trailer_ = TRY(decode_trailer(tb, size));
    std::vector<uint8_t> table(uint64_t{p.trailer_.frame_count} * kFrameRecordSize);
    TRY(pread_exact(fd.get(), table.data(), table.size(), p.trailer_.frame_table_offset, "the frame table"));
    Hash h = root_hash(p.trailer_, table);
    if (crypto_verify_32(h.data(), p.trailer_.root_hash.data()) != 0)
        return bad("root hash mismatch: the trailer or frame table is corrupt");
    p.frames_ = TRY(decode_frame_table(table, p.trailer_));
    p.fd_ = std::move(fd);
    return p;
}

Status Packed::load_manifest() {
    const Trailer& t = trailer_;
    std::vector<uint8_t> z(t.manifest_csize);
    TRY(pread_exact(fd_.get(), z.data(), z.size(), t.manifest_offset, "the manifest"));
    Hash h = sha256(z);
    if (crypto_verify_32(h.data(), t.manifest_hash.data()) != 0)
        return bad("manifest: SHA-256 mismatch (the file is corrupt)");
    unsigned long long declared = ZSTD_getFrameContentSize(z.data(), z.size());
    if (declared != t.manifest_usize) return bad("manifest: the zstd frame does not declare its size");
    std::vector<uint8_t> raw(t.manifest_usize);
    size_t n = ZSTD_decompress(raw.data(), raw.size(), z.data(), z.size());
    if (ZSTD_isError(n) || n != raw.size()) return bad("manifest: zstd: cannot decode");
    manifest_ = TRY(decode_manifest(raw, t));
    return {};
}

namespace {
// SHA-256 of [offset, offset + n) of fd, in 1 MiB reads.
Result<Hash> hash_range(int fd, uint64_t offset, uint64_t n, std::vector<uint8_t>& buf, const char* what) {
    Sha256 h;
    for (uint64_t done = 0; done < n;) {
        size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), n - done));
        TRY(pread_exact(fd, buf.data(), want, offset + done, what));
        h.update(std::span<const uint8_t>(buf.data(), want));
        done += want;
    }
    return h.final();
}
}  // namespace

Status Packed::verify_stub() const {
    std::vector<uint8_t> buf(1 << 20);
    Hash h = TRY(hash_range(fd_.get(), 0, trailer_.payload_offset, buf, "the stub"));
    if (crypto_verify_32(h.data(), trailer_.stub_hash.data()) != 0)
        return bad("the stub (the runner, bytes 0 to the first frame): SHA-256 mismatch (the file is corrupt or was tampered with)");
    return {};
}

Status Packed::verify_signature(std::span<const uint8_t> pubkey) const {
    if (!(trailer_.flags & kFlagSigned)) return bad("not signed");
    std::span<const uint8_t> key = pubkey.empty() ? std::span<const uint8_t>(trailer_.public_key) : pubkey;
    if (key.size() != crypto_sign_ed25519_PUBLICKEYBYTES) return usage_error("public key: not 32 bytes");
    if (crypto_sign_ed25519_verify_detached(trailer_.signature.data(), trailer_.root_hash.data(),
                                    trailer_.root_hash.size(), key.data()) != 0)
        return bad(pubkey.empty() ? "the signature does not match the embedded key"
                                  : "the signature does not match the given public key");
    return {};
}

Status Packed::decode_frames(unsigned threads,
                             const std::function<Status(size_t, std::span<const uint8_t>)>& sink) const {
    FrameStream fs(fd_.get(), frames_, threads);
    for (size_t i = 0; i < frames_.size(); ++i) {
        auto frame = TRY(fs.next());
        TRY(sink(i, frame));
    }
    return {};
}

Status Packed::verify_frames(unsigned threads) const {
    size_t n = threads ? threads : std::max(1u, std::thread::hardware_concurrency());
    n = std::min(n, std::max<size_t>(1, frames_.size()));
    std::atomic<size_t> next{0};
    // Each worker hashes whole frames in 1 MiB reads, so that no frame-sized
    // buffer is allocated (and faulted in) only to be hashed.
    auto work = [&]() -> Status {
        std::vector<uint8_t> buf(1 << 20);
        for (size_t i; (i = next++) < frames_.size();) {
            const Frame& f = frames_[i];
            Hash got = TRY(hash_range(fd_.get(), f.offset, f.csize, buf, "a frame"));
            if (crypto_verify_32(got.data(), f.sha256.data()) != 0)
                return bad(cat("frame ", i, ": SHA-256 mismatch (the file is corrupt)"));
        }
        return {};
    };
    std::vector<std::future<Status>> others;
    for (size_t t = 1; t < n; ++t) others.push_back(std::async(std::launch::async, work));
    Status first = work();
    for (auto& f : others) {
        Status st = f.get();
        if (!st && first) first = std::move(st);
    }
    return first;
}

Result<Verified> verify(Packed& p, std::span<const uint8_t> pubkey, unsigned threads) {
    const Trailer& t = p.trailer();
    Verified v;
    v.root_hash = t.root_hash;
    v.is_signed = t.flags & kFlagSigned;
    if (v.is_signed) {
        TRY(p.verify_signature(pubkey));
        v.trusted_key = !pubkey.empty();
        if (pubkey.empty()) v.signer = t.public_key;
        else std::copy(pubkey.begin(), pubkey.end(), v.signer.begin());
    }
    TRY(p.verify_stub());
    TRY(p.load_manifest());
    TRY(p.verify_frames(threads));
    return v;
}

Result<ExtractStats> extract(const Packed& p, int dest, const ExtractOptions& o) {
    TRY(p.verify_stub());
    const Manifest& m = p.manifest();
    const auto& entries = m.entries;
    ExtractStats stats;
    struct statvfs vfs;
    if (::fstatvfs(dest, &vfs) == 0) {
        uint64_t avail = uint64_t{vfs.f_bavail} * vfs.f_frsize;
        uint64_t need = p.trailer().total_bytes + entries.size() * 512;
        if (need > avail) {
            errno = ENOSPC;
            return sys_error(cat("extract ", parse::human_size(need), ": only ", parse::human_size(avail),
                                 " free"));
        }
    }
    std::vector<std::string> paths(entries.size());
    for (size_t i = 1; i < entries.size(); ++i)
        paths[i] = entries[i].parent == 0 ? entries[i].name : paths[entries[i].parent] + "/" + entries[i].name;
    auto shown = [&](size_t i) { return cat("extract ", paths[i]); };

    uint32_t cached_parent = 0;
    UniqueFd cached_fd;
    auto parent_fd = [&](uint32_t parent) -> Result<int> {
        if (parent == 0) return dest;
        if (cached_fd && cached_parent == parent) return cached_fd.get();
        int fd = sys::open_beneath(dest, paths[parent].c_str(), O_PATH | O_DIRECTORY, 0);
        if (fd < 0) return sys_error(shown(parent));
        cached_fd.reset(fd);
        cached_parent = parent;
        return fd;
    };
    auto apply_xattrs = [&](int fd, const Entry& e) {
        for (auto& [k, v] : e.xattrs) {
            if (dropped_xattr(k) || ::fsetxattr(fd, k.c_str(), v.data(), v.size(), 0) != 0)
                ++stats.xattrs_dropped;
        }
    };
    auto mode_of = [&](const Entry& e) {
        uint32_t mode = e.mode;
        if (!o.setid && (mode & 06000)) {
            mode &= ~06000u;
            ++stats.setid_stripped;
        }
        return mode;
    };

    FrameStream frames(p.fd(), p.frames(), o.threads);
    std::span<const uint8_t> chunk;
    for (size_t i = 1; i < entries.size(); ++i) {
        const Entry& e = entries[i];
        int pfd = TRY(parent_fd(e.parent));
        const char* name = e.name.c_str();
        struct timespec times[2] = {{e.mtime, 0}, {e.mtime, 0}};
        switch (e.type) {
        case Type::Dir:
            if (::mkdirat(pfd, name, 0700) != 0) return sys_error(shown(i));
            break;
        case Type::File: {
            UniqueFd fd(
                sys::open_beneath(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600));
            if (!fd) return sys_error(shown(i));
            uint64_t left = e.size;
            while (left > 0) {
                if (chunk.empty()) chunk = TRY(frames.next());
                size_t k = static_cast<size_t>(std::min<uint64_t>(left, chunk.size()));
                TRY(sys::write_all(fd.get(), chunk.data(), k, paths[i]));
                chunk = chunk.subspan(k);
                left -= k;
            }
            if (o.owners && ::fchown(fd.get(), e.uid, e.gid) != 0) return sys_error(shown(i));
            apply_xattrs(fd.get(), e);
            if (::fchmod(fd.get(), mode_of(e)) != 0) return sys_error(shown(i));
            ::futimens(fd.get(), times);
            stats.bytes += e.size;
            break;
        }
        case Type::Symlink:
            if (::symlinkat(e.target.c_str(), pfd, name) != 0) return sys_error(shown(i));
            if (o.owners && ::fchownat(pfd, name, e.uid, e.gid, AT_SYMLINK_NOFOLLOW) != 0)
                return sys_error(shown(i));
            ::utimensat(pfd, name, times, AT_SYMLINK_NOFOLLOW);
            break;
        case Type::Hardlink: {
            const Entry& t = entries[e.link];
            UniqueFd tfd;
            int tp = dest;
            if (t.parent != 0) {
                tfd.reset(
                    sys::open_beneath(dest, paths[t.parent].c_str(), O_PATH | O_DIRECTORY, 0));
                if (!tfd) return sys_error(shown(e.link));
                tp = tfd.get();
            }
            if (::linkat(tp, t.name.c_str(), pfd, name, 0) != 0)
                return sys_error(cat(shown(i), " (hard link to ", paths[e.link], ")"));
            break;
        }
        case Type::Char:
        case Type::Block:
        case Type::Fifo: {
            if (e.type != Type::Fifo && !o.devices) {
                ++stats.devices_skipped;
                continue;
            }
            mode_t kind = e.type == Type::Char ? S_IFCHR : e.type == Type::Block ? S_IFBLK : S_IFIFO;
            if (::mknodat(pfd, name, kind | 0600, makedev(e.major, e.minor)) != 0) return sys_error(shown(i));
            if (o.owners && ::fchownat(pfd, name, e.uid, e.gid, AT_SYMLINK_NOFOLLOW) != 0)
                return sys_error(shown(i));
            if (::fchmodat(pfd, name, mode_of(e), 0) != 0) return sys_error(shown(i));
            ::utimensat(pfd, name, times, AT_SYMLINK_NOFOLLOW);
            break;
        }
        }
        ++stats.entries;
    }
    if (!chunk.empty()) return bad("the frames hold more data than the entries");
    cached_fd.reset();
    // Directories last, deepest first: owner, xattrs, mode and time.
    for (size_t i = entries.size(); i-- > 0;) {
        const Entry& e = entries[i];
        if (e.type != Type::Dir) continue;
        UniqueFd own;
        int fd = dest;
        if (i != 0) {
            own.reset(sys::open_beneath(dest, paths[i].c_str(), O_RDONLY | O_DIRECTORY, 0));
            if (!own) return sys_error(shown(i));
            fd = own.get();
        }
        if (o.owners && ::fchown(fd, e.uid, e.gid) != 0) return sys_error(shown(i));
        apply_xattrs(fd, e);
        // The root is never writable by others: the cache trusts no such entry.
        if ((i != 0 || o.root_mode) && ::fchmod(fd, i == 0 ? mode_of(e) & ~022u : mode_of(e)) != 0)
            return sys_error(shown(i));
        struct timespec times[2] = {{e.mtime, 0}, {e.mtime, 0}};
        ::futimens(fd, times);
    }
    ++stats.entries;
    return stats;
}

}  // namespace kago::pack
