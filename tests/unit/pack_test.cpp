// lib/pack: the format, the tar reader, the tree, writing, reading,
// extracting and the cache. Nothing here needs privilege.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "core/state.hpp"
#include "../pack/entries.hpp"
#include "pack/cache.hpp"
#include "pack/format.hpp"
#include "pack/reader.hpp"
#include "pack/runtime.hpp"
#include "pack/tar.hpp"
#include "pack/tree.hpp"
#include "pack/writer.hpp"

using namespace kago;
using namespace kago::pack;

namespace {

const uint8_t kStub[] = {0x7f, 'E', 'L', 'F', 's', 't', 'u', 'b'};

WriteOptions small_opts() {
    WriteOptions o;
    o.frame_size = kMinFrameSize;
    o.stub = std::span<const uint8_t>(kStub, sizeof kStub);
    o.threads = 2;
    return o;
}

struct TempDir {
    std::string path;
    TempDir() {
        char t[] = "/tmp/pack-test-XXXXXX";
        path = mkdtemp(t);
    }
    ~TempDir() { (void)remove_tree_at(AT_FDCWD, path, path); }
};

std::vector<uint8_t> file_bytes(int fd) {
    struct stat st;
    fstat(fd, &st);
    std::vector<uint8_t> b(static_cast<size_t>(st.st_size));
    EXPECT_EQ(pread(fd, b.data(), b.size(), 0), static_cast<ssize_t>(b.size()));
    return b;
}

int memfd_with(const std::vector<uint8_t>& b) {
    int fd = memfd_create("pack", MFD_CLOEXEC);
    EXPECT_EQ(write(fd, b.data(), b.size()), static_cast<ssize_t>(b.size()));
    return fd;
}

Manifest simple_manifest() {
    Manifest m;
    m.config.command = {"/bin/sh", "-c", "echo hi"};
    m.config.env = {"A=1"};
    m.config.hostname = "box";
    m.entries.push_back(test::dir(0, ""));
    m.entries.push_back(test::dir(0, "etc"));
    m.entries.push_back(test::file(1, "hello", 0, 6));
    m.entries.push_back(test::symlink(0, "link", "etc/hello"));
    m.entries.push_back(test::hardlink(0, "hard", 2));
    return m;
}

Trailer trailer_for(const Manifest& m, uint64_t total) {
    Trailer t;
    t.total_entries = m.entries.size();
    t.total_bytes = total;
    return t;
}

// A ustar header block for tar tests.
std::string tar_header(const std::string& name, char type, uint64_t size, const std::string& link = "",
                       bool base256_size = false) {
    std::string h(512, '\0');
    memcpy(&h[0], name.data(), std::min<size_t>(name.size(), 100));
    snprintf(&h[100], 8, "%07o", 0644);
    snprintf(&h[108], 8, "%07o", 0);
    snprintf(&h[116], 8, "%07o", 0);
    if (base256_size) {
        h[124] = static_cast<char>(0x80);
        for (int i = 0; i < 8; ++i) h[135 - i] = static_cast<char>(size >> (8 * i));
    } else {
        snprintf(&h[124], 12, "%011llo", static_cast<unsigned long long>(size));
    }
    snprintf(&h[136], 12, "%011o", 1000);
    h[156] = type;
    memcpy(&h[157], link.data(), std::min<size_t>(link.size(), 100));
    memcpy(&h[257], "ustar\0" "00", 8);
    memset(&h[148], ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    snprintf(&h[148], 8, "%06o", sum);
    return h;
}
std::string tar_data(const std::string& d) {
    std::string s = d;
    s.resize((d.size() + 511) / 512 * 512, '\0');
    return s;
}
std::string pax_record(const std::string& k, const std::string& v) {
    std::string body = " " + k + "=" + v + "\n";
    size_t len = body.size() + 1;
    while (std::to_string(len).size() + body.size() != len) ++len;
    return std::to_string(len) + body;
}

std::vector<TarEntry> read_all(const std::string& tar, Status* err = nullptr) {
    size_t pos = 0;
    TarReader r([&](uint8_t* buf, size_t n) -> Result<size_t> {
        size_t k = std::min(n, tar.size() - pos);
        memcpy(buf, tar.data() + pos, k);
        pos += k;
        return k;
    });
    std::vector<TarEntry> out;
    TarEntry e;
    for (;;) {
        auto more = r.next(e);
        if (!more) {
            if (err) *err = more.error();
            return out;
        }
        if (!*more) break;
        std::string data;
        auto s = r.read_data([&](const uint8_t* p, size_t n) -> Status {
            data.append(reinterpret_cast<const char*>(p), n);
            return {};
        });
        if (!s) {
            if (err) *err = s;
            return out;
        }
        e.linkname = e.type == Type::File ? data : e.linkname;
        out.push_back(e);
    }
    return out;
}

}  // namespace

// --- trailer and frame table --------------------------------------------

// A file with no frames: the manifest at 100, 50 bytes, then the trailer.
static Trailer framesless_trailer() {
    Trailer t;
    t.payload_offset = 100;
    t.frame_count = 0;
    t.frame_size = kMinFrameSize;
    t.manifest_offset = 100;
    t.manifest_csize = 50;
    t.manifest_usize = 80;
    t.frame_table_offset = 150;
    t.total_entries = 3;
    t.file_size = 150 + kTrailerSize;
    return t;
}

TEST(PackTrailer, RoundTrip) {
    Trailer t = framesless_trailer();
    t.manifest_hash[0] = 7;
    auto b = encode_trailer(t);
    auto d = decode_trailer(b, t.file_size);
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_EQ(d->manifest_offset, 100u);
    EXPECT_EQ(d->manifest_hash[0], 7);
}

TEST(PackTrailer, Rejects) {
    Trailer t = framesless_trailer();
    auto b = encode_trailer(t);
    EXPECT_FALSE(decode_trailer(b, t.file_size + 1));  // appended to
    auto bad = b;
    bad[0] = 'X';
    EXPECT_FALSE(decode_trailer(bad, t.file_size));
    bad = b;
    bad[8] = 3;  // version
    auto r = decode_trailer(bad, t.file_size);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().what.find("version 3"), std::string::npos);
    Trailer o = t;
    o.frame_table_offset = 10000;  // outside
    EXPECT_FALSE(decode_trailer(encode_trailer(o), t.file_size));
    o = t;
    o.manifest_csize = 49;  // gap
    EXPECT_FALSE(decode_trailer(encode_trailer(o), t.file_size));
    o = t;
    o.total_bytes = 1;  // bytes without frames
    EXPECT_FALSE(decode_trailer(encode_trailer(o), t.file_size));
    o = t;
    o.frame_size = 1 << 30;
    EXPECT_FALSE(decode_trailer(encode_trailer(o), t.file_size));
    EXPECT_FALSE(decode_trailer(std::span<const uint8_t>(b).first(100), t.file_size));
}

