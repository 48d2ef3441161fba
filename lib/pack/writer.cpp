#include "pack/writer.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <deque>
#include <future>
#include <thread>

#include "core/fd.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"

namespace kago::pack {
namespace {

Status write_all(int fd, const uint8_t* p, size_t n, uint64_t& pos) {
    TRY(sys::write_all(fd, p, n, "the packed file"));
    pos += n;
    return {};
}

using Producer = std::function<Status(uint8_t*, size_t)>;

struct Compressed {
    std::vector<uint8_t> bytes;
    Hash sha256;
    Error error;
    bool ok = true;
};

Result<WriteResult> write_core(int out, const Manifest& m, uint64_t total, const Producer& fill,
                               const WriteOptions& o) {
    if (o.frame_size < kMinFrameSize || o.frame_size > kMaxFrameSize)
        return usage_error(cat("frame size ", o.frame_size, " is out of range"));
    uint64_t pos = 0;
    TRY(write_all(out, o.stub.data(), o.stub.size(), pos));
    Trailer t;
    t.payload_offset = pos;
    t.stub_hash = sha256(o.stub);
    t.frame_size = o.frame_size;
    t.total_bytes = total;
    t.total_entries = m.entries.size();
    unsigned threads = o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency());

    std::vector<Frame> frames;
    std::deque<std::pair<uint64_t, std::future<Compressed>>> inflight;
    auto drain_one = [&]() -> Status {
        auto [usize, fut] = std::move(inflight.front());
        inflight.pop_front();
        Compressed c = fut.get();
        if (!c.ok) return c.error;
        Frame f;
        f.offset = pos;
        f.csize = c.bytes.size();
        f.usize = usize;
        f.sha256 = c.sha256;
        TRY(write_all(out, c.bytes.data(), c.bytes.size(), pos));
        frames.push_back(f);
        if (o.progress) o.progress(std::min<uint64_t>(total, uint64_t{frames.size()} * o.frame_size), total);
        return {};
    };
    for (uint64_t done = 0; done < total;) {
        uint64_t n = std::min<uint64_t>(o.frame_size, total - done);
        auto buf = std::make_shared<std::vector<uint8_t>>(n);
        TRY(fill(buf->data(), n));
        done += n;
        int level = o.level;
        bool long_mode = o.long_mode;
        inflight.emplace_back(n, std::async(std::launch::async, [buf, level, long_mode] {
                                  Compressed c;
                                  auto r = compress(*buf, level, long_mode);
                                  if (!r) {
                                      c.ok = false;
                                      c.error = r.error();
                                      return c;
                                  }
                                  c.bytes = std::move(r).value();
                                  c.sha256 = sha256(c.bytes);
                                  return c;
                              }));
        while (inflight.size() >= threads) TRY(drain_one());
    }
    while (!inflight.empty()) TRY(drain_one());
    if (o.progress && total == 0) o.progress(0, 0);
    t.frame_count = static_cast<uint32_t>(frames.size());

    std::vector<uint8_t> manifest = encode_manifest(m);
    std::vector<uint8_t> mz = TRY(compress(manifest, 19, false));
    t.manifest_offset = pos;
    t.manifest_csize = mz.size();
    t.manifest_usize = manifest.size();
    t.manifest_hash = sha256(mz);
    TRY(write_all(out, mz.data(), mz.size(), pos));
    std::vector<uint8_t> table = encode_frame_table(frames);
    t.frame_table_offset = pos;
    TRY(write_all(out, table.data(), table.size(), pos));
    t.file_size = pos + kTrailerSize;
    if (!o.secret_key.empty()) {
        if (o.secret_key.size() != crypto_sign_SECRETKEYBYTES) return usage_error("signing key: wrong size");
        t.flags |= kFlagSigned;  // hashed: set before the root hash
        crypto_sign_ed25519_sk_to_pk(t.public_key.data(), o.secret_key.data());
    }
    t.root_hash = root_hash(t, table);
    if (!o.secret_key.empty())
        crypto_sign_detached(t.signature.data(), nullptr, t.root_hash.data(), t.root_hash.size(),
                             o.secret_key.data());
    auto tb = encode_trailer(t);
    TRY(write_all(out, tb.data(), tb.size(), pos));
    return WriteResult{t, pos};
}

}  // namespace

Result<std::vector<uint8_t>> compress(std::span<const uint8_t> in, int level, bool long_mode) {
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    if (!cctx) {
        errno = ENOMEM;
        return sys_error("zstd: create a compression context");
    }
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 0);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
    if (long_mode) {
        int wlog = 20;
        while (wlog < 27 && (size_t{1} << wlog) < in.size()) ++wlog;
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_enableLongDistanceMatching, 1);
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, wlog);
    }
    std::vector<uint8_t> out(ZSTD_compressBound(in.size()));
    size_t n = ZSTD_compress2(cctx, out.data(), out.size(), in.data(), in.size());
    ZSTD_freeCCtx(cctx);
    if (ZSTD_isError(n)) {
        Error e;
        e.err = EIO;
        e.what = cat("zstd: compress: ", ZSTD_getErrorName(n));
        return e;
    }
    out.resize(n);
    return out;
}

