// lib/image/decompress: a layer's gzip (ISA-L and zlib, the same cases for
// both), zstd or plain bytes as the tar stream they carry, and the errors
// that name the blob: corrupt, truncated, a bad CRC, trailing bytes.
#include "image/decompress.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cstring>
#include <string>
#include <vector>

#include "image/digest.hpp"
#include "image/layer.hpp"
#include "temp_dir.hpp"

using namespace kago;
using namespace kago::image;

namespace {

// Bytes from a string, at most `chunk` per read (to cross every buffer
// boundary), or a failed read at `fail_at`.
class StringSource final : public ByteSource {
  public:
    explicit StringSource(std::string s, size_t chunk = 1 << 20, size_t fail_at = std::string::npos)
        : s_(std::move(s)), chunk_(chunk), fail_at_(fail_at) {}
    ssize_t read(void* buf, size_t n) override {
        if (off_ >= fail_at_) {
            errno = EIO;
            return -1;
        }
        size_t k = std::min({n, chunk_, s_.size() - off_});
        if (fail_at_ != std::string::npos) k = std::min(k, fail_at_ - off_);
        memcpy(buf, s_.data() + off_, k);
        off_ += k;
        return static_cast<ssize_t>(k);
    }

  private:
    std::string s_;
    size_t chunk_, fail_at_, off_ = 0;
};

struct Header {
    std::string extra, name, comment;
    bool hcrc = false;
};

// One gzip member of `data`, by zlib, with the header fields asked for.
std::string gzip(const std::string& data, const Header* h = nullptr) {
    z_stream z{};
    EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    gz_header gh{};
    if (h) {
        gh.extra = reinterpret_cast<Bytef*>(const_cast<char*>(h->extra.data()));
        gh.extra_len = static_cast<uInt>(h->extra.size());
        gh.name = reinterpret_cast<Bytef*>(const_cast<char*>(h->name.c_str()));
        gh.comment = reinterpret_cast<Bytef*>(const_cast<char*>(h->comment.c_str()));
        gh.hcrc = h->hcrc;
        gh.os = 3;
        EXPECT_EQ(deflateSetHeader(&z, &gh), Z_OK);
    }
    std::string out(deflateBound(&z, data.size()) + 1024, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

std::string zstd(const std::string& data) {
    std::string out(ZSTD_compressBound(data.size()), '\0');
    size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), 3);
    EXPECT_FALSE(ZSTD_isError(n));
    out.resize(n);
    return out;
}

// Text that compresses like a file system does, not like zeros.
std::string sample(size_t n, unsigned seed = 1) {
    std::string s;
    s.reserve(n);
    unsigned x = seed;
    while (s.size() < n) {
        x = x * 1103515245 + 12345;
        s += "line " + std::to_string((x >> 16) % 1000) + " of a file, ";
        if ((x >> 8) % 7 == 0) s.push_back(static_cast<char>(x >> 24));
    }
    s.resize(n);
    return s;
}

// All of a stream through a Decompressor, read `step` bytes at a time.
Result<std::string> decode(std::string bytes, Inflater inf, size_t chunk = 1 << 20,
                           size_t step = 1 << 17, Compression* kind = nullptr) {
    StringSource src(std::move(bytes), chunk);
    auto d = TRY(Decompressor::open(src, "layer sha256:test", inf));
    if (kind) *kind = d->compression();
    std::string out;
    std::vector<char> buf(step);
    for (;;) {
        size_t n = TRY(d->read(buf.data(), buf.size()));
        if (n == 0) return out;
        out.append(buf.data(), n);
    }
}

class Gzip : public ::testing::TestWithParam<Inflater> {
  protected:
    void SetUp() override {
        if (GetParam() == Inflater::isal && !isal_available())
            GTEST_SKIP() << "libisal.so.2 does not load (make deps installs libisal-dev)";
    }
    Inflater inf() const { return GetParam(); }
    void expect_error(const std::string& bytes, const char* says) {
        for (size_t chunk : {size_t{1} << 20, size_t{7}}) {
            auto r = decode(bytes, inf(), chunk);
            ASSERT_FALSE(r.ok()) << says << " (chunk " << chunk << ")";
            EXPECT_TRUE(r.error().what.starts_with("layer sha256:test: ")) << r.error().what;
            EXPECT_NE(r.error().what.find(says), std::string::npos) << r.error().what;
        }
    }
};

TEST_P(Gzip, RoundTripsWhateverTheReadSizes) {
    std::string data = sample(3 << 20);
    std::string gz = gzip(data);
    Compression kind = Compression::none;
    auto r = decode(gz, inf(), 1 << 20, 1 << 17, &kind);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(kind, Compression::gzip);
    EXPECT_TRUE(*r == data);
    // Input in 7-byte reads, output in 1000-byte reads.
    r = decode(gz, inf(), 7, 1000);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_TRUE(*r == data);
    // The empty stream.
    r = decode(gzip(""), inf());
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(*r, "");
}

TEST_P(Gzip, ReadsEveryMember) {
    std::string a = sample(200000, 1), b = sample(300000, 2);
    // Two members, an empty one between them, and a third with a header
    // that carries FEXTRA, FNAME, FCOMMENT and FHCRC.
    Header h{std::string("AB\x04\x00xyzw", 8), "layer.tar", "a comment", true};
    std::string c = "third member\n";
    std::string gz = gzip(a) + gzip("") + gzip(b) + gzip(c, &h);
    for (size_t chunk : {size_t{1} << 20, size_t{5}}) {
        auto r = decode(gz, inf(), chunk, 4096);
        ASSERT_TRUE(r.ok()) << r.error().message();
        EXPECT_TRUE(*r == a + b + c) << "chunk " << chunk << ": " << r->size() << " bytes";
    }
}

TEST_P(Gzip, HeaderFields) {
    Header h{"\x01\x02\x03", "name.tar", "", false};
    auto r = decode(gzip("hello\n", &h), inf(), 3);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(*r, "hello\n");
    // FHCRC, the header coming in one read and a byte at a time.
    h = Header{"", "", "just a comment", true};
    for (size_t chunk : {size_t{1} << 20, size_t{1}}) {
        r = decode(gzip("hello\n", &h), inf(), chunk);
        ASSERT_TRUE(r.ok()) << r.error().message();
        EXPECT_EQ(*r, "hello\n");
    }
    // A header whose CRC does not match it.
    std::string bad = gzip("hello\n", &h);
    bad[12] = 'J';
    expect_error(bad, "gzip: header");
}

TEST_P(Gzip, CorruptData) {
    std::string gz = gzip(sample(1 << 20));
    std::string bad = gz;
    // Damage in the deflate data: whichever check sees it first, it is a
    // gzip error naming the blob.
    for (size_t at : {gz.size() / 3, gz.size() / 2, gz.size() - 20}) {
        bad = gz;
        bad[at] = static_cast<char>(bad[at] ^ 0x55);
        expect_error(bad, "gzip: ");
    }
    // The trailer's CRC-32, and its length.
    bad = gz;
    bad[bad.size() - 8] = static_cast<char>(bad[bad.size() - 8] ^ 1);
    expect_error(bad, "gzip: ");
    bad = gz;
    bad[bad.size() - 1] = static_cast<char>(bad[bad.size() - 1] ^ 1);
    expect_error(bad, "gzip: ");
    // A header that says another method than deflate.
    bad = gz;
    bad[2] = 7;
    expect_error(bad, "gzip: ");
}

TEST_P(Gzip, TruncatedStream) {
    std::string gz = gzip(sample(1 << 20));
    for (size_t keep : {size_t{10}, size_t{12}, gz.size() / 2, gz.size() - 8, gz.size() - 1}) {
        SCOPED_TRACE(keep);
        expect_error(gz.substr(0, keep), "gzip: the stream is cut short");
    }
    // The second member cut short.
    expect_error(gz + gz.substr(0, 100), "gzip: the stream is cut short");
}

TEST_P(Gzip, BytesAfterTheLastMember) {
    std::string gz = gzip("hello\n");
    expect_error(gz + "junk", "gzip: bytes after the last member are not another member");
    expect_error(gz + std::string(512, '\0'), "not another member");
    expect_error(gz + "\x1f", "not another member");
}

TEST_P(Gzip, AFailedReadIsTheSourcesError) {
    std::string gz = gzip(sample(1 << 20));
    StringSource src(gz, 1000, 50000);
    auto d = Decompressor::open(src, "layer sha256:test", inf());
    ASSERT_TRUE(d.ok());
    std::vector<char> buf(1 << 16);
    Result<size_t> n = size_t{0};
    while ((n = (*d)->read(buf.data(), buf.size())).ok() && *n > 0) {
    }
    ASSERT_FALSE(n.ok());
    EXPECT_EQ(n.error().err, EIO);
    EXPECT_EQ(n.error().what, "layer sha256:test: read");
}

INSTANTIATE_TEST_SUITE_P(Inflaters, Gzip, ::testing::Values(Inflater::isal, Inflater::zlib),
                         [](const auto& i) { return i.param == Inflater::isal ? "isal" : "zlib"; });

TEST(Decompress, BestIsIsalWhenItLoads) {
    StringSource src(gzip("x"));
    auto d = Decompressor::open(src, "layer", Inflater::best);
    ASSERT_TRUE(d.ok());
    EXPECT_STREQ((*d)->inflater(), isal_available() ? "isal" : "zlib");
}

TEST(Decompress, Zstd) {
    std::string a = sample(2 << 20, 3), b = sample(1000, 4);
    Compression kind = Compression::none;
    // Two frames in a row are one stream.
    auto r = decode(zstd(a) + zstd(b), Inflater::best, 1 << 20, 1 << 17, &kind);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(kind, Compression::zstd);
    EXPECT_TRUE(*r == a + b);
    r = decode(zstd(a), Inflater::best, 7, 999);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_TRUE(*r == a);
    std::string z = zstd(a);
    r = decode(z.substr(0, z.size() / 2), Inflater::best);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().what, "layer sha256:test: zstd: the stream is cut short");
    z[z.size() / 2] = static_cast<char>(z[z.size() / 2] ^ 0x55);
    r = decode(z, Inflater::best);
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().what.starts_with("layer sha256:test: zstd: ")) << r.error().what;
}