TEST(PackTrailer, FrameTable) {
    Trailer t;
    t.payload_offset = 10;
    t.frame_size = kMinFrameSize;
    t.frame_count = 2;
    t.total_bytes = kMinFrameSize + 5;
    t.manifest_offset = 10 + 30 + 20;
    std::vector<Frame> f(2);
    f[0] = {10, 30, kMinFrameSize, {}};
    f[1] = {40, 20, 5, {}};
    auto b = encode_frame_table(f);
    ASSERT_TRUE(decode_frame_table(b, t));
    f[1].usize = 6;  // more than declared
    EXPECT_FALSE(decode_frame_table(encode_frame_table(f), t));
    f[1] = {41, 19, 5, {}};  // gap
    EXPECT_FALSE(decode_frame_table(encode_frame_table(f), t));
}

// --- manifest ----------------------------------------------------------

TEST(PackManifest, RoundTrip) {
    Manifest m = simple_manifest();
    m.entries[2].xattrs = {{"user.a", "b"}};
    auto b = encode_manifest(m);
    auto d = decode_manifest(b, trailer_for(m, 6));
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_EQ(d->config.command, m.config.command);
    EXPECT_EQ(d->config.env, m.config.env);
    EXPECT_EQ(d->config.hostname, "box");
    ASSERT_EQ(d->entries.size(), 5u);
    EXPECT_EQ(d->entries[3].target, "etc/hello");
    EXPECT_EQ(d->entries[4].link, 2u);
    EXPECT_EQ(d->entries[2].xattrs[0].first, "user.a");
    EXPECT_EQ(entry_path(*d, 2), "etc/hello");
}

TEST(PackManifest, RejectsUnsafeEntries) {
    auto rejects = [](auto mutate) {
        Manifest m = simple_manifest();
        uint64_t total = 6;
        mutate(m, total);
        return !decode_manifest(encode_manifest(m), trailer_for(m, total));
    };
    EXPECT_TRUE(rejects([](Manifest& m, uint64_t&) { m.entries[2].name = ".."; }));
    EXPECT_TRUE(rejects([](Manifest& m, uint64_t&) { m.entries[2].name = "."; }));
    EXPECT_TRUE(rejects([](Manifest& m, uint64_t&) { m.entries[2].name = "a/b"; }));
    EXPECT_TRUE(rejects([](Manifest& m, uint64_t&) { m.entries[2].name = ""; }));
    EXPECT_TRUE(rejects([](Manifest& m, uint64_t&) { m.entries[2].parent = 3; }));   // a symlink
    EXPECT_TRUE(rejects([](Manifest& m, uint64_t&) { m.entries[2].parent = 2; }));   // itself
    EXPECT_TRUE(rejects([](Manifest& m, uint64_t&) { m.entries[4].link = 3; }));     // to a symlink
    EXPECT_TRUE(rejects([](Manifest& m, uint64_t&) { m.entries[4].link = 4; }));     // to itself
    EXPECT_TRUE(rejects([](Manifest& m, uint64_t&) { m.entries[4].link = 0; }));     // to the root
    EXPECT_TRUE(rejects([](Manifest& m, uint64_t&) { m.entries[3].name = "etc"; })); // duplicate
    EXPECT_TRUE(rejects([](Manifest&, uint64_t& t) { t = 5; }));                   // outside
    EXPECT_TRUE(rejects([](Manifest& m, uint64_t&) { m.entries[2].offset = 1; }));
    EXPECT_TRUE(rejects([](Manifest& m, uint64_t&) { m.entries[0].type = Type::File; }));
    EXPECT_TRUE(rejects([](Manifest& m, uint64_t&) { m.entries[2].mode = 0100644; }));
    EXPECT_TRUE(rejects([](Manifest& m, uint64_t&) { m.config.net = "bridge"; }));
    EXPECT_FALSE(rejects([](Manifest&, uint64_t&) {}));
}

