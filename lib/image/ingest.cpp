#include "image/ingest.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <system_error>
#include <vector>

#include "core/sys.hpp"

namespace kago::image {

namespace {

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

// A reader of the blob (the unpacker's, the hasher's): the spool file up
// to what has been written to it, waiting for more until the writer says
// it ended.
class LayerWriter::Spool final : public ByteSource {
  public:
    explicit Spool(LayerWriter& w) : w_(w) {}
    ssize_t read(void* buf, size_t n) override {
        int64_t have;
        {
            std::unique_lock<std::mutex> l(w_.mu_);
            w_.grew_.wait(l, [&] { return w_.written_ > off_ || w_.ended_ || w_.cancelled_; });
            if (w_.cancelled_) {
                errno = ECANCELED;
                return -1;
            }
            have = w_.written_ - off_;
        }
        if (have <= 0) return 0;
        size_t want = std::min(n, static_cast<size_t>(have));
        for (;;) {
            ssize_t r = ::pread(w_.spool_fd_, buf, want, off_);
            if (r < 0 && errno == EINTR) continue;
            if (r > 0) off_ += r;
            // The file is shorter than what was written to it: someone
            // else truncated it; the bytes are not the ones hashed.
            if (r == 0) {
                errno = EIO;
                return -1;
            }
            return r;
        }
    }

