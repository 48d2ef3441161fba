#include "image/decompress.hpp"

#include <dlfcn.h>
#include <isa-l/igzip_lib.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <mutex>

#include "core/handoff.hpp"

namespace kago::image {

namespace {

// The three calls of ISA-L's inflate this file makes, loaded once.
struct Isal {
    void (*init)(struct inflate_state*) = nullptr;
    void (*reset)(struct inflate_state*) = nullptr;
    int (*inflate)(struct inflate_state*) = nullptr;
};

const Isal* load_isal() {
    static Isal api;
    static bool ok = false;
    static std::once_flag once;
    std::call_once(once, [] {
        // The header is libisal-dev's, of the same version as libisal2
        // (Debian keeps them in step): inflate_state is laid out as the
        // library expects.
        void* h = handoff::open_library("libisal.so.2");
        if (!h) return;
        api.init = reinterpret_cast<decltype(api.init)>(::dlsym(h, "isal_inflate_init"));
        api.reset = reinterpret_cast<decltype(api.reset)>(::dlsym(h, "isal_inflate_reset"));
        api.inflate = reinterpret_cast<decltype(api.inflate)>(::dlsym(h, "isal_inflate"));
        ok = api.init && api.reset && api.inflate;
    });
    return ok ? &api : nullptr;
}

constexpr size_t kInBuf = 1 << 17;

bool gzip_magic(const unsigned char* p, size_t n) {
    return n >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}
bool zstd_magic(const unsigned char* p, size_t n) {
    return n >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd;
}

class Plain final : public Decompressor {
  public:
    Plain(ByteSource& src, std::string what)
        : Decompressor(src, std::move(what), Compression::none) {}
    Result<size_t> read(void* buf, size_t n) override {
        if (avail() > 0) {
            size_t k = std::min(n, avail());
            memcpy(buf, in_.data() + pos_, k);
            pos_ += k;
            return k;
        }
        if (eof_) return size_t{0};
        ssize_t r = src_.read(buf, n);
        if (r < 0) return Error{errno, cat(what_, ": read"), ""};
        if (r == 0) eof_ = true;
        return static_cast<size_t>(r);
    }
};

// What both inflaters share: members one after another, each checked by
// the inflater (header, CRC-32, length); after the last, nothing.
class Gzip : public Decompressor {
  public:
    Gzip(ByteSource& src, std::string what)
        : Decompressor(src, std::move(what), Compression::gzip) {}
    Result<size_t> read(void* buf, size_t n) override {
        for (;;) {
            if (member_done_ || !started_) {
                if (started_) {
                    while (avail() < 2 && !eof_) TRY(fill());
                    if (avail() == 0) return size_t{0};
                    if (!gzip_magic(in_.data() + pos_, avail()))
                        return corrupt("gzip: bytes after the last member are not another member");
                }
                TRY(start_member());
                started_ = true;
                member_done_ = false;
            }
            if (avail() == 0 && !eof_) TRY(fill());
            size_t had = avail();
            size_t out = TRY(step(buf, std::min<size_t>(n, UINT_MAX)));
            if (out > 0) return out;
            if (member_done_) continue;
            if (avail() == 0 && eof_) return corrupt("gzip: the stream is cut short");
            // Nothing taken, nothing made: the inflater wants more than
            // the buffer holds (it never does).
            if (avail() == had && had > 0) {
                if (pos_ == 0 && end_ == in_.size())
                    return corrupt("gzip: the inflater makes no progress");
                TRY(fill());
            }
        }
    }

  protected:
    // Inflate the buffered input into buf: bytes made; sets member_done_
    // when a member's trailer was read and checked.
    virtual Result<size_t> step(void* buf, size_t n) = 0;
    // Ready for a member that starts at pos_ (its magic is there).
    virtual Status start_member() = 0;
    bool started_ = false, member_done_ = false;
};

class IsalGzip final : public Gzip {
  public:
    IsalGzip(ByteSource& src, std::string what, const Isal* api)
        : Gzip(src, std::move(what)), api_(api) {}
    const char* inflater() const override { return "isal"; }