TEST(PackManifest, TruncatedIsAnError) {
    Manifest m = simple_manifest();
    auto b = encode_manifest(m);
    for (size_t n = 0; n < b.size(); ++n)
        EXPECT_FALSE(decode_manifest(std::span<const uint8_t>(b).first(n), trailer_for(m, 6))) << n;
}

TEST(PackManifest, Config) {
    Config c;
    c.user = "65534";
    c.keep_caps = {"chown"};
    c.read_only = true;
    c.sys = true;
    auto d = decode_config(encode_config(c));
    ASSERT_TRUE(d);
    EXPECT_EQ(d->user, "65534");
    EXPECT_TRUE(d->read_only);
    EXPECT_TRUE(d->sys);
    EXPECT_FALSE(decode_config(encode_config(Config{}))->sys);
    EXPECT_EQ(d->keep_caps, c.keep_caps);
}

TEST(PackManifest, DefaultFilterIsCompiledForTheKeptCapabilities) {
    Config c;
    auto plain = default_filter(c);
    ASSERT_TRUE(plain) << plain.error().message();
    EXPECT_EQ(plain->size() % sizeof(sock_filter), 0u);
    EXPECT_GT(plain->size(), 20 * sizeof(sock_filter));
    c.keep_caps = {"sys_admin"};  // mount, unshare... become allowed: another program
    auto admin = default_filter(c);
    ASSERT_TRUE(admin);
    EXPECT_NE(*plain, *admin);
    c.seccomp_bpf = *plain;
    auto d = decode_config(encode_config(c));
    ASSERT_TRUE(d);
    EXPECT_EQ(d->seccomp_bpf, *plain);
    c.seccomp_bpf = "1234567";  // not whole instructions
    EXPECT_FALSE(decode_config(encode_config(c)));
    c.keep_caps = {"no_such_cap"};
    EXPECT_FALSE(default_filter(c));
}

TEST(PackFormat, Hex) {
    std::vector<uint8_t> b{0, 0xab, 0xff};
    EXPECT_EQ(hex(b), "00abff");
    EXPECT_EQ(*unhex("00abFF"), b);
    EXPECT_FALSE(unhex("0"));
    EXPECT_FALSE(unhex("zz"));
}

// --- tar ----------------------------------------------------------------

TEST(PackTar, Ustar) {
    std::string t = tar_header("./etc/", '5', 0) + tar_header("./etc/hello", '0', 6) + tar_data("hello\n") +
                    tar_header("./etc/link", '2', 0, "hello") + tar_header("./etc/hard", '1', 0, "./etc/hello") +
                    std::string(1024, '\0');
    Status err;
    auto es = read_all(t, &err);
    ASSERT_TRUE(err) << err.error().message();
    ASSERT_EQ(es.size(), 4u);
    EXPECT_EQ(es[0].type, Type::Dir);
    EXPECT_EQ(es[1].size, 6u);
    EXPECT_EQ(es[1].linkname, "hello\n");  // read_all puts the data there
    EXPECT_EQ(es[1].mtime, 01750);
    EXPECT_EQ(es[2].type, Type::Symlink);
    EXPECT_EQ(es[3].type, Type::Hardlink);
}

TEST(PackTar, GnuLongNameAndBase256) {
    std::string longname(300, 'n');
    std::string t = tar_header("././@LongLink", 'L', longname.size() + 1) + tar_data(longname + '\0') +
                    tar_header("short", '0', 3, "", true) + tar_data("abc") + std::string(1024, '\0');
    Status err;
    auto es = read_all(t, &err);
    ASSERT_TRUE(err) << err.error().message();
    ASSERT_EQ(es.size(), 1u);
    EXPECT_EQ(es[0].name, longname);
    EXPECT_EQ(es[0].size, 3u);
}

