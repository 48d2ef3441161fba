#include "image/ingest.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <thread>
#include <vector>

#include "core/fd.hpp"
#include "image/digest.hpp"

namespace kago::image {

namespace {

Status write_all(int fd, const char* p, size_t n, int flags, const std::string& what) {
    while (n > 0) {
        ssize_t w = flags ? ::send(fd, p, n, flags) : ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return sys_error(what);
        }
        p += w;
        n -= static_cast<size_t>(w);
    }
    return {};
}

// The source is a regular file on the store's filesystem: a hard link to
// it in tmp/ (through /proc/self/fd, so that it is the very inode read,
// whatever its path) stands for the copy. False: copy.
bool link_source(Store& s, int src_fd, const std::string& name) {
    struct stat a, b;
    if (::fstat(src_fd, &a) != 0 || !S_ISREG(a.st_mode) || ::fstat(s.tmp_fd(), &b) != 0 || a.st_dev != b.st_dev)
        return false;
    std::string self = cat("/proc/self/fd/", src_fd);
    if (::linkat(AT_FDCWD, self.c_str(), s.tmp_fd(), name.c_str(), AT_SYMLINK_FOLLOW) != 0) return false;
    (void)::fchmod(src_fd, 0644);
    return true;
}

// The one pass: this thread reads, hashes and keeps the bytes; a second
// one unpacks them from a socket. Both tmp/ names are removed on failure.
Result<Ingested> one_pass(Store& s, int src_fd, const LayerWant& want, const UnpackOptions& u,
                          const std::string& what, bool link) {
    std::string bn = s.tmp_name("blob"), ln = s.tmp_name("layer");
    bool linked = link && link_source(s, src_fd, bn);
    UniqueFd blob;
    if (!linked) {
        blob.reset(::openat(s.tmp_fd(), bn.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
        if (!blob) return sys_error(cat("create ", s.path(), "/tmp/", bn));
    }
    auto drop = [&] {
        (void)::unlinkat(s.tmp_fd(), bn.c_str(), 0);
        (void)remove_tree(s.tmp_fd(), ln);
    };
    if (::mkdirat(s.tmp_fd(), ln.c_str(), 0755) != 0) {
        drop();
        return sys_error(cat("mkdir ", s.path(), "/tmp/", ln));
    }
    UniqueFd dest(::openat(s.tmp_fd(), ln.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    int sv[2];
    if (!dest || ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        Error e = sys_error(cat("open ", s.path(), "/tmp/", ln));
        drop();
        return e;
    }
    UniqueFd feed(sv[0]), drain(sv[1]);
    // Room for a few reads in flight, so that neither thread waits on the
    // other at every buffer.
    int room = 4 << 20;
    (void)::setsockopt(feed.get(), SOL_SOCKET, SO_SNDBUF, &room, sizeof room);
    (void)::setsockopt(drain.get(), SOL_SOCKET, SO_RCVBUF, &room, sizeof room);
    Result<UnpackStats> st = usage_error(cat(what, ": not unpacked"));
    std::thread unpacker([&] {
        st = unpack_layer(drain.get(), dest.get(), u, what);
        // Whatever was not read: the feeder's next send fails (EPIPE) and
        // it stops, instead of blocking on a full socket.
        ::shutdown(drain.get(), SHUT_RDWR);
    });

    Sha256 h;
    int64_t size = 0;
    Status fed;
    std::vector<char> buf(1 << 17);
    for (;;) {
        ssize_t r = ::read(src_fd, buf.data(), buf.size());
        if (r < 0) {
            if (errno == EINTR) continue;
            fed = sys_error(cat("read ", what));
            break;
        }
        if (r == 0) break;
        h.update(buf.data(), static_cast<size_t>(r));
        size += r;
        if (blob) {
            fed = write_all(blob.get(), buf.data(), static_cast<size_t>(r), 0, cat("write ", s.path(), "/tmp/", bn));
            if (!fed) break;
        }
        // A failed send means the unpacker stopped: its error tells why,
        // and the rest is still read, for the digest.
        if (feed && !write_all(feed.get(), buf.data(), static_cast<size_t>(r), MSG_NOSIGNAL, what)) feed.reset();
    }
    if (feed) ::shutdown(feed.get(), SHUT_WR);
    unpacker.join();
    blob.reset();
    dest.reset();

    std::string got = h.finish();
    std::optional<Error> bad;
    if (!fed) bad = std::move(fed).error();
    else if (!want.digest.empty() && got != want.digest)
        bad = usage_error(cat(what, ": digest mismatch: the descriptor says ", want.digest, ", the content hashes to ", got));
    else if (want.size >= 0 && size != want.size)
        bad = usage_error(cat(what, ": ", size, " bytes, the descriptor says ", want.size));
    else if (!st)
        bad = std::move(st).error();
    else if (st->diff_id != want.diff_id)
        bad = usage_error(cat("layer ", got, ": its diff_id is ", st->diff_id, ", the config says ", want.diff_id));
    if (bad) {
        drop();
        return std::move(*bad);
    }
    TRY(s.adopt_blob(bn, got));
    if (::renameat2(s.tmp_fd(), ln.c_str(), s.fd(), cat("layers/", hex_of(want.chain)).c_str(), RENAME_NOREPLACE) != 0) {
        Error e = sys_error(cat("rename ", s.path(), "/tmp/", ln, " to layers/", hex_of(want.chain)));
        (void)remove_tree(s.tmp_fd(), ln);
        return e;
    }
    return Ingested{BlobRef{got, size}, std::optional<UnpackStats>(std::move(st).value())};
}

}  // namespace

Result<Ingested> ingest_layer(Store& s, int src_fd, const LayerWant& want, const UnpackOptions& u,
                              const std::string& what) {
    bool have_blob = !want.digest.empty() && s.has_blob(want.digest);
    if (!want.digest.empty()) TRY(check_digest(want.digest, what));
    if (have_blob) {
        auto st = TRY(s.add_layer(want.digest, want.diff_id, want.chain, u));
        return Ingested{BlobRef{want.digest, want.size}, std::move(st)};
    }
    if (s.has_layer(want.chain)) {
        BlobRef b = TRY(s.put_blob(src_fd, want.digest, want.size, what));
        return Ingested{b, std::nullopt};
    }
    return one_pass(s, src_fd, want, u, what, want.link);
}

}  // namespace kago::image