Result<WriteResult> write_packed(int out, const Tree::Built& b, const WriteOptions& o) {
    // The contents of the files in manifest order, read as the frames fill.
    std::vector<std::pair<const Content*, uint64_t>> files;  // content, size
    size_t ci = 0;
    for (auto& e : b.manifest.entries)
        if (e.type == Type::File) files.emplace_back(&b.contents.at(ci++), e.size);
    size_t fi = 0;
    uint64_t in_file = 0;
    UniqueFd cur;
    Producer fill = [&](uint8_t* buf, size_t n) -> Status {
        while (n > 0) {
            if (fi >= files.size()) return usage_error("internal: contents shorter than declared");
            auto [c, size] = files[fi];
            if (in_file == size) {
                ++fi;
                in_file = 0;
                cur.reset();
                continue;
            }
            size_t k = static_cast<size_t>(std::min<uint64_t>(n, size - in_file));
            ssize_t r;
            if (c->kind == Content::Spill) {
                r = ::pread(o.spill_fd, buf, k, static_cast<off_t>(c->offset + in_file));
                if (r < 0) return sys_error("read the temporary file");
                if (r == 0) return usage_error("internal: the temporary file is short");
            } else {
                if (!cur) {
                    cur.reset(::open(c->path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
                    if (!cur) return sys_error(cat("open ", c->path));
                }
                r = ::read(cur.get(), buf, k);
                if (r < 0) {
                    if (errno == EINTR) continue;
                    return sys_error(cat("read ", c->path));
                }
                if (r == 0) {
                    errno = ESTALE;
                    return sys_error(cat(c->path, ": the file shrank while it was being packed"));
                }
            }
            buf += r;
            n -= static_cast<size_t>(r);
            in_file += static_cast<uint64_t>(r);
        }
        return {};
    };
    return write_core(out, b.manifest, b.total_bytes, fill, o);
}

Result<WriteResult> write_raw(int out, const Manifest& m, std::span<const uint8_t> contents,
                              const WriteOptions& o) {
    size_t at = 0;
    Producer fill = [&](uint8_t* buf, size_t n) -> Status {
        std::copy_n(contents.data() + at, n, buf);
        at += n;
        return {};
    };
    return write_core(out, m, contents.size(), fill, o);
}

namespace {

// An unnamed file in DIR (O_TMPFILE): a kill before it is named leaves
// nothing. Not every file system has them: then a named ".NAME.XXXXXX",
// removed on failure (a kill leaves that one).
struct OutputFile {
    UniqueFd fd;
    std::string named;  // the fallback's name, or ""
};

Result<OutputFile> create_output(const std::string& dir, const std::string& path,
                                 const std::string& tmpl) {
    OutputFile f;
    long fd = trace::call(
        [&] { return cat("open(", trace::quote(dir), ", O_TMPFILE|O_WRONLY|O_CLOEXEC, 0600)"); },
        [&] { return ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600); });
    if (fd >= 0) {
        f.fd = UniqueFd(static_cast<int>(fd));
        return f;
    }
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
        return sys_error(cat("create a file beside ", path));
    f.named = tmpl;
    fd = trace::call([&] { return cat("mkstemp(", trace::quote(f.named), ")"); },
                     [&] { return ::mkostemp(f.named.data(), O_CLOEXEC); });
    if (fd < 0) return sys_error(cat("create a file beside ", path));
    f.fd = UniqueFd(static_cast<int>(fd));
    return f;
}

// Give the unnamed file a temporary name beside PATH, to rename over it:
// linkat() cannot replace a file. A kill in between leaves a complete
// file under that name.
Status name_output(OutputFile& f, const std::string& path, const std::string& tmpl) {
    std::string proc = cat("/proc/self/fd/", f.fd.get());
    for (int tries = 0; tries < 100; tries++) {
        std::string n = tmpl;
        uint8_t rnd[6];
        if (::getrandom(rnd, sizeof rnd, 0) != sizeof rnd) return sys_error("getrandom");
        static const char digits[] =
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        for (int i = 0; i < 6; i++) n[n.size() - 6 + i] = digits[rnd[i] % 62];
        long r = trace::call(
            [&] {
                return cat("linkat(AT_FDCWD, ", trace::quote(proc), ", AT_FDCWD, ", trace::quote(n),
                           ", AT_SYMLINK_FOLLOW)");
            },
            [&] {
                return ::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, n.c_str(), AT_SYMLINK_FOLLOW);
            });
        if (r == 0) {
            f.named = n;
            return {};
        }
        // Without /proc: root may name it by its descriptor.
        if (errno == ENOENT && ::linkat(f.fd.get(), "", AT_FDCWD, n.c_str(), AT_EMPTY_PATH) == 0) {
            f.named = n;
            return {};
        }
        if (errno != EEXIST) return sys_error(cat("name ", path));
    }
    return sys_error(cat("name ", path));
}

}  // namespace

Result<WriteResult> write_packed_file(const std::string& path, const Tree::Built& built,
                                      const WriteOptions& o) {
    auto slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    std::string tmpl =
        cat(dir, "/.", path.substr(slash == std::string::npos ? 0 : slash + 1), ".XXXXXX");
    OutputFile out = TRY(create_output(dir, path, tmpl));
    auto fail = [&](Error e) {
        if (!out.named.empty()) ::unlink(out.named.c_str());
        return e;
    };
    auto written = write_packed(out.fd.get(), built, o);
    if (!written) return fail(written.error());
    if (::fchmod(out.fd.get(), 0755) != 0 || ::fsync(out.fd.get()) != 0)
        return fail(sys_error(cat("write ", path)));
    if (out.named.empty())
        if (auto st = name_output(out, path, tmpl); !st) return st.error();
    long r = trace::call(
        [&] { return cat("rename(", trace::quote(out.named), ", ", trace::quote(path), ")"); },
        [&] { return ::rename(out.named.c_str(), path.c_str()); });
    if (r != 0) return fail(sys_error(cat("rename to ", path)));
    return written;
}

}  // namespace kago::pack