TEST(PackTar, Pax) {
    std::string recs = pax_record("path", "very/long/" + std::string(200, 'p')) +
                       pax_record("SCHILY.xattr.user.k", "v") + pax_record("mtime", "1700000000.5");
    std::string t = tar_header("pax", 'x', recs.size()) + tar_data(recs) + tar_header("short", '0', 0) +
                    std::string(1024, '\0');
    Status err;
    auto es = read_all(t, &err);
    ASSERT_TRUE(err) << err.error().message();
    ASSERT_EQ(es.size(), 1u);
    EXPECT_EQ(es[0].name.size(), 210u);
    EXPECT_EQ(es[0].mtime, 1700000000);
    ASSERT_EQ(es[0].xattrs.size(), 1u);
    EXPECT_EQ(es[0].xattrs[0].first, "user.k");
}

TEST(PackTar, Rejects) {
    auto fails = [](const std::string& t) {
        Status err;
        read_all(t, &err);
        return !err;
    };
    std::string h = tar_header("f", '0', 6);
    std::string bad = h;
    bad[0] = 'g';  // checksum no longer matches
    EXPECT_TRUE(fails(bad + tar_data("hello\n")));
    EXPECT_TRUE(fails(h + "hel"));  // truncated data
    EXPECT_TRUE(fails(tar_header("s", 'S', 0)));
    EXPECT_TRUE(fails(tar_header("m", 'M', 0)));
    EXPECT_TRUE(fails(tar_header("q", 'Q', 0)));
    EXPECT_TRUE(fails(tar_header("pax", 'x', 5) + tar_data("9 a=b\n")));  // bad length
    EXPECT_TRUE(fails(tar_header("pax", 'x', 20) + tar_data(pax_record("GNU.sparse.map", "0"))));
    EXPECT_TRUE(fails(tar_header("l", '2', 0)));  // link without target
    EXPECT_TRUE(fails(tar_header("L", 'L', 1 << 20)));
}

TEST(PackTar, NormalizeName) {
    EXPECT_EQ(*normalize_name("./a//b/./c/"), "a/b/c");
    EXPECT_EQ(*normalize_name("/etc/passwd"), "etc/passwd");
    EXPECT_EQ(*normalize_name("./"), "");
    EXPECT_FALSE(normalize_name("a/../../b"));
    EXPECT_FALSE(normalize_name(".."));
}

// --- tree ---------------------------------------------------------------

TEST(PackTree, SortsAndLinks) {
    Tree t;
    Node f;
    f.meta.type = Type::File;
    f.meta.size = 3;
    f.meta.mtime = 5000;
    f.content = {Content::Spill, "", 0};
    ASSERT_TRUE(t.add("z/file", f));
    Node h;
    h.meta.type = Type::Hardlink;
    h.link_path = "z/file";
    ASSERT_TRUE(t.add("a/link", h));
    auto b = t.build(1000);
    ASSERT_TRUE(b) << b.error().message();
    auto& es = b->manifest.entries;
    // "", a, a/link (holds the data), z, z/file (a link to a/link)
    ASSERT_EQ(es.size(), 5u);
    EXPECT_EQ(es[2].name, "link");
    EXPECT_EQ(es[2].type, Type::File);
    EXPECT_EQ(es[2].mtime, 1000);  // clamped
    EXPECT_EQ(es[4].type, Type::Hardlink);
    EXPECT_EQ(es[4].link, 2u);
    EXPECT_EQ(b->total_bytes, 3u);
    Trailer tr = trailer_for(b->manifest, 3);
    EXPECT_TRUE(decode_manifest(encode_manifest(b->manifest), tr));
}

TEST(PackTree, ReplacingADirectoryDropsItsChildren) {
    Tree t;
    Node f;
    f.meta.type = Type::File;
    ASSERT_TRUE(t.add("d/x", f));
    ASSERT_TRUE(t.add("d", f));
    auto b = t.build(std::nullopt);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->manifest.entries.size(), 2u);
}

TEST(PackTree, HardLinkToNothing) {
    Tree t;
    Node h;
    h.meta.type = Type::Hardlink;
    h.link_path = "missing";
    ASSERT_TRUE(t.add("l", h));
    EXPECT_FALSE(t.build(std::nullopt));
}

TEST(PackTree, ScanDirectory) {
    TempDir d;
    std::string r = d.path + "/root";
    mkdir(r.c_str(), 0755);
    mkdir((r + "/sub").c_str(), 0700);
    std::ofstream(r + "/sub/f") << "data";
    link((r + "/sub/f").c_str(), (r + "/g").c_str());
    symlink("sub/f", (r + "/s").c_str());
    Tree t;
    ASSERT_TRUE(scan_directory(t, r, {}));
    auto b = t.build(std::nullopt);
    ASSERT_TRUE(b);
    auto& es = b->manifest.entries;
    ASSERT_EQ(es.size(), 5u);  // "", g, s, sub, sub/f
    EXPECT_EQ(es[1].type, Type::File);
    EXPECT_EQ(es[2].type, Type::Symlink);
    EXPECT_EQ(es[3].mode, 0700u);
    EXPECT_EQ(es[4].type, Type::Hardlink);
}

// --- ELF ----------------------------------------------------------------