  private:
    Result<size_t> step(void* buf, size_t n) override {
        st_.next_in = in_.data() + pos_;
        st_.avail_in = static_cast<uint32_t>(avail());
        st_.next_out = static_cast<uint8_t*>(buf);
        st_.avail_out = static_cast<uint32_t>(n);
        int r = api_->inflate(&st_);
        pos_ = static_cast<size_t>(st_.next_in - in_.data());
        if (r < 0) return corrupt(cat("gzip: ", why(r)));
        if (st_.block_state == ISAL_BLOCK_FINISH) member_done_ = true;
        return n - st_.avail_out;
    }
    // The header is read here, and ISA-L given the deflate data and the
    // trailer (ISAL_GZIP_NO_HDR_VER: it checks the CRC-32 and the length):
    // ISA-L 2.30's own header reader fails a valid FHCRC when the header
    // comes in more than one read.
    Status start_member() override {
        TRY(read_header());
        api_->init(&st_);
        st_.crc_flag = ISAL_GZIP_NO_HDR_VER;
        return {};
    }
    // RFC 1952, 2.3: ID1 ID2 CM FLG MTIME(4) XFL OS, then FEXTRA (a
    // 2-byte length and that many bytes), FNAME and FCOMMENT (each up to a
    // NUL), FHCRC (the low 16 bits of the CRC-32 of the header before it).
    Status read_header() {
        hcrc_ = crc32(0, nullptr, 0);
        unsigned char h[10];
        for (auto& c : h) c = TRY(header_byte());
        if (h[2] != 8) return corrupt("gzip: not deflate (unsupported compression method)");
        if (h[3] & 0xe0) return corrupt("gzip: invalid gzip header (reserved flags set)");
        if (h[3] & 4) {
            unsigned lo = TRY(header_byte()), hi = TRY(header_byte());
            for (unsigned i = 0, len = lo | hi << 8; i < len; ++i) TRY(header_byte());
        }
        for (unsigned flag : {8u, 16u})
            if (h[3] & flag)
                while (TRY(header_byte()) != 0) {
                }
        if (h[3] & 2) {
            unsigned want = hcrc_ & 0xffff;
            unsigned lo = TRY(header_byte()), hi = TRY(header_byte());
            if ((lo | hi << 8) != want)
                return corrupt("gzip: header CRC mismatch: the header is corrupt");
        }
        return {};
    }
    Result<unsigned> header_byte() {
        while (avail() == 0) {
            if (eof_) return corrupt("gzip: the stream is cut short");
            TRY(fill());
        }
        unsigned char c = in_[pos_++];
        hcrc_ = crc32(hcrc_, &c, 1);
        return unsigned{c};
    }
    static const char* why(int r) {
        switch (r) {
            case ISAL_INVALID_BLOCK: return "invalid deflate block";
            case ISAL_INVALID_SYMBOL: return "invalid deflate symbol";
            case ISAL_INVALID_LOOKBACK: return "invalid deflate distance";
            case ISAL_INVALID_WRAPPER: return "invalid gzip header";
            case ISAL_UNSUPPORTED_METHOD: return "not deflate (unsupported compression method)";
            case ISAL_INCORRECT_CHECKSUM: return "CRC-32 mismatch: the data is corrupt";
            default: return "corrupt data";
        }
    }
    const Isal* api_;
    struct inflate_state st_;
    uLong hcrc_ = 0;
};

class ZlibGzip final : public Gzip {
  public:
    ZlibGzip(ByteSource& src, std::string what) : Gzip(src, std::move(what)) {
        memset(&z_, 0, sizeof z_);
        ok_ = inflateInit2(&z_, 15 + 16) == Z_OK;  // gzip wrapper only
    }
    ~ZlibGzip() override {
        if (ok_) inflateEnd(&z_);
    }
    const char* inflater() const override { return "zlib"; }

