#include "pack/format.hpp"

// The low-level SHA256_* calls, without OpenSSL 3's deprecation notes: the
// EVP interface would pull its whole provider machinery into the static stub.
#define OPENSSL_API_COMPAT 10101
#include <openssl/sha.h>
#include <string.h>

#include <unordered_set>

namespace kago::pack {
namespace {

void put32(uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void put64(uint8_t* p, uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t get32(const uint8_t* p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
    return v;
}
uint64_t get64(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
    return v;
}

Error bad(std::string what) {
    Error e;
    e.err = 0;  // the text says it all
    e.what = cat("packed file: ", what);
    return e;
}

// Manifest encoding: LEB128 varints and length-prefixed strings.
class Out {
  public:
    void u(uint64_t v) {
        do {
            uint8_t b = v & 0x7f;
            v >>= 7;
            if (v) b |= 0x80;
            buf.push_back(b);
        } while (v);
    }
    void s(std::string_view str) {
        u(str.size());
        buf.insert(buf.end(), str.begin(), str.end());
    }
    std::vector<uint8_t> buf;
};

class In {
  public:
    explicit In(std::span<const uint8_t> b) : b_(b) {}
    bool u(uint64_t& v) {
        v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (pos_ >= b_.size()) return false;
            uint8_t c = b_[pos_++];
            if (shift == 63 && c > 1) return false;
            v |= static_cast<uint64_t>(c & 0x7f) << shift;
            if (!(c & 0x80)) return true;
        }
        return false;
    }
    bool u32(uint32_t& v) {
        uint64_t x;
        if (!u(x) || x > UINT32_MAX) return false;
        v = static_cast<uint32_t>(x);
        return true;
    }
    bool s(std::string& out, size_t max = 1 << 20) {
        uint64_t n;
        if (!u(n) || n > max || n > b_.size() - pos_) return false;
        out.assign(reinterpret_cast<const char*>(b_.data() + pos_), n);
        pos_ += n;
        return true;
    }
    bool done() const { return pos_ == b_.size(); }

  private:
    std::span<const uint8_t> b_;
    size_t pos_ = 0;
};

enum Key : uint8_t {
    kCommand = 1, kEnv, kWorkdir, kHostname, kUser, kKeepCap, kSeccomp, kMemory, kPids, kCpus,
    kNet, kBindAllowed, kReadOnly, kFromHost, kSeccompBpf, kSys, kNoCgroupfs,
};

}  // namespace

std::array<uint8_t, kTrailerSize> encode_trailer(const Trailer& t) {
    std::array<uint8_t, kTrailerSize> b{};
    memcpy(&b[0], kMagic, 8);
    put32(&b[8], t.version);
    put32(&b[12], t.flags);
    put64(&b[16], t.payload_offset);
    put64(&b[24], t.frame_table_offset);
    put32(&b[32], t.frame_count);
    put32(&b[36], t.frame_size);
    put64(&b[40], t.manifest_offset);
    put64(&b[48], t.manifest_csize);
    put64(&b[56], t.manifest_usize);
    put64(&b[64], t.total_bytes);
    put64(&b[72], t.total_entries);
    put64(&b[80], t.file_size);
    memcpy(&b[88], t.manifest_hash.data(), 32);
    memcpy(&b[120], t.stub_hash.data(), 32);
    memcpy(&b[152], t.public_key.data(), 32);
    static_assert(kHashedSize == 184);
    memcpy(&b[184], t.root_hash.data(), 32);
    memcpy(&b[216], t.signature.data(), 64);
    memcpy(&b[280], kMagicEnd, 8);
    return b;
}

Result<Trailer> decode_trailer(std::span<const uint8_t> b, uint64_t file_size) {
    if (b.size() != kTrailerSize) return bad("the file is too short to hold a trailer");
    if (memcmp(&b[0], kMagic, 8) != 0 || memcmp(&b[280], kMagicEnd, 8) != 0) {
        // Version 1 had a 256-byte trailer: say so rather than "not a packed file".
        if (b.size() >= 256 && memcmp(&b[32], kMagic, 8) == 0 && get32(&b[40]) == 1)
            return bad("format version 1, whose signature does not cover the runner, is not supported: pack it again");
        return bad("no kago trailer (wrong magic): not a packed file, or a truncated one");
    }
    Trailer t;
    t.version = get32(&b[8]);
    if (t.version != kVersion)
        return bad(cat("format version ", t.version, " is not supported (this runner reads version ",
                       kVersion, ")"));
    t.flags = get32(&b[12]);
    t.payload_offset = get64(&b[16]);
    t.frame_table_offset = get64(&b[24]);
    t.frame_count = get32(&b[32]);
    t.frame_size = get32(&b[36]);
    t.manifest_offset = get64(&b[40]);
    t.manifest_csize = get64(&b[48]);
    t.manifest_usize = get64(&b[56]);
    t.total_bytes = get64(&b[64]);
    t.total_entries = get64(&b[72]);
    t.file_size = get64(&b[80]);
    memcpy(t.manifest_hash.data(), &b[88], 32);
    memcpy(t.stub_hash.data(), &b[120], 32);
    memcpy(t.public_key.data(), &b[152], 32);
    memcpy(t.root_hash.data(), &b[184], 32);
    memcpy(t.signature.data(), &b[216], 64);
    if (t.flags & ~kFlagSigned) return bad(cat("unknown flags 0x", t.flags));
    if (t.file_size != file_size)
        return bad(cat("the file has ", file_size, " bytes but its trailer declares ", t.file_size,
                       " (truncated or appended to)"));
    if (file_size < kTrailerSize) return bad("the file is too short to hold a trailer");
    // Everything lies inside the file, in order, with no gap.
    uint64_t end = file_size - kTrailerSize;
    if (t.frame_size < kMinFrameSize || t.frame_size > kMaxFrameSize)
        return bad(cat("frame size ", t.frame_size, " is out of range"));
    if (t.frame_count > (end / kFrameRecordSize)) return bad("the frame table points outside the file");
    uint64_t table = uint64_t{t.frame_count} * kFrameRecordSize;
    if (t.frame_table_offset != end - table) return bad("the frame table points outside the file");
    if (t.manifest_offset > t.frame_table_offset ||
        t.manifest_csize != t.frame_table_offset - t.manifest_offset)
        return bad("the manifest points outside the file");
    if (t.payload_offset > t.manifest_offset) return bad("the payload points outside the file");
    if (t.manifest_csize == 0 || t.manifest_usize == 0 || t.manifest_usize > kMaxManifestSize)
        return bad(cat("manifest size ", t.manifest_usize, " is out of range"));
    if (t.total_entries == 0 || t.total_entries > t.manifest_usize)
        return bad(cat("entry count ", t.total_entries, " is out of range"));
    uint64_t max_bytes = uint64_t{t.frame_count} * t.frame_size;
    if (t.total_bytes > max_bytes || (t.frame_count > 0 && t.total_bytes <= max_bytes - t.frame_size))
        return bad(cat("declared size ", t.total_bytes, " does not match ", t.frame_count, " frames"));
    return t;
}

std::vector<uint8_t> encode_frame_table(const std::vector<Frame>& frames) {
    std::vector<uint8_t> b(frames.size() * kFrameRecordSize);
    for (size_t i = 0; i < frames.size(); ++i) {
        uint8_t* p = &b[i * kFrameRecordSize];
        put64(p, frames[i].offset);
        put64(p + 8, frames[i].csize);
        put64(p + 16, frames[i].usize);
        memcpy(p + 24, frames[i].sha256.data(), 32);
    }
    return b;
}

Result<std::vector<Frame>> decode_frame_table(std::span<const uint8_t> b, const Trailer& t) {
    if (b.size() != uint64_t{t.frame_count} * kFrameRecordSize) return bad("frame table size");
    std::vector<Frame> frames(t.frame_count);
    uint64_t pos = t.payload_offset, bytes = 0;
    for (size_t i = 0; i < frames.size(); ++i) {
        const uint8_t* p = &b[i * kFrameRecordSize];
        Frame& f = frames[i];
        f.offset = get64(p);
        f.csize = get64(p + 8);
        f.usize = get64(p + 16);
        memcpy(f.sha256.data(), p + 24, 32);
        if (f.offset != pos || f.csize == 0 || f.csize > t.manifest_offset - pos)
            return bad(cat("frame ", i, " points outside the payload"));
        uint64_t want = std::min<uint64_t>(t.frame_size, t.total_bytes - bytes);
        if (f.usize != want || want == 0)
            return bad(cat("frame ", i, " declares ", f.usize, " bytes, expected ", want));
        pos += f.csize;
        bytes += f.usize;
    }
    if (pos != t.manifest_offset) return bad("the frames do not end where the manifest starts");
    if (bytes != t.total_bytes) return bad("the frames do not add up to the declared size");
    return frames;
}

static_assert(sizeof(SHA256_CTX) <= 112 && alignof(SHA256_CTX) <= 8);

Sha256::Sha256() { SHA256_Init(reinterpret_cast<SHA256_CTX*>(ctx_)); }
void Sha256::update(std::span<const uint8_t> data) {
    SHA256_Update(reinterpret_cast<SHA256_CTX*>(ctx_), data.data(), data.size());
}
Hash Sha256::final() {
    Hash h;
    SHA256_Final(h.data(), reinterpret_cast<SHA256_CTX*>(ctx_));
    return h;
}

Hash sha256(std::span<const uint8_t> a, std::span<const uint8_t> b) {
    Sha256 s;
    s.update(a);
    if (!b.empty()) s.update(b);
    return s.final();
}

Hash root_hash(const Trailer& t, std::span<const uint8_t> frame_table) {
    auto b = encode_trailer(t);
    return sha256(std::span<const uint8_t>(b.data(), kHashedSize), frame_table);
}

HashedRanges hashed_ranges(const Trailer& t) {
    uint64_t tr = t.file_size - kTrailerSize;
    HashedRanges r;
    r.stub = {0, t.payload_offset};
    r.frames = {t.payload_offset, t.manifest_offset};
    r.manifest = {t.manifest_offset, t.frame_table_offset};
    r.frame_table = {t.frame_table_offset, tr};
    r.trailer_hashed = {tr, tr + kHashedSize};
    r.root_hash = {tr + kHashedSize, tr + kHashedSize + 32};
    r.signature = {r.root_hash.end, r.root_hash.end + 64};
    r.end_magic = {r.signature.end, t.file_size};
    return r;
}

const char* type_name(Type t) {
    switch (t) {
    case Type::File: return "file";
    case Type::Dir: return "directory";
    case Type::Symlink: return "symlink";
    case Type::Hardlink: return "hardlink";
    case Type::Char: return "character device";
    case Type::Block: return "block device";
    case Type::Fifo: return "fifo";
    }
    return "?";
}

std::vector<uint8_t> encode_manifest(const Manifest& m) {
    Out o;
    o.buf = {'K', 'G', 'M', 'F'};
    const Config& c = m.config;
    std::vector<std::pair<uint8_t, std::string>> kv;
    for (auto& s : c.command) kv.emplace_back(kCommand, s);
    for (auto& s : c.env) kv.emplace_back(kEnv, s);
    kv.emplace_back(kWorkdir, c.workdir);
    if (!c.hostname.empty()) kv.emplace_back(kHostname, c.hostname);
    if (!c.user.empty()) kv.emplace_back(kUser, c.user);
    for (auto& s : c.keep_caps) kv.emplace_back(kKeepCap, s);
    kv.emplace_back(kSeccomp, c.seccomp);
    if (!c.seccomp_bpf.empty())
        kv.emplace_back(kSeccompBpf, hex(std::span<const uint8_t>(
                                          reinterpret_cast<const uint8_t*>(c.seccomp_bpf.data()), c.seccomp_bpf.size())));
    if (!c.memory.empty()) kv.emplace_back(kMemory, c.memory);
    if (!c.pids.empty()) kv.emplace_back(kPids, c.pids);
    if (!c.cpus.empty()) kv.emplace_back(kCpus, c.cpus);
    kv.emplace_back(kNet, c.net);
    if (c.bind_allowed) kv.emplace_back(kBindAllowed, "1");
    if (c.read_only) kv.emplace_back(kReadOnly, "1");
    if (c.from_host) kv.emplace_back(kFromHost, "1");
    if (c.sys) kv.emplace_back(kSys, "1");
    if (!c.cgroupfs) kv.emplace_back(kNoCgroupfs, "1");
    o.u(kv.size());
    for (auto& [k, v] : kv) {
        o.u(k);
        o.s(v);
    }
    o.u(m.entries.size());
    for (const Entry& e : m.entries) {
        o.u(static_cast<uint8_t>(e.type));
        o.u(e.parent);
        o.s(e.name);
        o.u(e.mode);
        o.u(e.uid);
        o.u(e.gid);
        o.u(static_cast<uint64_t>(e.mtime));
        switch (e.type) {
        case Type::File:
            o.u(e.size);
            o.u(e.offset);
            break;
        case Type::Symlink: o.s(e.target); break;
        case Type::Hardlink: o.u(e.link); break;
        case Type::Char:
        case Type::Block:
            o.u(e.major);
            o.u(e.minor);
            break;
        default: break;
        }
        o.u(e.xattrs.size());
        for (auto& [k, v] : e.xattrs) {
            o.s(k);
            o.s(v);
        }
    }
    return std::move(o.buf);
}

Result<Manifest> decode_manifest(std::span<const uint8_t> b, const Trailer& t) {
    if (b.size() < 4 || memcmp(b.data(), "KGMF", 4) != 0) return bad("manifest: wrong magic");
    In in(b.subspan(4));
    Manifest m;
    Config& c = m.config;
    c.seccomp.clear();
    c.net.clear();
    uint64_t n;
    if (!in.u(n) || n > 100000) return bad("manifest: settings");
    for (uint64_t i = 0; i < n; ++i) {
        uint64_t k;
        std::string v;
        if (!in.u(k) || !in.s(v, 1 << 16)) return bad("manifest: settings");
        if (v.find('\0') != std::string::npos) return bad("manifest: a setting holds a NUL byte");
        switch (k) {
        case kCommand: c.command.push_back(v); break;
        case kEnv: c.env.push_back(v); break;
        case kWorkdir: c.workdir = v; break;
        case kHostname: c.hostname = v; break;
        case kUser: c.user = v; break;
        case kKeepCap: c.keep_caps.push_back(v); break;
        case kSeccomp: c.seccomp = v; break;
        case kMemory: c.memory = v; break;
        case kPids: c.pids = v; break;
        case kCpus: c.cpus = v; break;
        case kNet: c.net = v; break;
        case kBindAllowed: c.bind_allowed = v == "1"; break;
        case kReadOnly: c.read_only = v == "1"; break;
        case kFromHost: c.from_host = v == "1"; break;
        case kSys: c.sys = v == "1"; break;
        case kNoCgroupfs: c.cgroupfs = v != "1"; break;
        case kSeccompBpf: {
            auto bytes = unhex(v);
            if (!bytes) return bad("manifest: the seccomp filter is not hexadecimal");
            c.seccomp_bpf.assign(bytes->begin(), bytes->end());
            break;
        }
        default: return bad(cat("manifest: unknown setting ", k));
        }
    }
    if (c.seccomp != "default" && c.seccomp != "unconfined") return bad("manifest: seccomp setting");
    // struct sock_filter is 8 bytes; the kernel takes 4096 of them at most.
    if (c.seccomp_bpf.size() % 8 != 0 || c.seccomp_bpf.size() > 4096 * 8)
        return bad("manifest: the seccomp filter is not a BPF program");
    if (c.net != "none" && c.net != "host" && c.net != "user-mode") return bad("manifest: net setting");
    if (!in.u(n) || n != t.total_entries) return bad("manifest: the entry count differs from the trailer's");
    m.entries.resize(n);
    std::unordered_set<std::string> seen;
    seen.reserve(n);
    uint64_t offset = 0;
    for (uint64_t i = 0; i < n; ++i) {
        Entry& e = m.entries[i];
        uint64_t type, mtime;
        if (!in.u(type) || type < 1 || type > 7) return bad(cat("manifest: entry ", i, ": type"));
        e.type = static_cast<Type>(type);
        if (!in.u32(e.parent) || !in.s(e.name, 4096) || !in.u32(e.mode) || !in.u32(e.uid) ||
            !in.u32(e.gid) || !in.u(mtime))
            return bad(cat("manifest: entry ", i, ": truncated"));
        e.mtime = static_cast<int64_t>(mtime);
        bool ok = true;
        switch (e.type) {
        case Type::File: ok = in.u(e.size) && in.u(e.offset); break;
        case Type::Symlink: ok = in.s(e.target, 4096); break;
        case Type::Hardlink: ok = in.u32(e.link); break;
        case Type::Char:
        case Type::Block: ok = in.u32(e.major) && in.u32(e.minor); break;
        default: break;
        }
        uint64_t nx;
        if (!ok || !in.u(nx) || nx > 1024) return bad(cat("manifest: entry ", i, ": truncated"));
        e.xattrs.resize(nx);
        for (auto& [k, v] : e.xattrs)
            if (!in.s(k, 255) || !in.s(v, 65536) || k.empty() || k.find('\0') != std::string::npos)
                return bad(cat("manifest: entry ", i, ": xattr"));
        // The rules that make extraction safe.
        if (e.mode & ~07777u) return bad(cat("manifest: entry ", i, ": mode"));
        if (i == 0) {
            if (e.type != Type::Dir || !e.name.empty() || e.parent != 0)
                return bad("manifest: entry 0 is not the root directory");
            continue;
        }
        const std::string& nm = e.name;
        if (nm.empty() || nm == "." || nm == ".." || nm.find('/') != std::string::npos ||
            nm.find('\0') != std::string::npos)
            return bad(cat("manifest: entry ", i, ": name ", nm.empty() ? "\"\"" : nm,
                           " is not a single path component (path traversal)"));
        if (e.parent >= i || m.entries[e.parent].type != Type::Dir)
            return bad(cat("manifest: entry ", i, " (", nm, "): its parent is not an earlier directory"));
        std::string key = cat(e.parent, "/", nm);
        if (!seen.insert(std::move(key)).second)
            return bad(cat("manifest: entry ", i, " (", nm, "): a duplicate name"));
        if (e.type == Type::File) {
            if (e.offset != offset || e.size > t.total_bytes - offset)
                return bad(cat("manifest: entry ", i, " (", nm, "): contents outside the payload"));
            offset += e.size;
        } else if (e.type == Type::Hardlink) {
            if (e.link >= i || e.link == 0 || m.entries[e.link].type != Type::File)
                return bad(cat("manifest: entry ", i, " (", nm,
                               "): a hard link to something that is not an earlier regular file"));
        } else if (e.type == Type::Symlink) {
            if (e.target.empty() || e.target.find('\0') != std::string::npos)
                return bad(cat("manifest: entry ", i, " (", nm, "): symlink target"));
        }
    }
    if (offset != t.total_bytes) return bad("manifest: the files do not add up to the declared size");
    if (!in.done()) return bad("manifest: trailing bytes");
    return m;
}

std::string entry_path(const Manifest& m, uint32_t i) {
    std::vector<uint32_t> chain;
    while (i != 0 && i < m.entries.size()) {
        chain.push_back(i);
        i = m.entries[i].parent;
    }
    std::string p;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
        if (!p.empty()) p += '/';
        p += m.entries[*it].name;
    }
    return p;
}

std::string hex(std::span<const uint8_t> b) {
    static const char d[] = "0123456789abcdef";
    std::string s;
    s.reserve(b.size() * 2);
    for (uint8_t c : b) {
        s += d[c >> 4];
        s += d[c & 15];
    }
    return s;
}

Result<std::vector<uint8_t>> unhex(std::string_view s) {
    auto val = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    if (s.size() % 2) return usage_error(cat("hex string ", s, ": odd length"));
    std::vector<uint8_t> out(s.size() / 2);
    for (size_t i = 0; i < out.size(); ++i) {
        int a = val(s[2 * i]), b = val(s[2 * i + 1]);
        if (a < 0 || b < 0) return usage_error(cat("hex string ", s, ": not hexadecimal"));
        out[i] = static_cast<uint8_t>(a << 4 | b);
    }
    return out;
}

}  // namespace kago::pack