TEST(PackElf, ReadsNeeded) {
    int fd = open("/bin/true", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    auto b = file_bytes(fd);
    close(fd);
    auto info = read_elf(b, "/bin/true");
    ASSERT_TRUE(info) << info.error().message();
    EXPECT_FALSE(info->interpreter.empty());
    bool libc = false;
    for (auto& n : info->needed) libc |= n.starts_with("libc.so");
    EXPECT_TRUE(libc);
    std::vector<uint8_t> junk(100, 1);
    EXPECT_FALSE(read_elf(junk, "junk"));
}

// --- write, read, extract -------------------------------------------------

TEST(PackFile, WriteOpenExtract) {
    Manifest m = simple_manifest();
    std::string data = "hello\n";
    int fd = memfd_create("p", MFD_CLOEXEC);
    auto w = write_raw(fd, m, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), 6), small_opts());
    ASSERT_TRUE(w) << w.error().message();
    auto p = Packed::open(UniqueFd(fd));
    ASSERT_TRUE(p) << p.error().message();
    EXPECT_EQ(p->trailer().payload_offset, sizeof kStub);
    ASSERT_TRUE(p->load_manifest());
    EXPECT_EQ(p->manifest().config.hostname, "box");
    TempDir d;
    UniqueFd dest(open(d.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    auto st = extract(*p, dest.get(), {});
    ASSERT_TRUE(st) << st.error().message();
    std::ifstream in(d.path + "/etc/hello");
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line, "hello");
    char buf[64] = {};
    EXPECT_GT(readlink((d.path + "/link").c_str(), buf, sizeof buf), 0);
    EXPECT_STREQ(buf, "etc/hello");
    struct stat a, b;
    stat((d.path + "/etc/hello").c_str(), &a);
    stat((d.path + "/hard").c_str(), &b);
    EXPECT_EQ(a.st_ino, b.st_ino);
}

TEST(PackFile, ManyFramesAndReproducible) {
    Manifest m;
    m.entries.push_back(test::dir(0, ""));
    std::string data;
    for (int i = 0; i < 5; ++i) {
        std::string part(100000 + i, static_cast<char>('a' + i));
        for (size_t j = 0; j < part.size(); j += 7) part[j] = static_cast<char>(j * 31);
        m.entries.push_back(test::file(0, "f" + std::to_string(i), data.size(), part.size()));
        data += part;
    }
    auto span = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size());
    int a = memfd_create("a", MFD_CLOEXEC), b = memfd_create("b", MFD_CLOEXEC);
    ASSERT_TRUE(write_raw(a, m, span, small_opts()));
    WriteOptions one = small_opts();
    one.threads = 1;
    ASSERT_TRUE(write_raw(b, m, span, one));
    EXPECT_EQ(file_bytes(a), file_bytes(b));  // independent of the thread count
    auto p = Packed::open(UniqueFd(a));
    ASSERT_TRUE(p);
    EXPECT_GE(p->frames().size(), 7u);
    std::string back;
    ASSERT_TRUE(p->decode_frames(2, [&](size_t, std::span<const uint8_t> f) -> Status {
        back.append(reinterpret_cast<const char*>(f.data()), f.size());
        return {};
    }));
    EXPECT_EQ(back, data);
    close(b);
}

TEST(PackFile, DetectsDamage) {
    Manifest m = simple_manifest();
    std::string data = "hello\n";
    int fd = memfd_create("p", MFD_CLOEXEC);
    ASSERT_TRUE(write_raw(fd, m, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), 6), small_opts()));
    auto good = file_bytes(fd);
    close(fd);
    // Every single flipped bit after the stub is caught by open(),
    // load_manifest() or the frame hashes.
    for (size_t i = sizeof kStub; i < good.size(); i += 3) {
        auto b = good;
        b[i] ^= 0x04;
        auto p = Packed::open(UniqueFd(memfd_with(b)));
        if (!p) continue;
        bool caught = !p->load_manifest();
        if (!caught) caught = !p->decode_frames(1, [](size_t, std::span<const uint8_t>) -> Status { return {}; });
        // Bits in the unsigned signature area change nothing that is used.
        bool unused = i >= hashed_ranges(p->trailer()).signature.begin && i < hashed_ranges(p->trailer()).signature.end;
        EXPECT_TRUE(caught || unused) << "byte " << i;
    }
    auto t = good;
    t.resize(t.size() - 1);
    EXPECT_FALSE(Packed::open(UniqueFd(memfd_with(t))));
}

