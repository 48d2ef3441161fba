#include "pack/tar.hpp"

#include <string.h>

#include <algorithm>

namespace kago::pack {
namespace {

constexpr uint64_t kBlock = 512;
constexpr uint64_t kMaxLongName = 64 << 10;
constexpr uint64_t kMaxPax = 1 << 20;

Error bad(uint64_t block, std::string what) {
    Error e;
    e.err = 0;  // the text says it all
    e.what = cat("tar input: block ", block, ": ", what);
    return e;
}

// A NUL- or end-terminated field.
std::string field(const uint8_t* p, size_t n) {
    size_t len = strnlen(reinterpret_cast<const char*>(p), n);
    return std::string(reinterpret_cast<const char*>(p), len);
}

// Octal (spaces and NULs around it), or GNU base-256 when the top bit is set.
bool number(const uint8_t* p, size_t n, uint64_t& out) {
    out = 0;
    if (p[0] & 0x80) {
        if (p[0] & 0x40) return false;  // negative
        uint64_t v = p[0] & 0x3f;
        for (size_t i = 1; i < n; ++i) {
            if (v >> 56) return false;
            v = v << 8 | p[i];
        }
        out = v;
        return true;
    }
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == 0)) ++i;
    if (i == n) return true;  // empty: 0
    bool any = false;
    for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i) {
        if (out >> 61) return false;
        out = out << 3 | static_cast<uint64_t>(p[i] - '0');
        any = true;
    }
    for (; i < n; ++i)
        if (p[i] != ' ' && p[i] != 0) return false;
    return any;
}

bool decimal(std::string_view s, uint64_t& out) {
    out = 0;
    if (s.empty()) return false;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        if (out > (UINT64_MAX - 9) / 10) return false;
        out = out * 10 + static_cast<uint64_t>(c - '0');
    }
    return true;
}

bool checksum_ok(const uint8_t* h) {
    uint64_t stored;
    if (!number(h + 148, 8, stored)) return false;
    uint64_t u = 0;
    int64_t s = 0;
    for (size_t i = 0; i < kBlock; ++i) {
        uint8_t c = (i >= 148 && i < 156) ? ' ' : h[i];
        u += c;
        s += static_cast<int8_t>(c);
    }
    return stored == u || static_cast<int64_t>(stored) == s;
}

struct Pax {
    bool has_path = false, has_linkpath = false, has_size = false, has_uid = false,
         has_gid = false, has_mtime = false;
    std::string path, linkpath;
    uint64_t size = 0, uid = 0, gid = 0;
    int64_t mtime = 0;
    std::vector<std::pair<std::string, std::string>> xattrs;
};

Status parse_pax(std::string_view data, Pax& pax, uint64_t block) {
    while (!data.empty()) {
        // "LEN key=value\n", LEN counting the whole record.
        size_t sp = data.find(' ');
        if (sp == std::string_view::npos || sp == 0 || sp > 20) return bad(block, "pax record length");
        uint64_t len;
        if (!decimal(data.substr(0, sp), len) || len <= sp + 1 || len > data.size())
            return bad(block, "pax record length");
        std::string_view rec = data.substr(sp + 1, len - sp - 1);
        data.remove_prefix(len);
        if (rec.empty() || rec.back() != '\n') return bad(block, "pax record does not end in a newline");
        rec.remove_suffix(1);
        size_t eq = rec.find('=');
        if (eq == std::string_view::npos || eq == 0) return bad(block, "pax record without '='");
        std::string_view key = rec.substr(0, eq), value = rec.substr(eq + 1);
        if (key == "path") {
            pax.path = value;
            pax.has_path = true;
        } else if (key == "linkpath") {
            pax.linkpath = value;
            pax.has_linkpath = true;
        } else if (key == "size") {
            if (!decimal(value, pax.size)) return bad(block, "pax size");
            pax.has_size = true;
        } else if (key == "uid") {
            if (!decimal(value, pax.uid) || pax.uid > UINT32_MAX) return bad(block, "pax uid");
            pax.has_uid = true;
        } else if (key == "gid") {
            if (!decimal(value, pax.gid) || pax.gid > UINT32_MAX) return bad(block, "pax gid");
            pax.has_gid = true;
        } else if (key == "mtime") {
            std::string_view v = value;
            bool neg = !v.empty() && v[0] == '-';
            if (neg) v.remove_prefix(1);
            v = v.substr(0, v.find('.'));
            uint64_t m;
            if (!decimal(v, m) || m > INT64_MAX) return bad(block, "pax mtime");
            pax.mtime = neg ? -static_cast<int64_t>(m) : static_cast<int64_t>(m);
            pax.has_mtime = true;
        } else if (key.starts_with("SCHILY.xattr.")) {
            std::string name(key.substr(13));
            if (name.empty() || name.size() > 255) return bad(block, "pax xattr name");
            pax.xattrs.emplace_back(std::move(name), std::string(value));
        } else if (key.starts_with("GNU.sparse.")) {
            return bad(block, "sparse files are not supported");
        }
        // Other keys (atime, ctime, comment, charset, LIBARCHIVE.*) carry
        // nothing we keep.
    }
    return {};
}

}  // namespace