  private:
    Result<size_t> step(void* buf, size_t n) override {
        if (!ok_) return Error{ENOMEM, cat(what_, ": gzip: inflateInit2"), ""};
        z_.next_in = in_.data() + pos_;
        z_.avail_in = static_cast<uInt>(avail());
        z_.next_out = static_cast<Bytef*>(buf);
        z_.avail_out = static_cast<uInt>(n);
        int r = inflate(&z_, Z_NO_FLUSH);
        pos_ = static_cast<size_t>(z_.next_in - in_.data());
        if (r == Z_STREAM_END)
            member_done_ = true;
        else if (r == Z_MEM_ERROR)
            return Error{ENOMEM, cat(what_, ": gzip"), ""};
        else if (r != Z_OK && r != Z_BUF_ERROR) {
            std::string why = z_.msg ? z_.msg : "corrupt data";
            if (why == "incorrect data check") why = "CRC-32 mismatch: the data is corrupt";
            return corrupt(cat("gzip: ", why));
        }
        return n - z_.avail_out;
    }
    Status start_member() override {
        if (ok_) inflateReset(&z_);
        return {};
    }
    z_stream z_;
    bool ok_ = false;
};

class Zstd final : public Decompressor {
  public:
    Zstd(ByteSource& src, std::string what)
        : Decompressor(src, std::move(what), Compression::zstd), d_(ZSTD_createDCtx()) {}
    ~Zstd() override { ZSTD_freeDCtx(d_); }
    Result<size_t> read(void* buf, size_t n) override {
        if (!d_) return Error{ENOMEM, cat(what_, ": zstd: ZSTD_createDCtx"), ""};
        for (;;) {
            if (avail() == 0 && !eof_) TRY(fill());
            // 0: the last frame ended and all of it was given out.
            if (avail() == 0 && eof_ && left_ == 0) return size_t{0};
            ZSTD_inBuffer ib{in_.data() + pos_, avail(), 0};
            ZSTD_outBuffer ob{buf, n, 0};
            size_t r = ZSTD_decompressStream(d_, &ob, &ib);
            pos_ += ib.pos;
            if (ZSTD_isError(r)) return corrupt(cat("zstd: ", ZSTD_getErrorName(r)));
            left_ = r;
            if (ob.pos > 0) return ob.pos;
            if (avail() == 0 && eof_ && left_ != 0) return corrupt("zstd: the stream is cut short");
            if (ib.pos == 0 && avail() > 0) {
                if (pos_ == 0 && end_ == in_.size())
                    return corrupt("zstd: the decoder makes no progress");
                TRY(fill());
            }
        }
    }

  private:
    ZSTD_DCtx* d_;
    size_t left_ = 1;
};

}  // namespace

const char* compression_name(Compression c) {
    switch (c) {
        case Compression::gzip: return "gzip";
        case Compression::zstd: return "zstd";
        case Compression::none: break;
    }
    return "none";
}

bool isal_available() {
    return load_isal() != nullptr;
}

Decompressor::Decompressor(ByteSource& src, std::string what, Compression kind)
    : src_(src), what_(std::move(what)), kind_(kind) {}

Status Decompressor::fill() {
    if (pos_ > 0) {
        memmove(in_.data(), in_.data() + pos_, avail());
        end_ -= pos_;
        pos_ = 0;
    }
    if (end_ == in_.size()) return {};
    ssize_t r = src_.read(in_.data() + end_, in_.size() - end_);
    if (r < 0) return Error{errno, cat(what_, ": read"), ""};
    if (r == 0) eof_ = true;
    end_ += static_cast<size_t>(r > 0 ? r : 0);
    return {};
}

Error Decompressor::corrupt(std::string_view why) const {
    return usage_error(cat(what_, ": ", why));
}

Result<std::unique_ptr<Decompressor>> Decompressor::open(ByteSource& src, std::string what,
                                                         Inflater inflater) {
    std::vector<unsigned char> in(kInBuf);
    size_t end = 0;
    bool eof = false;
    while (end < 4 && !eof) {
        ssize_t r = src.read(in.data() + end, in.size() - end);
        if (r < 0) return Error{errno, cat(what, ": read"), ""};
        if (r == 0) eof = true;
        end += static_cast<size_t>(r > 0 ? r : 0);
    }
    std::unique_ptr<Decompressor> d;
    if (gzip_magic(in.data(), end)) {
        const Isal* isal = inflater == Inflater::zlib ? nullptr : load_isal();
        if (inflater == Inflater::isal && !isal)
            return Error{0, cat(what, ": gzip: cannot load libisal.so.2"),
                         "ISA-L's inflate needs libisal2 (Debian: apt-get install libisal2)"};
        if (isal)
            d = std::make_unique<IsalGzip>(src, std::move(what), isal);
        else
            d = std::make_unique<ZlibGzip>(src, std::move(what));
    } else if (zstd_magic(in.data(), end)) {
        d = std::make_unique<Zstd>(src, std::move(what));
    } else {
        d = std::make_unique<Plain>(src, std::move(what));
    }
    d->in_ = std::move(in);
    d->end_ = end;
    d->eof_ = eof;
    return d;
}

}  // namespace kago::image