// The hashes' ranges tile the file: stub, frames, manifest, frame table,
// the trailer's hashed part, the root hash, the signature, the end magic.
TEST(PackHash, RangesTileTheWholeFile) {
    Manifest m = simple_manifest();
    int fd = memfd_create("p", MFD_CLOEXEC);
    ASSERT_TRUE(write_raw(fd, m, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>("hello\n"), 6), small_opts()));
    auto p = Packed::open(UniqueFd(fd));
    ASSERT_TRUE(p) << p.error().message();
    HashedRanges r = hashed_ranges(p->trailer());
    std::vector<Range> in_order{r.stub, r.frames, r.manifest, r.frame_table, r.trailer_hashed, r.root_hash, r.signature, r.end_magic};
    uint64_t at = 0;
    for (const Range& x : in_order) {
        EXPECT_EQ(x.begin, at);
        EXPECT_LE(x.begin, x.end);
        at = x.end;
    }
    EXPECT_EQ(at, p->trailer().file_size);
    EXPECT_EQ(r.stub.end, sizeof kStub);
    EXPECT_GT(r.frames.end, r.frames.begin);
    EXPECT_EQ(r.signature.end - r.signature.begin, 64u);
    EXPECT_EQ(r.trailer_hashed.end - r.trailer_hashed.begin, kHashedSize);
    // The stub's hash is the trailer's, and the root hash depends on it.
    EXPECT_EQ(p->trailer().stub_hash, sha256(std::span<const uint8_t>(kStub, sizeof kStub)));
    Trailer other = p->trailer();
    other.stub_hash[0] ^= 1;
    auto table = encode_frame_table(p->frames());
    EXPECT_EQ(root_hash(p->trailer(), table), p->trailer().root_hash);
    EXPECT_NE(root_hash(other, table), p->trailer().root_hash);
}

// verify() catches a change to any byte of a signed file, the stub's
// included; of an unsigned one, any byte but the (unused) signature's.
TEST(PackHash, VerifyCoversEveryByte) {
    Manifest m = simple_manifest();
    std::vector<uint8_t> pk(crypto_sign_PUBLICKEYBYTES), sk(crypto_sign_SECRETKEYBYTES);
    crypto_sign_keypair(pk.data(), sk.data());
    for (bool sign : {true, false}) {
        WriteOptions o = small_opts();
        if (sign) o.secret_key = sk;
        int fd = memfd_create("p", MFD_CLOEXEC);
        ASSERT_TRUE(write_raw(fd, m, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>("hello\n"), 6), o));
        auto good = file_bytes(fd);
        close(fd);
        std::span<const uint8_t> key = sign ? std::span<const uint8_t>(pk) : std::span<const uint8_t>();
        {
            auto p = Packed::open(UniqueFd(memfd_with(good)));
            ASSERT_TRUE(p);
            auto v = verify(*p, key, 1);
            ASSERT_TRUE(v) << v.error().message();
            EXPECT_EQ(v->is_signed, sign);
            EXPECT_EQ(v->trusted_key, sign);
        }
        auto p0 = Packed::open(UniqueFd(memfd_with(good)));
        Range sig = hashed_ranges(p0->trailer()).signature;
        for (size_t i = 0; i < good.size(); ++i) {
            auto b = good;
            b[i] ^= 0x20;
            auto p = Packed::open(UniqueFd(memfd_with(b)));
            bool caught = !p || !verify(*p, key, 1);
            bool unused = !sign && i >= sig.begin && i < sig.end;
            EXPECT_TRUE(caught || unused) << (sign ? "signed" : "unsigned") << ", byte " << i;
        }
    }
}

// A signed file checked against another key, or without the key it
// carries being trusted.
TEST(PackHash, VerifyKeys) {
    Manifest m = simple_manifest();
    std::vector<uint8_t> pk(crypto_sign_PUBLICKEYBYTES), sk(crypto_sign_SECRETKEYBYTES);
    std::vector<uint8_t> pk2(crypto_sign_PUBLICKEYBYTES), sk2(crypto_sign_SECRETKEYBYTES);
    crypto_sign_keypair(pk.data(), sk.data());
    crypto_sign_keypair(pk2.data(), sk2.data());
    WriteOptions o = small_opts();
    o.secret_key = sk;
    int fd = memfd_create("p", MFD_CLOEXEC);
    ASSERT_TRUE(write_raw(fd, m, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>("hello\n"), 6), o));
    auto p = Packed::open(UniqueFd(fd));
    ASSERT_TRUE(p);
    auto v = verify(*p, {}, 1);
    ASSERT_TRUE(v);
    EXPECT_FALSE(v->trusted_key);
    EXPECT_TRUE(std::equal(pk.begin(), pk.end(), v->signer.begin()));
    auto bad = verify(*p, pk2, 1);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().err, 0);
    // An unsigned file is whole, and says it is not signed, key or none.
    int fd2 = memfd_create("p", MFD_CLOEXEC);
    ASSERT_TRUE(write_raw(fd2, m, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>("hello\n"), 6), small_opts()));
    auto u = Packed::open(UniqueFd(fd2));
    ASSERT_TRUE(u);
    auto nu = verify(*u, pk, 1);
    ASSERT_TRUE(nu);
    EXPECT_FALSE(nu->is_signed);
    EXPECT_FALSE(nu->trusted_key);
}