  private:
    LayerWriter& w_;
    int64_t off_ = 0;
};

Result<std::unique_ptr<LayerWriter>> LayerWriter::start(Store& s, const UnpackOptions& u,
                                                        std::string what, int link_fd) {
    std::unique_ptr<LayerWriter> w(new LayerWriter(s, std::move(what)));
    w->blob_name_ = s.tmp_name("blob");
    w->layer_name_ = s.tmp_name("layer");
    if (link_fd >= 0 && link_source(s, link_fd, w->blob_name_)) {
        w->spool_fd_ = link_fd;
    } else {
        w->blob_.reset(::openat(s.tmp_fd(), w->blob_name_.c_str(),
                                O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
        if (!w->blob_) return sys_error(cat("create ", s.path(), "/tmp/", w->blob_name_));
        w->spool_fd_ = w->blob_.get();
    }
    if (::mkdirat(s.tmp_fd(), w->layer_name_.c_str(), 0755) != 0)
        return sys_error(cat("mkdir ", s.path(), "/tmp/", w->layer_name_));
    w->dest_.reset(::openat(s.tmp_fd(), w->layer_name_.c_str(),
                            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!w->dest_) return sys_error(cat("open ", s.path(), "/tmp/", w->layer_name_));
    LayerWriter* self = w.get();
    UnpackOptions uo = u;
    if (u.reader) {
        // The hasher hashes every byte of the blob from the blob; a plain
        // layer's diff_id is that digest, so the unpacker leaves it.
        uo.hash_plain = false;
        try {
            self->hasher_ = std::thread([self] {
                Spool src(*self);
                Sha256 h;
                // Read, not mapped: mapping and unmapping each page cost
                // more here than copying it (a 195 MB blob hashed in
                // 185 ms mapped, 150 ms read).
                std::vector<char> buf(1 << 20);
                for (;;) {
                    ssize_t n = src.read(buf.data(), buf.size());
                    if (n < 0) {
                        self->hashed_ =
                            sys_error(cat("read ", self->s_.path(), "/tmp/", self->blob_name_));
                        return;
                    }
                    if (n == 0) break;
                    h.update(buf.data(), static_cast<size_t>(n));
                }
                self->hashed_ = h.finish();
            });
            self->hashing_ = Hashing::hasher;
        } catch (const std::system_error&) {
            uo.hash_plain = true;  // no thread to be had: hashed as before
        }
    }
    try {
        self->unpacker_ = std::thread([self, uo] {
            Spool src(*self);
            self->unpacked_ = unpack_layer(src, self->dest_.get(), uo, self->what_);
        });
    } catch (const std::system_error& e) {
        return Error{e.code().value(), cat("start the unpacker of ", self->what_), ""};
    }
    return w;
}

Status LayerWriter::feed(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    if (hashing_ == Hashing::undecided && n > 0) {
        // gzip (1f 8b) and zstd (28 b5 2f fd), the filters the unpacker
        // reads; anything else it reads as it is.
        auto u = reinterpret_cast<const unsigned char*>(p);
        bool gzip = n >= 2 && u[0] == 0x1f && u[1] == 0x8b;
        bool zstd = n >= 4 && u[0] == 0x28 && u[1] == 0xb5 && u[2] == 0x2f && u[3] == 0xfd;
        hashing_ = gzip || zstd || n < 4 ? Hashing::here : Hashing::unpacker;
    }
    if (hashing_ == Hashing::here) hash_.update(p, n);
    return append(p, n);
}

Status LayerWriter::append(const void* data, size_t n) {
    if (blob_) TRY(sys::write_all(blob_.get(), data, n, cat(s_.path(), "/tmp/", blob_name_)));
    grown(static_cast<int64_t>(n));
    return {};
}

// n more bytes are in the blob: the readers may have them.
void LayerWriter::grown(int64_t n) {
    {
        std::lock_guard<std::mutex> l(mu_);
        size_ += n;
        written_ = size_;
    }
    grew_.notify_all();
}

Status LayerWriter::copy_range(int fd, int64_t off, int64_t len) {
    if (!blob_ || size_ > 0 || copier_.joinable())
        return Error{EINVAL, cat(what_, ": copy_range after other bytes"), ""};
    // Without a hasher, the unpacker hashes a plain stream (from the
    // blob); anything else is hashed from the blob at finish().
    if (hashing_ == Hashing::undecided) hashing_ = Hashing::unpacker;
    if (hashing_ == Hashing::hasher) {
        int src = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (src < 0) return sys_error(cat("dup the source of ", what_));
        try {
            copier_ = std::thread([this, src, off, len] {
                // Behind the readers: each step it copies is read at once
                // by them, and the copy itself is the kernel's work, done
                // on whichever processor they leave idle.
                (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 5);
                copied_ = copy(src, off, len);
                ::close(src);
            });
            return {};
        } catch (const std::system_error&) {
            ::close(src);  // no thread to be had: copied here
        }
    }
    Status st = copy(fd, off, len);
    if (!st) copied_ = st;
    return st;
}

Status LayerWriter::copy(int src, int64_t off, int64_t len) {
    constexpr int64_t kStep = 4 << 20;
    std::vector<char> buf;  // only where the kernel cannot copy
    bool kernel = true;
    for (int64_t done = 0; done < len;) {
        {
            std::lock_guard<std::mutex> l(mu_);
            if (cancelled_) return Error{ECANCELED, cat("copy ", what_), ""};
        }
        size_t step = static_cast<size_t>(std::min(len - done, kStep));
        ssize_t r;
        if (kernel) {
            loff_t in = off + done;
            r = ::copy_file_range(src, &in, blob_.get(), nullptr, step, 0);
            if (r < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
                          errno == EOPNOTSUPP || errno == EBADF)) {
                kernel = false;
                continue;
            }
            if (r > 0) grown(r);
        } else {
            buf.resize(static_cast<size_t>(kStep));
            r = ::pread(src, buf.data(), step, off + done);
            if (r > 0) TRY(append(buf.data(), static_cast<size_t>(r)));
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return sys_error(cat("copy ", what_, " into ", s_.path(), "/tmp/", blob_name_));
        if (r == 0)
            return usage_error(cat(what_, ": the file ends ", len - done,
                                   " bytes before the layer does (was it cut short?)"));
        done += r;
    }
    return {};
}

void LayerWriter::stop(bool cancel) {
    {
        std::lock_guard<std::mutex> l(mu_);
        ended_ = true;
        cancelled_ = cancel;
    }
    grew_.notify_all();
}

Result<Pending> LayerWriter::finish() {
    finished_ = true;
    if (copier_.joinable()) copier_.join();
    stop(false);
    unpacker_.join();
    if (hasher_.joinable()) hasher_.join();
    dest_.reset();
    if (!copied_ || (hashing_ == Hashing::hasher && !hashed_)) {
        Error e = !copied_ ? copied_.error() : hashed_.error();
        blob_ref_ = BlobRef{"", size_};
        blob_.reset();
        drop();
        return e;
    }
    if (hashing_ == Hashing::hasher) {
        blob_ref_ = BlobRef{*hashed_, size_};
        // A plain stream's diff_id is the blob's digest (the unpacker
        // was told not to hash it).
        if (unpacked_ && unpacked_->diff_id.empty()) unpacked_->diff_id = *hashed_;
    } else if (hashing_ == Hashing::unpacker && unpacked_ && unpacked_->compression == "none") {
        blob_ref_ = BlobRef{unpacked_->diff_id, size_};
    } else {
        if (hashing_ == Hashing::unpacker) {
            // The unpack failed (or read the bytes as no plain tar): the
            // digest still names the content, from the file it went to.
            std::vector<char> buf(1 << 17);
            for (int64_t off = 0; off < size_;) {
                ssize_t r =
                    ::pread(spool_fd_, buf.data(),
                            static_cast<size_t>(std::min<int64_t>(size_ - off, 1 << 17)), off);
                if (r < 0 && errno == EINTR) continue;
                if (r <= 0) {
                    Error e = sys_error(cat("read ", s_.path(), "/tmp/", blob_name_));
                    blob_.reset();
                    drop();
                    return e;
                }
                hash_.update(buf.data(), static_cast<size_t>(r));
                off += r;
            }
        }
        blob_ref_ = BlobRef{hash_.finish(), size_};
    }
    blob_.reset();
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

// Unfinished: the unpacker fails at its next read; both temporary names go.
LayerWriter::~LayerWriter() {
    if (finished_) return;
    stop(true);
    if (copier_.joinable()) copier_.join();
    if (unpacker_.joinable()) unpacker_.join();
    if (hasher_.joinable()) hasher_.join();
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
    struct stat st;
    off_t at = want.link ? -1 : ::lseek(src_fd, 0, SEEK_CUR);
    if (at >= 0 && ::fstat(src_fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > at) {
        // A file (an OCI layout's blob): the kernel copies it into the blob.
        TRY(w->copy_range(src_fd, at, st.st_size - at));
        return settle(s, *w, want, what);
    }
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
    if (!done && got.digest.empty()) return std::move(done).error();  // the bytes failed
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
