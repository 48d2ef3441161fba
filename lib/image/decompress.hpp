// A layer blob's bytes as the plain tar stream they carry: gzip, zstd or
// uncompressed, told apart by their first bytes, decompressed as they are
// read, in bounded memory (a 128 KiB input buffer and the decoder's state,
// whatever the layer's size).
//
// gzip is inflated by Intel ISA-L's streaming igzip (isal_inflate: several
// times zlib's speed, which made the inflate most of an import's time),
// loaded with dlopen(3) from libisal.so.2 the first time a gzip layer is
// read: Debian ships no libisal.a, and the programs that read layers link
// statically. Without libisal2 the same stream is inflated by zlib, slower
// but the same bytes and the same checks. Either way: every member of a
// multi-member gzip is read, each member's CRC-32 and length are checked,
// and anything after the last member that is not another member is an
// error. zstd is libzstd's streaming decoder (several frames in a row are
// one stream).
//
//   auto d = TRY(Decompressor::open(src, "layer sha256:..."));
//   for (;;) { size_t n = TRY(d->read(buf, sizeof buf)); if (n == 0) break; ... }
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "image/layer.hpp"

namespace kago::image {

enum class Compression { none, gzip, zstd };
// "none", "gzip", "zstd" (UnpackStats::compression).
const char* compression_name(Compression c);

enum class Inflater {
    best,  // ISA-L when libisal.so.2 loads, else zlib
    isal,  // ISA-L, an error when it does not load
    zlib,
};
// Whether ISA-L's inflate is there (libisal.so.2 loads, and has what is used).
bool isal_available();

class Decompressor {
  public:
    // Reads src's first bytes to tell the compression. `what` names the
    // blob in every error ("layer sha256:...: gzip: ...").
    static Result<std::unique_ptr<Decompressor>> open(ByteSource& src, std::string what,
                                                      Inflater inflater = Inflater::best);
    virtual ~Decompressor() = default;
    Decompressor(const Decompressor&) = delete;
    Decompressor& operator=(const Decompressor&) = delete;

    // Up to n plain bytes into buf (n > 0); 0 at the end of the stream. A
    // stream cut short, corrupt data, a failed checksum and a failed read
    // of src are errors naming the blob.
    virtual Result<size_t> read(void* buf, size_t n) = 0;
    Compression compression() const { return kind_; }
    // Which inflater a gzip stream is read with ("isal", "zlib"), "" for others.
    virtual const char* inflater() const { return ""; }

  protected:
    Decompressor(ByteSource& src, std::string what, Compression kind);
    // More input: reads src into in_ after the unread bytes (moved to the
    // front). At the end of src, eof_ is set and nothing is added.
    Status fill();
    size_t avail() const { return end_ - pos_; }
    Error corrupt(std::string_view why) const;

    ByteSource& src_;
    std::string what_;
    Compression kind_;
    std::vector<unsigned char> in_;
    size_t pos_ = 0, end_ = 0;
    bool eof_ = false;
};

}  // namespace kago::image
