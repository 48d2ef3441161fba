// pack-hostile OUTDIR: writes the hostile corpus of packed files, each a
// real runner (the embedded stub) with a payload that must be refused.
//   reject-*.run   the runner must exit 125 and write nothing outside its
//                  cache directory
//   warn-*.run     the runner must extract it, with one warning
//   good.run       a well-formed file the others are made from
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sodium.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "entries.hpp"
#include "pack/format.hpp"
#include "pack/writer.hpp"

extern "C" const uint8_t kago_pack_stub_start[];
extern "C" const uint8_t kago_pack_stub_end[];

using namespace kago;
using namespace kago::pack;
using namespace kago::pack::test;

namespace {

std::string outdir;

Manifest base() {
    Manifest m;
    m.config.command = {"/bin/true"};
    m.entries.push_back(dir(0, ""));
    return m;
}

WriteOptions opts() {
    WriteOptions o;
    o.frame_size = kMinFrameSize;
    o.stub = std::span<const uint8_t>(kago_pack_stub_start, kago_pack_stub_end);
    o.threads = 1;
    return o;
}

std::vector<uint8_t> make(const Manifest& m, const std::string& contents) {
    char path[] = "/tmp/pack-hostile-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    auto r = write_raw(fd, m, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(contents.data()), contents.size()), opts());
    if (!r) {
        fprintf(stderr, "pack-hostile: %s\n", r.error().message().c_str());
        exit(1);
    }
    std::vector<uint8_t> b(r->file_size);
    if (pread(fd, b.data(), b.size(), 0) != static_cast<ssize_t>(b.size())) exit(1);
    close(fd);
    return b;
}

void save(const std::string& name, const std::vector<uint8_t>& b) {
    std::string p = outdir + "/" + name + ".run";
    int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (fd < 0 || write(fd, b.data(), b.size()) != static_cast<ssize_t>(b.size())) {
        perror(p.c_str());
        exit(1);
    }
    fchmod(fd, 0755);
    close(fd);
}

uint64_t get64(const std::vector<uint8_t>& b, size_t off) {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(b[off + i]) << (8 * i);
    return v;
}
void put64(std::vector<uint8_t>& b, size_t off, uint64_t v) {
    for (int i = 0; i < 8; ++i) b[off + i] = static_cast<uint8_t>(v >> (8 * i));
}
// Rewrite the trailer's root hash after changing a hashed field, so that
// the change itself is what the runner must catch: SHA-256 over the raw
// first kHashedSize bytes of the trailer and the frame table.
void rehash(std::vector<uint8_t>& b) {
    size_t t = b.size() - kTrailerSize;
    uint64_t table = get64(b, t + 24);
    uint32_t count = b[t + 32] | b[t + 33] << 8 | b[t + 34] << 16 | static_cast<uint32_t>(b[t + 35]) << 24;
    uint64_t n = std::min<uint64_t>(uint64_t{count} * kFrameRecordSize, table < t ? t - table : 0);
    Hash h = sha256(std::span<const uint8_t>(b).subspan(t, kHashedSize),
                    std::span<const uint8_t>(b).subspan(table < t ? table : t, n));
    memcpy(&b[t + kHashedSize], h.data(), 32);
}

// A packed file whose one frame holds 1 MiB of zeros while the frame table
// and the trailer declare `declared` bytes: everything else is consistent
// (hashes, offsets), so that only the decoded size gives it away.
std::vector<uint8_t> bomb(const Manifest& m, uint64_t declared, bool with_size) {
    std::vector<uint8_t> zeros(1 << 20, 0);
    ZSTD_CCtx* c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, with_size ? 1 : 0);
    std::vector<uint8_t> z(ZSTD_compressBound(zeros.size()));
    size_t n = with_size ? ZSTD_compress2(c, z.data(), z.size(), zeros.data(), zeros.size()) : 0;
    if (!with_size) {
        // Streaming without a pledged size leaves the size out of the header.
        ZSTD_outBuffer out{z.data(), z.size(), 0};
        ZSTD_inBuffer in{zeros.data(), zeros.size(), 0};
        ZSTD_compressStream2(c, &out, &in, ZSTD_e_end);
        n = out.pos;
    }
    ZSTD_freeCCtx(c);
    z.resize(n);
    std::vector<uint8_t> b(kago_pack_stub_start, kago_pack_stub_end);
    Trailer t;
    t.payload_offset = b.size();
    t.stub_hash = sha256(b);
    t.frame_size = kMinFrameSize;
    t.total_bytes = declared;
    t.total_entries = m.entries.size();
    Frame f;
    f.offset = b.size();
    f.csize = z.size();
    f.usize = declared;
    crypto_hash_sha256(f.sha256.data(), z.data(), z.size());
    b.insert(b.end(), z.begin(), z.end());
    auto raw = encode_manifest(m);
    auto mz = compress(raw, 3, false);
    t.manifest_offset = b.size();
    t.manifest_csize = mz->size();
    t.manifest_usize = raw.size();
    crypto_hash_sha256(t.manifest_hash.data(), mz->data(), mz->size());
    b.insert(b.end(), mz->begin(), mz->end());
    auto table = encode_frame_table({f});
    t.frame_count = 1;
    t.frame_table_offset = b.size();
    b.insert(b.end(), table.begin(), table.end());
    t.file_size = b.size() + kTrailerSize;
    t.root_hash = root_hash(t, table);
    auto tb = encode_trailer(t);
    b.insert(b.end(), tb.begin(), tb.end());
    return b;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: pack-hostile OUTDIR\n");
        return 2;
    }
    outdir = argv[1];
    mkdir(outdir.c_str(), 0755);
    std::string hello = "hello\n";

    {  // good.run: /etc/hello, and a command
        Manifest m = base();
        m.entries.push_back(dir(0, "etc"));
        m.entries.push_back(file(1, "hello", 0, hello.size()));
        save("good", make(m, hello));
    }
    // Path traversal: names that are not one component.
    for (auto [name, bad] : {std::pair{"dotdot", ".."}, {"dot", "."}, {"absolute", "/etc/escape"},
                             {"slash", "a/../../escape"}, {"empty", ""}}) {
        Manifest m = base();
        m.entries.push_back(file(0, bad, 0, hello.size()));
        save(std::string("reject-traversal-") + name, make(m, hello));
    }
    {  // ".." as a directory, then a file below it
        Manifest m = base();
        m.entries.push_back(dir(0, ".."));
        m.entries.push_back(file(1, "escape", 0, hello.size()));
        save("reject-traversal-dotdot-dir", make(m, hello));
    }
    {  // Symlink escape: a link to /tmp, then a file written "through" it.
        Manifest m = base();
        m.entries.push_back(symlink(0, "link", "/tmp"));
        m.entries.push_back(file(1, "escape", 0, hello.size()));
        save("reject-symlink-escape", make(m, hello));
        // The same, the file's parent being a later entry.
        Manifest m2 = base();
        m2.entries.push_back(file(2, "escape", 0, hello.size()));
        m2.entries.push_back(dir(0, "later"));
        save("reject-parent-later", make(m2, hello));
    }
    {  // Hard links: to a symlink that leads outside, to a later file, to the root.
        Manifest m = base();
        m.entries.push_back(symlink(0, "outside", "/etc/passwd"));
        Entry h = hardlink(0, "passwd", 1);
        m.entries.push_back(h);
        save("reject-hardlink-to-symlink", make(m, ""));
        Manifest m2 = base();
        Entry h2 = h;
        h2.link = 2;
        m2.entries.push_back(h2);
        m2.entries.push_back(file(0, "z", 0, hello.size()));
        save("reject-hardlink-forward", make(m2, hello));
        Manifest m3 = base();
        Entry h3 = h;
        h3.link = 0;
        m3.entries.push_back(h3);
        save("reject-hardlink-root", make(m3, ""));
    }
    {  // Duplicate names, contents outside the payload.
        Manifest m = base();
        m.entries.push_back(file(0, "a", 0, 3));
        m.entries.push_back(file(0, "a", 3, 3));
        save("reject-duplicate", make(m, hello));
        Manifest m2 = base();
        m2.entries.push_back(file(0, "a", 0, 4096));
        save("reject-contents-outside", make(m2, hello));
    }
    // zstd bombs: a frame that decodes to 1 MiB where 6 bytes are declared,
    // with and without the size in the frame header.
    for (bool with_size : {true, false}) {
        Manifest m = base();
        m.entries.push_back(file(0, "bomb", 0, hello.size()));
        save(with_size ? "reject-bomb-sized" : "reject-bomb-unsized", bomb(m, hello.size(), with_size));
    }
    // Damaged copies of good.run.
    Manifest gm = base();
    gm.entries.push_back(dir(0, "etc"));
    gm.entries.push_back(file(1, "hello", 0, hello.size()));
    auto good = make(gm, hello);
    size_t t = good.size() - kTrailerSize;
    uint64_t payload = get64(good, t + 16);
    {
        auto b = good;
        b.resize(b.size() - 100);
        save("reject-truncated-end", b);
        auto c = good;
        c.erase(c.begin() + static_cast<long>(payload), c.begin() + static_cast<long>(payload) + 4);
        save("reject-truncated-middle", c);
    }
    {
        auto b = good;
        b[payload + 5] ^= 0x10;
        save("reject-flipped-frame", b);
        auto c = good;
        c[get64(good, t + 40) + 3] ^= 0x01;
        save("reject-flipped-manifest", c);
        auto d = good;
        d[t + 100] ^= 0x80;  // inside the manifest hash: the root hash catches it
        save("reject-flipped-trailer", d);        // One byte of the runner's own help text: it still runs, and its
        // cold run must refuse itself (the stub's hash). Then a trailer
        // whose stub hash is wrong, with a root hash to match.
        static const char help[] = "Runner options";
        auto it = std::search(good.begin(), good.begin() + static_cast<long>(payload), help, help + sizeof help - 1);
        if (it == good.begin() + static_cast<long>(payload)) {
            fprintf(stderr, "pack-hostile: the runner's help text is not in the stub\n");
            return 1;
        }
        auto e = good;
        e[static_cast<size_t>(it - good.begin())] = 'X';
        save("reject-flipped-stub", e);
        auto f = good;
        f[t + 120] ^= 0x01;
        rehash(f);
        save("reject-stub-hash", f);
    }
    {
        auto b = good;
        b[t] = 'X';
        save("reject-wrong-magic", b);
        auto c = good;
        c[t + 8] = 99;
        rehash(c);
        save("reject-wrong-version", c);
    }
    {
        auto b = good;
        put64(b, t + 24, good.size() + 4096);  // frame table after the end
        rehash(b);
        save("reject-trailer-outside", b);
        auto c = good;
        put64(c, t + 40, good.size() * 2);  // manifest after the end
        rehash(c);
        save("reject-manifest-outside", c);
        auto d = good;
        put64(d, t + 16, 0);  // payload at 0: frames do not tile
        rehash(d);
        save("reject-payload-offset", d);
    }
    {  // Device nodes (skipped rootless, with one warning) and setuid.
        Manifest m = base();
        m.entries.push_back(dir(0, "dev"));
        for (auto [name, minor] : {std::pair{"null2", 3u}, {"zero2", 5u}}) {
            Entry e;
            e.type = Type::Char;
            e.parent = 1;
            e.name = name;
            e.mode = 0666;
            e.major = 1;
            e.minor = minor;
            m.entries.push_back(e);
        }
        m.entries.push_back(file(0, "suid", 0, hello.size(), 04755));
        save("warn-devices-setuid", make(m, hello));
    }
    return 0;
}