Status TarReader::read_exact(uint8_t* buf, size_t n, bool* eof) {
    size_t got = 0;
    while (got < n) {
        auto r = read_(buf + got, n - got);
        if (!r) return std::move(r).error();
        if (*r == 0) {
            if (eof && got == 0) {
                *eof = true;
                return {};
            }
            return bad(block_, "the stream ends in the middle of an entry (truncated archive)");
        }
        got += *r;
    }
    return {};
}

Status TarReader::skip(uint64_t n) {
    uint8_t buf[16384];
    while (n > 0) {
        size_t k = static_cast<size_t>(std::min<uint64_t>(n, sizeof buf));
        TRY(read_exact(buf, k));
        n -= k;
    }
    return {};
}

Result<std::string> TarReader::read_string(uint64_t size, uint64_t max, const char* what) {
    if (size > max) return bad(block_, cat(what, " of ", size, " bytes is too long"));
    std::string s(size, '\0');
    TRY(read_exact(reinterpret_cast<uint8_t*>(s.data()), size));
    uint64_t pad = (kBlock - size % kBlock) % kBlock;
    TRY(skip(pad));
    block_ += (size + pad) / kBlock;
    return s;
}

Result<bool> TarReader::next(TarEntry& e) {
    TRY(skip(remaining_ + padding_));
    block_ += (remaining_ + padding_) / kBlock;
    remaining_ = padding_ = 0;
    std::string long_name, long_link;
    bool has_long_name = false, has_long_link = false;
    Pax pax;
    int meta = 0;
    for (;;) {
        uint8_t h[kBlock];
        bool eof = false;
        TRY(read_exact(h, kBlock, &eof));
        if (eof) {
            if (meta) return bad(block_, "the stream ends after an extended header");
            return false;  // no end-of-archive blocks: accepted, as GNU tar does
        }
        uint64_t here = block_++;
        if (std::all_of(h, h + kBlock, [](uint8_t c) { return c == 0; })) {
            if (meta) return bad(here, "an empty block after an extended header");
            return false;  // end of archive; the rest is not read
        }
        if (!checksum_ok(h)) return bad(here, "header checksum mismatch (not a tar stream, or corrupt)");
        uint64_t size;
        if (!number(h + 124, 12, size)) return bad(here, "size field");
        char flag = static_cast<char>(h[156]);
        if (flag == 'L' || flag == 'K' || flag == 'x' || flag == 'g') {
            if (++meta > 16) return bad(here, "too many extended headers in a row");
            if (flag == 'L') {
                long_name = TRY(read_string(size, kMaxLongName, "a long name"));
                long_name.resize(strnlen(long_name.c_str(), long_name.size()));
                has_long_name = true;
            } else if (flag == 'K') {
                long_link = TRY(read_string(size, kMaxLongName, "a long link name"));
                long_link.resize(strnlen(long_link.c_str(), long_link.size()));
                has_long_link = true;
            } else {
                std::string data = TRY(read_string(size, kMaxPax, "a pax header"));
                if (flag == 'x') {
                    TRY(parse_pax(data, pax, here));
                } else {
                    Pax global;  // global records: checked, and only sparse refused
                    TRY(parse_pax(data, global, here));
                }
            }
            continue;
        }
        e = TarEntry{};
        bool ustar = memcmp(h + 257, "ustar", 5) == 0;
        std::string name = field(h, 100);
        if (ustar && memcmp(h + 257, "ustar\0", 6) == 0) {  // POSIX: prefix field
            std::string prefix = field(h + 345, 155);
            if (!prefix.empty()) name = prefix + "/" + name;
        }
        e.name = pax.has_path ? pax.path : has_long_name ? long_name : name;
        e.linkname = pax.has_linkpath ? pax.linkpath : has_long_link ? long_link : field(h + 157, 100);
        uint64_t mode, uid, gid, mtime, major = 0, minor = 0;
        if (!number(h + 100, 8, mode) || !number(h + 108, 8, uid) || !number(h + 116, 8, gid) ||
            !number(h + 136, 12, mtime))
            return bad(here, "a numeric field");
        if (ustar && (!number(h + 329, 8, major) || !number(h + 337, 8, minor)))
            return bad(here, "a device number");
        if (pax.has_size) size = pax.size;
        if (pax.has_uid) uid = pax.uid;
        if (pax.has_gid) gid = pax.gid;
        if (uid > UINT32_MAX || gid > UINT32_MAX || major > UINT32_MAX || minor > UINT32_MAX ||
            mtime > INT64_MAX)
            return bad(here, "a numeric field is out of range");
        e.mode = static_cast<uint32_t>(mode & 07777);
        e.uid = static_cast<uint32_t>(uid);
        e.gid = static_cast<uint32_t>(gid);
        e.mtime = pax.has_mtime ? pax.mtime : static_cast<int64_t>(mtime);
        e.major = static_cast<uint32_t>(major);
        e.minor = static_cast<uint32_t>(minor);
        e.xattrs = std::move(pax.xattrs);
        switch (flag) {
        case '0':
        case '\0':
        case '7': e.type = Type::File; break;
        case '1': e.type = Type::Hardlink; break;
        case '2': e.type = Type::Symlink; break;
        case '3': e.type = Type::Char; break;
        case '4': e.type = Type::Block; break;
        case '5': e.type = Type::Dir; break;
        case '6': e.type = Type::Fifo; break;
        case 'S': return bad(here, cat(e.name, ": sparse files are not supported"));
        case 'V': return bad(here, "volume labels are not supported");
        case 'M': return bad(here, "multi-volume archives are not supported");
        default: return bad(here, cat(e.name, ": unknown entry type '", flag, "'"));
        }
        // Old tars mark directories with a trailing slash on a regular entry.
        if (e.type == Type::File && !e.name.empty() && e.name.back() == '/') e.type = Type::Dir;
        if (e.type == Type::File) {
            e.size = size;
        } else if (e.type == Type::Hardlink && size != 0) {
            // A hard link with data (pax allows it): the data is skipped.
            e.size = 0;
        }
        if (e.name.empty()) return bad(here, "an entry without a name");
        if (e.name.find('\0') != std::string::npos || e.linkname.find('\0') != std::string::npos)
            return bad(here, "a name holds a NUL byte");
        if ((e.type == Type::Symlink || e.type == Type::Hardlink) && e.linkname.empty())
            return bad(here, cat(e.name, ": a link without a target"));
        // Directories, links and devices may declare a size: skip their data.
        remaining_ = (e.type == Type::File) ? size : 0;
        uint64_t skip_now = (e.type == Type::File) ? 0 : size;
        if (skip_now > (UINT64_MAX - kBlock)) return bad(here, "size field");
        if (size > UINT64_MAX - kBlock) return bad(here, "size field");
        padding_ = (kBlock - size % kBlock) % kBlock + skip_now;
        return true;
    }
}

Status TarReader::read_data(const std::function<Status(const uint8_t*, size_t)>& sink) {
    uint8_t buf[65536];
    while (remaining_ > 0) {
        size_t k = static_cast<size_t>(std::min<uint64_t>(remaining_, sizeof buf));
        TRY(read_exact(buf, k));
        remaining_ -= k;
        block_ += 0;
        TRY(sink(buf, k));
    }
    return {};
}

Result<std::string> normalize_name(std::string_view name) {
    std::string out;
    size_t i = 0;
    while (i <= name.size()) {
        size_t j = name.find('/', i);
        if (j == std::string_view::npos) j = name.size();
        std::string_view comp = name.substr(i, j - i);
        i = j + 1;
        if (comp.empty() || comp == ".") continue;
        if (comp == "..") {
            Error e;
            e.err = EINVAL;
            e.what = cat("tar input: ", name, ": a \"..\" component (path traversal)");
            return e;
        }
        if (!out.empty()) out += '/';
        out.append(comp);
    }
    if (out.size() > 4096) {
        Error e;
        e.err = ENAMETOOLONG;
        e.what = cat("tar input: ", name.substr(0, 64), "...: name too long");
        return e;
    }
    return out;
}

}  // namespace kago::pack