// A cold run (extraction) checks the stub's hash; a hot run reads only the
// trailer and the frame table, so open() does not.
TEST(PackHash, ExtractChecksTheStub) {
    Manifest m = simple_manifest();
    int fd = memfd_create("p", MFD_CLOEXEC);
    ASSERT_TRUE(write_raw(fd, m, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>("hello\n"), 6), small_opts()));
    auto b = file_bytes(fd);
    close(fd);
    b[2] ^= 1;
    auto p = Packed::open(UniqueFd(memfd_with(b)));
    ASSERT_TRUE(p) << p.error().message();
    ASSERT_TRUE(p->load_manifest());
    TempDir d;
    UniqueFd dest(open(d.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    auto st = extract(*p, dest.get(), {});
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().what.find("stub"), std::string::npos);
    EXPECT_NE(access((d.path + "/etc").c_str(), F_OK), 0);
}

// A version 1 file (a 256-byte trailer) is named as such.
TEST(PackHash, VersionOneIsNamed) {
    std::vector<uint8_t> t(kTrailerSize, 0);
    memcpy(&t[32], kMagic, 8);
    t[40] = 1;
    memcpy(&t[kTrailerSize - 8], kMagicEnd, 8);
    auto r = decode_trailer(t, 10000);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().what.find("version 1"), std::string::npos);
}