TEST(Decompress, PlainBytesAsTheyAre) {
    for (std::string s : {std::string(""), std::string("abc"), sample(300000)}) {
        Compression kind = Compression::gzip;
        auto r = decode(s, Inflater::best, 5, 1000, &kind);
        ASSERT_TRUE(r.ok()) << r.error().message();
        EXPECT_EQ(kind, Compression::none);
        EXPECT_TRUE(*r == s);
    }
    // One byte of gzip's magic is no gzip.
    auto r = decode("\x1f", Inflater::best);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, "\x1f");
}

// Through unpack_layer: a tar in two gzip members is one layer, whose
// diff_id is the plain tar's.
TEST(Decompress, UnpackLayerOfAMultiMemberGzip) {
    kago::test::TempDir t;
    std::string tar = t.path() + "/l.tar";
    std::string cmd =
        "cd " + t.path() +
        " && mkdir src && echo one >src/a && echo two >src/b && tar -C src -cf l.tar a b";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    int fd = open(tar.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    std::string plain(1 << 20, '\0');
    plain.resize(static_cast<size_t>(::read(fd, plain.data(), plain.size())));
    close(fd);
    std::string gz = gzip(plain.substr(0, 700)) + gzip(plain.substr(700));
    {
        std::string d = t.path() + "/d";
        ASSERT_EQ(mkdir(d.c_str(), 0755), 0);
        int dfd = open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        StringSource src(gz, 100);
        auto r = unpack_layer(src, dfd, {}, "layer x");
        close(dfd);
        ASSERT_TRUE(r.ok()) << r.error().message();
        EXPECT_EQ(r->compression, "gzip");
        EXPECT_EQ(r->diff_id, sha256(plain));
        EXPECT_EQ(r->entries, 2u);
    }
    // A bad CRC-32 in the last member, read after the tar's end: the
    // layer's error, named.
    std::string bad = gz;
    bad[bad.size() - 8] = static_cast<char>(bad[bad.size() - 8] ^ 1);
    std::string d = t.path() + "/bad";
    ASSERT_EQ(mkdir(d.c_str(), 0755), 0);
    int dfd = open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    StringSource src(bad);
    auto r = unpack_layer(src, dfd, {}, "layer x");
    close(dfd);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().what, "layer x: gzip: CRC-32 mismatch: the data is corrupt");
}

}  // namespace
