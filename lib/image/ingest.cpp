#include "image/ingest.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "core/sys.hpp"

namespace kago::image {

namespace {

// sys::write_all for the socket, without SIGPIPE when its reader is gone.
bool send_all(int fd, const char* p, size_t n) {
    while (n > 0) {
        ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        p += w;
        n -= static_cast<size_t>(w);
    }
    return true;
}

// A hard link to src_fd's inode (through /proc/self/fd, so that it is the
// very inode read, whatever its path now) as tmp/NAME. False: copy.
bool link_source(Store& s, int src_fd, const std::string& name) {
    struct stat a, b;
    if (::fstat(src_fd, &a) != 0 || !S_ISREG(a.st_mode) || ::fstat(s.tmp_fd(), &b) != 0 ||
        a.st_dev != b.st_dev)
        return false;
    std::string self = cat("/proc/self/fd/", src_fd);
    if (::linkat(AT_FDCWD, self.c_str(), s.tmp_fd(), name.c_str(), AT_SYMLINK_FOLLOW) != 0)
        return false;
    (void)::fchmod(src_fd, 0644);
    return true;
}

}  // namespace

Result<std::unique_ptr<LayerWriter>> LayerWriter::start(Store& s, const UnpackOptions& u,
                                                        std::string what, int link_fd) {
    std::unique_ptr<LayerWriter> w(new LayerWriter(s, std::move(what)));
    w->blob_name_ = s.tmp_name("blob");
    w->layer_name_ = s.tmp_name("layer");
    if (link_fd < 0 || !link_source(s, link_fd, w->blob_name_)) {
        w->blob_.reset(::openat(s.tmp_fd(), w->blob_name_.c_str(),
                                O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
        if (!w->blob_) return sys_error(cat("create ", s.path(), "/tmp/", w->blob_name_));
    }
    if (::mkdirat(s.tmp_fd(), w->layer_name_.c_str(), 0755) != 0)
        return sys_error(cat("mkdir ", s.path(), "/tmp/", w->layer_name_));
    w->dest_.reset(::openat(s.tmp_fd(), w->layer_name_.c_str(),
                            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!w->dest_) return sys_error(cat("open ", s.path(), "/tmp/", w->layer_name_));
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return sys_error("socketpair");
    w->feed_.reset(sv[0]);
    w->drain_.reset(sv[1]);
    // Room for a few buffers in flight, so that neither thread waits on
    // the other at every one.
    int room = 4 << 20;
    (void)::setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &room, sizeof room);
    (void)::setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &room, sizeof room);
    LayerWriter* self = w.get();
    self->unpacker_ = std::thread([self, u] {
        self->unpacked_ = unpack_layer(self->drain_.get(), self->dest_.get(), u, self->what_);
        // What it did not read: the feeder's next send fails (EPIPE) and it
        // stops handing bytes over, instead of blocking on a full socket.
        ::shutdown(self->drain_.get(), SHUT_RDWR);
    });
    return w;
}

Status LayerWriter::feed(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    hash_.update(p, n);
    size_ += static_cast<int64_t>(n);
    if (blob_) TRY(sys::write_all(blob_.get(), p, n, cat(s_.path(), "/tmp/", blob_name_)));
    // A failed send means the unpacker stopped: finish() reports its error;
    // the bytes are still taken, for the digest.
    if (feed_ && !send_all(feed_.get(), p, n)) feed_.reset();
    return {};
}

Result<Pending> LayerWriter::finish() {
    finished_ = true;
    if (feed_) ::shutdown(feed_.get(), SHUT_WR);
    unpacker_.join();
    feed_.reset();
    blob_.reset();
    dest_.reset();
    blob_ref_ = BlobRef{hash_.finish(), size_};
    if (!unpacked_) {
        drop();
        return std::move(unpacked_).error();
    }
    return Pending{blob_ref_, std::move(unpacked_).value(), blob_name_, layer_name_};
}

void LayerWriter::drop() {
    (void)::unlinkat(s_.tmp_fd(), blob_name_.c_str(), 0);
    (void)remove_tree(s_.tmp_fd(), layer_name_);
}

LayerWriter::~LayerWriter() {
    if (finished_) return;
    if (unpacker_.joinable()) {
        if (feed_) ::shutdown(feed_.get(), SHUT_RDWR);
        unpacker_.join();
    }
    feed_.reset();
    blob_.reset();
    dest_.reset();
    drop();
}

Result<bool> publish(Store& s, const Pending& p, const std::string& chain) {
    if (s.has_layer(chain)) {
        (void)remove_tree(s.tmp_fd(), p.layer_tmp);
        TRY(s.adopt_blob(p.blob_tmp, p.blob.digest));
        return false;
    }
    TRY(s.adopt_blob(p.blob_tmp, p.blob.digest));
    std::string to = cat("layers/", hex_of(chain));
    if (::renameat2(s.tmp_fd(), p.layer_tmp.c_str(), s.fd(), to.c_str(), RENAME_NOREPLACE) != 0) {
        Error e = sys_error(cat("rename ", s.path(), "/tmp/", p.layer_tmp, " to ", to));
        (void)remove_tree(s.tmp_fd(), p.layer_tmp);
        return e;
    }
    return true;
}

void discard(Store& s, const Pending& p) {
    (void)::unlinkat(s.tmp_fd(), p.blob_tmp.c_str(), 0);
    (void)remove_tree(s.tmp_fd(), p.layer_tmp);
}

Result<Ingested> ingest_layer(Store& s, int src_fd, const LayerWant& want, const UnpackOptions& u,
                              const std::string& what) {
    if (!want.digest.empty()) TRY(check_digest(want.digest, what));
    if (!want.digest.empty() && s.has_blob(want.digest)) {
        auto st = TRY(s.add_layer(want.digest, want.diff_id, want.chain, u));
        return Ingested{BlobRef{want.digest, want.size}, std::move(st)};
    }
    if (s.has_layer(want.chain)) {
        BlobRef b = TRY(s.put_blob(src_fd, want.digest, want.size, what));
        return Ingested{b, std::nullopt};
    }
    auto w = TRY(LayerWriter::start(s, u, what, want.link ? src_fd : -1));
    std::vector<char> buf(1 << 17);
    for (;;) {
        ssize_t r = ::read(src_fd, buf.data(), buf.size());
        if (r < 0) {
            if (errno == EINTR) continue;
            return sys_error(cat("read ", what));
        }
        if (r == 0) break;
        TRY(w->feed(buf.data(), static_cast<size_t>(r)));
    }
    return settle(s, *w, want, what);
}

Result<Ingested> settle(Store& s, LayerWriter& w, const LayerWant& want, const std::string& what) {
    // The blob's own checks first: wrong bytes are named as such, whatever
    // the unpacker made of them.
    auto done = w.finish();
    const BlobRef& got = w.blob();
    Status checked = check_blob(got, want.digest, want.size, what);
    if (!checked) {
        if (done) discard(s, *done);
        return std::move(checked).error();
    }
    Pending p = TRY(std::move(done));
    if (p.stats.diff_id != want.diff_id) {
        discard(s, p);
        return usage_error(cat("layer ", p.blob.digest, ": its diff_id is ", p.stats.diff_id,
                               ", the config says ", want.diff_id));
    }
    bool made = TRY(publish(s, p, want.chain));
    return Ingested{p.blob, made ? std::optional<UnpackStats>(std::move(p.stats)) : std::nullopt};
}

}  // namespace kago::image