TEST(PackFile, RootlessStripsSetuidAndSkipsDevices) {
    Manifest m;
    m.entries.push_back(test::dir(0, ""));
    Entry f = test::file(0, "suid", 0, 1);
    f.mode = 04755;
    m.entries.push_back(f);
    Entry c;
    c.type = Type::Char;
    c.name = "null";
    c.mode = 0666;
    c.major = 1;
    c.minor = 3;
    m.entries.push_back(c);
    Entry x = test::file(0, "x", 1, 0);
    x.xattrs = {{"security.evil", "1"}, {"trusted.evil", "1"}};
    m.entries.push_back(x);
    int fd = memfd_create("p", MFD_CLOEXEC);
    ASSERT_TRUE(write_raw(fd, m, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>("x"), 1), small_opts()));
    auto p = Packed::open(UniqueFd(fd));
    ASSERT_TRUE(p);
    ASSERT_TRUE(p->load_manifest());
    TempDir d;
    UniqueFd dest(open(d.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ExtractOptions o;  // the defaults
    auto st = extract(*p, dest.get(), o);
    ASSERT_TRUE(st) << st.error().message();
    EXPECT_EQ(st->devices_skipped, 1u);
    EXPECT_EQ(st->setid_stripped, 1u);
    EXPECT_EQ(st->xattrs_dropped, 2u);
    struct stat s;
    ASSERT_EQ(stat((d.path + "/suid").c_str(), &s), 0);
    EXPECT_EQ(s.st_mode & 07777, 0755u);
    EXPECT_NE(access((d.path + "/null").c_str(), F_OK), 0);
}

// --kago-extract: the destination keeps its own mode (0700), not the
// image root's.
TEST(PackFile, ExtractCanLeaveTheDestinationsMode) {
    Manifest m = simple_manifest();
    m.entries[0].mode = 0755;
    for (bool root_mode : {true, false}) {
        int fd = memfd_create("p", MFD_CLOEXEC);
        ASSERT_TRUE(write_raw(fd, m, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>("hello\n"), 6), small_opts()));
        auto p = Packed::open(UniqueFd(fd));
        ASSERT_TRUE(p && p->load_manifest());
        TempDir d;
        chmod(d.path.c_str(), 0700);
        UniqueFd dest(open(d.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        ExtractOptions o;
        o.root_mode = root_mode;
        ASSERT_TRUE(extract(*p, dest.get(), o));
        struct stat st;
        ASSERT_EQ(stat(d.path.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 07777, root_mode ? 0755u : 0700u);
    }
}

TEST(PackFile, ExtractRefusesAnExistingEntry) {
    Manifest m = simple_manifest();
    int fd = memfd_create("p", MFD_CLOEXEC);
    ASSERT_TRUE(write_raw(fd, m, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>("hello\n"), 6), small_opts()));
    auto p = Packed::open(UniqueFd(fd));
    ASSERT_TRUE(p && p->load_manifest());
    TempDir d;
    // A symlink planted where a directory goes: O_EXCL/mkdirat refuse it,
    // and nothing is written through it.
    TempDir outside;
    symlink(outside.path.c_str(), (d.path + "/etc").c_str());
    UniqueFd dest(open(d.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    EXPECT_FALSE(extract(*p, dest.get(), {}));
    EXPECT_NE(access((outside.path + "/hello").c_str(), F_OK), 0);
}

// --- cache --------------------------------------------------------------

TEST(PackCache, GetHitClean) {
    Manifest m = simple_manifest();
    int fd = memfd_create("p", MFD_CLOEXEC);
    ASSERT_TRUE(write_raw(fd, m, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>("hello\n"), 6), small_opts()));
    auto p = Packed::open(UniqueFd(fd));
    ASSERT_TRUE(p);
    TempDir d;
    auto base = open_cache_base(d.path + "/cache");
    ASSERT_TRUE(base) << base.error().message();
    struct stat st;
    stat((d.path + "/cache").c_str(), &st);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    auto e = cache_get(*base, *p, {});
    ASSERT_TRUE(e) << e.error().message();
    EXPECT_FALSE(e->hit);
    EXPECT_EQ(e->config.hostname, "box");
    auto again = cache_get(*base, *p, {});
    ASSERT_TRUE(again);
    EXPECT_TRUE(again->hit);
    EXPECT_EQ(again->root, e->root);
    // A group-writable entry is not trusted.
    chmod(e->dir.c_str(), 0770);
    auto lk = cache_lookup(*base, p->key());
    ASSERT_TRUE(lk);
    EXPECT_FALSE(*lk);
    chmod(e->dir.c_str(), 0700);
    ASSERT_TRUE(cache_clean(*base, p->key()));
    EXPECT_NE(access(e->dir.c_str(), F_OK), 0);
}

TEST(PackCache, Candidates) {
    setenv("XDG_CACHE_HOME", "/x/cache", 1);
    setenv("XDG_RUNTIME_DIR", "/run/user/9", 1);
    auto c = cache_candidates("");
    if (geteuid() == 0) {
        EXPECT_EQ(c[0], "/var/cache/kago");
    } else {
        EXPECT_EQ(c[0], "/x/cache/kago");
    }
    EXPECT_EQ(c.back(), "/run/user/9/kago");
    EXPECT_EQ(cache_candidates("/d"), std::vector<std::string>{"/d"});
    unsetenv("XDG_CACHE_HOME");
    unsetenv("XDG_RUNTIME_DIR");
}

// --- runtime helpers ----------------------------------------------------------

TEST(PackRuntime, EnvAndBind) {
    Config c;
    c.env = {"PATH=/app", "X=1"};
    auto env = container_env(c, "/root");
    EXPECT_NE(std::find(env.begin(), env.end(), "PATH=/app"), env.end());
    EXPECT_NE(std::find(env.begin(), env.end(), "X=1"), env.end());
    EXPECT_EQ(std::count_if(env.begin(), env.end(), [](auto& e) { return e.starts_with("PATH="); }), 1);
    auto b = parse_bind("/a:/b");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->second, "/b");
    EXPECT_FALSE(parse_bind("a:/b"));
}

// The runner's root is a mount::RootSpec that mount::apply() builds.
TEST(PackRuntime, RootSpec) {
    RunSpec s;
    s.rootfs = "/cache/k/root";
    s.mnt = "/cache/k/mnt";
    s.binds = {{"/data", "/srv/data"}};
    s.config.workdir = "/etc";
    auto r = root_spec(s);
    EXPECT_TRUE(kago::mount::validate(r));
    EXPECT_EQ(r.layers, std::vector<std::string>{"/cache/k/root"});
    EXPECT_EQ(r.target, "/cache/k/mnt");
    EXPECT_EQ(r.upper.kind, kago::mount::UpperKind::tmpfs);
    EXPECT_TRUE(r.nosuid && r.proc && r.dev && r.pivot && r.mask);
    EXPECT_EQ(r.mqueue, kago::mount::Want::yes);
    EXPECT_FALSE(r.sys);
    EXPECT_EQ(r.cgroupfs, kago::mount::Want::no);
    ASSERT_EQ(r.steps.size(), 2u);
    EXPECT_EQ(r.steps[0].kind, kago::mount::StepKind::bind);
    EXPECT_EQ(r.steps[0].src, "/data");
    EXPECT_EQ(r.steps[0].dst, "/srv/data");
    EXPECT_FALSE(r.steps[0].read_only || r.steps[0].dev);
    EXPECT_EQ(r.steps[1].kind, kago::mount::StepKind::chdir);
    EXPECT_EQ(r.steps[1].dst, "/etc");

    s.config.read_only = true;
    s.config.sys = true;
    s.config.workdir = "/";
    s.binds.clear();
    r = root_spec(s);
    EXPECT_EQ(r.upper.kind, kago::mount::UpperKind::none);
    EXPECT_TRUE(r.sys);
    EXPECT_EQ(r.cgroupfs, kago::mount::Want::by_default);
    EXPECT_TRUE(r.steps.empty());
    s.config.cgroupfs = false;
    EXPECT_EQ(root_spec(s).cgroupfs, kago::mount::Want::no);
}

TEST(PackFormat, NoCgroupfsRoundTrips) {
    Config c;
    c.sys = true;
    c.cgroupfs = false;
    auto back = decode_config(encode_config(c));
    ASSERT_TRUE(back);
    EXPECT_TRUE(back->sys);
    EXPECT_FALSE(back->cgroupfs);
    c.cgroupfs = true;
    back = decode_config(encode_config(c));
    ASSERT_TRUE(back);
    EXPECT_TRUE(back->cgroupfs);
}
