// lib/image: digests, chain IDs, names, platforms, the OCI documents, path
// safety, whiteout mapping, layer unpacking and writing, and the store.
// Nothing here needs privilege (as root, the owners and the trusted.*
// xattr are exercised too).
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/env.hpp"
#include "image/digest.hpp"
#include "image/import.hpp"
#include "image/ingest.hpp"
#include "image/layer.hpp"
#include "image/oci.hpp"
#include "image/store.hpp"
#include "temp_dir.hpp"

using namespace kago;
using namespace kago::image;

namespace {

using kago::test::TempDir;

struct Entry {
    std::string name;
    char type = 'f';  // f d l h (hard link) c (device)
    std::string data;  // file contents, or the link target
    mode_t mode = 0644;
};

// A tar (gzip'd when asked) of the entries, written by libarchive.
enum class Fmt { pax, gnu, ustar };
enum class Zip { none, gzip, zstd };

std::string make_tar(const std::vector<Entry>& entries, Zip zip, Fmt fmt) {
    std::string out;
    struct archive* a = archive_write_new();
    if (fmt == Fmt::pax) archive_write_set_format_pax_restricted(a);
    else if (fmt == Fmt::gnu) archive_write_set_format_gnutar(a);
    else archive_write_set_format_ustar(a);
    if (zip == Zip::gzip) archive_write_add_filter_gzip(a);
    if (zip == Zip::zstd) archive_write_add_filter_zstd(a);
    archive_write_set_bytes_in_last_block(a, 1);  // no zero padding after a compressed stream
    archive_write_open(
        a, &out, nullptr,
        [](struct archive*, void* ctx, const void* buf, size_t n) -> la_ssize_t {
            static_cast<std::string*>(ctx)->append(static_cast<const char*>(buf), n);
            return static_cast<la_ssize_t>(n);
        },
        nullptr);
    for (const auto& e : entries) {
        struct archive_entry* ae = archive_entry_new();
        archive_entry_set_pathname(ae, e.name.c_str());
        archive_entry_set_perm(ae, e.mode);
        archive_entry_set_mtime(ae, 1700000000, 0);
        switch (e.type) {
        case 'd': archive_entry_set_filetype(ae, AE_IFDIR); break;
        case 'l': archive_entry_set_filetype(ae, AE_IFLNK); archive_entry_set_symlink(ae, e.data.c_str()); break;
        case 'h': archive_entry_set_filetype(ae, AE_IFREG); archive_entry_set_hardlink(ae, e.data.c_str()); break;
        case 'c': archive_entry_set_filetype(ae, AE_IFCHR); archive_entry_set_rdev(ae, makedev(1, 3)); break;
        default: archive_entry_set_filetype(ae, AE_IFREG); archive_entry_set_size(ae, static_cast<la_int64_t>(e.data.size()));
        }
        archive_write_header(a, ae);
        if (e.type == 'f') archive_write_data(a, e.data.data(), e.data.size());
        archive_entry_free(ae);
    }
    archive_write_close(a);
    archive_write_free(a);
    return out;
}

std::string make_tar(const std::vector<Entry>& entries, bool gzip = false) {
    return make_tar(entries, gzip ? Zip::gzip : Zip::none, Fmt::pax);
}

int memfd_of(const std::string& bytes) {
    char tmpl[] = "/tmp/kago-image-blob.XXXXXX";
    int fd = mkstemp(tmpl);
    unlink(tmpl);
    EXPECT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    lseek(fd, 0, SEEK_SET);
    return fd;
}

Result<UnpackStats> unpack(const std::string& tar, const std::string& dir, UnpackOptions o = {}) {
    mkdir(dir.c_str(), 0755);
    int fd = memfd_of(tar);
    int d = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    auto r = unpack_layer(fd, d, o, "layer");
    close(fd);
    close(d);
    return r;
}

// The uncompressed bytes of a gzip stream (libarchive's raw format).
std::string gunzip(const std::string& gz) {
    struct archive* a = archive_read_new();
    archive_read_support_filter_gzip(a);
    archive_read_support_format_raw(a);
    archive_read_open_memory(a, gz.data(), gz.size());
    struct archive_entry* e;
    std::string out;
    if (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        char buf[4096];
        la_ssize_t n;
        while ((n = archive_read_data(a, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    }
    archive_read_free(a);
    return out;
}

bool exists(const std::string& p) {
    struct stat st;
    return lstat(p.c_str(), &st) == 0;
}

}  // namespace

TEST(ImageDigest, Sha256AndChecks) {
    EXPECT_EQ(sha256(""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    Sha256 h;
    h.update("ab", 2);
    h.update("c", 1);
    EXPECT_EQ(h.finish(), sha256("abc"));
    EXPECT_TRUE(check_digest(sha256("x"), "t").ok());
    EXPECT_FALSE(check_digest("sha512:abcd", "t").ok());
    EXPECT_NE(check_digest("sha512:abcd", "t").error().what.find("sha512"), std::string::npos);
    EXPECT_FALSE(check_digest("sha256:ABC", "t").ok());
    EXPECT_FALSE(check_digest("nothing", "t").ok());
    EXPECT_FALSE(check_digest("sha256:" + std::string(64, 'G'), "t").ok());
}

TEST(ImageDigest, ChainIds) {
    std::string a = sha256("a"), b = sha256("b"), c = sha256("c");
    auto ch = chain_ids({a, b, c});
    ASSERT_EQ(ch.size(), 3u);
    EXPECT_EQ(ch[0], a);
    EXPECT_EQ(ch[1], sha256(a + " " + b));
    EXPECT_EQ(ch[2], sha256(ch[1] + " " + c));
    EXPECT_TRUE(chain_ids({}).empty());
}

TEST(ImageNames, Normalize) {
    EXPECT_EQ(*normalize_name("busybox", "NAME"), "busybox:latest");
    EXPECT_EQ(*normalize_name("app:1", "NAME"), "app:1");
    EXPECT_EQ(*normalize_name("localhost:5000/app", "NAME"), "localhost:5000/app:latest");
    EXPECT_EQ(*normalize_name("localhost:5000/app:2", "NAME"), "localhost:5000/app:2");
    EXPECT_FALSE(normalize_name("", "NAME").ok());
    EXPECT_FALSE(normalize_name("-x", "NAME").ok());
    EXPECT_FALSE(normalize_name("a b", "NAME").ok());
    EXPECT_FALSE(normalize_name("app:", "NAME").ok());
}

TEST(ImagePlatform, ParseAndFit) {
    auto p = parse_platform("linux/arm/v7");
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->os, "linux");
    EXPECT_EQ(p->architecture, "arm");
    EXPECT_EQ(p->variant, "v7");
    EXPECT_EQ(p->str(), "linux/arm/v7");
    EXPECT_FALSE(parse_platform("amd64").ok());
    EXPECT_FALSE(parse_platform("linux/").ok());
    Platform amd = *parse_platform("linux/amd64");
    EXPECT_TRUE(fits(amd, amd));
    EXPECT_FALSE(fits(*parse_platform("linux/arm64"), amd));
    EXPECT_FALSE(host_platform().architecture.empty());
}

TEST(ImageOci, Documents) {
    std::string d = sha256("x");
    std::string m = R"({"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
                    d + R"(","size":1},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":")" +
                    d + R"(","size":3}]})";
    auto man = parse_manifest(m, "m");
    ASSERT_TRUE(man.ok()) << man.error().message();
    EXPECT_EQ(man->layers.size(), 1u);
    EXPECT_EQ(man->layers[0].size, 3);
    // Round trip.
    auto again = parse_manifest(manifest_json(*man), "m");
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->layers[0].digest, d);
    // Unknown media types are refused, naming the type.
    std::string bad = m;
    bad.replace(bad.find("tar+gzip"), 8, "squashfs");
    auto r = parse_manifest(bad, "m");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().what.find("unknown media type"), std::string::npos);
    EXPECT_FALSE(parse_manifest("[1,2]", "m").ok());
    EXPECT_FALSE(parse_manifest("{not json", "m").ok());
    // A config.
    std::string c = R"({"architecture":"amd64","os":"linux","config":{"User":"1000","WorkingDir":"/app",
        "Env":["A=1"],"Entrypoint":["/bin/sh","-c"],"Cmd":["echo hi"]},"rootfs":{"type":"layers","diff_ids":[")" +
                    d + R"("]}})";
    auto cfg = parse_config(c, "c");
    ASSERT_TRUE(cfg.ok()) << cfg.error().message();
    EXPECT_EQ(cfg->user, "1000");
    EXPECT_EQ(cfg->working_dir, "/app");
    EXPECT_EQ(cfg->entrypoint.size(), 2u);
    EXPECT_EQ(cfg->diff_ids[0], d);
    EXPECT_FALSE(parse_config(R"({"rootfs":{"type":"other"}})", "c").ok());
    // A config made by the store carries what it was given.
    auto made = parse_config(config_json(c, {d, d}, *parse_platform("linux/arm64"), "now", "test"), "c");
    ASSERT_TRUE(made.ok());
    EXPECT_EQ(made->diff_ids.size(), 2u);
    EXPECT_EQ(made->platform.architecture, "arm64");
    EXPECT_EQ(made->user, "1000");
}

TEST(ImageEnv, StringListRoundTrip) {
    std::vector<std::string> v = {"a b", "quote\"back\\slash", "new\nline", "ünï", ""};
    auto back = env::string_list(string_array(v));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, v);
    EXPECT_EQ(env::string_list("[]")->size(), 0u);
    EXPECT_EQ((*env::string_list(R"(["\u00e9\ud83d\ude00"])"))[0], "é😀");
    EXPECT_FALSE(env::string_list("").has_value());
    EXPECT_FALSE(env::string_list("[1]").has_value());
    EXPECT_FALSE(env::string_list("[\"a\"").has_value());
    EXPECT_FALSE(env::string_list("[\"a\"] x").has_value());
}

TEST(ImagePaths, CleanPath) {
    EXPECT_EQ(*clean_path("./a/b/", "l"), "a/b");
    EXPECT_EQ(*clean_path("a//./b", "l"), "a/b");
    EXPECT_EQ(*clean_path("./", "l"), "");
    EXPECT_FALSE(clean_path("/etc/passwd", "l").ok());
    EXPECT_FALSE(clean_path("../x", "l").ok());
    EXPECT_FALSE(clean_path("a/../../x", "l").ok());
    EXPECT_FALSE(clean_path("a/..", "l").ok());
    EXPECT_FALSE(clean_path(std::string_view("a\0b", 3), "l").ok());
}

TEST(ImagePaths, SymlinkClimbsOut) {
    EXPECT_FALSE(symlink_climbs_out("a/b", "c"));
    EXPECT_FALSE(symlink_climbs_out("a/b", "../c"));
    EXPECT_FALSE(symlink_climbs_out("a/b", "/etc/passwd"));  // resolved in the container's root
    EXPECT_TRUE(symlink_climbs_out("a/b", "../../c"));
    EXPECT_TRUE(symlink_climbs_out("b", "../x"));
    EXPECT_TRUE(symlink_climbs_out("a/b", "x/../../../y"));
    EXPECT_FALSE(symlink_climbs_out("a/b/c", "../../b"));
}

TEST(ImageWhiteouts, Names) {
    EXPECT_EQ(whiteout_kind(".wh..wh..opq"), Whiteout::opaque);
    EXPECT_EQ(whiteout_kind(".wh.gone"), Whiteout::file);
    EXPECT_EQ(whiteout_kind(".wh."), Whiteout::none);
    EXPECT_EQ(whiteout_kind("x.wh.y"), Whiteout::none);
    EXPECT_TRUE(is_overlay_xattr("trusted.overlay.opaque"));
    EXPECT_TRUE(is_overlay_xattr("user.overlay.redirect"));
    EXPECT_FALSE(layer_xattr("user.overlay.opaque"));
    EXPECT_FALSE(layer_xattr("trusted.x"));
    EXPECT_FALSE(layer_xattr("security.selinux"));
    EXPECT_TRUE(layer_xattr("security.capability"));
    EXPECT_TRUE(layer_xattr("user.mime_type"));
}

TEST(ImageUnpack, WhiteoutsLinksAndModes) {
    TempDir t;
    std::string d = t.path() + "/l";
    std::string tar = make_tar({{"dir", 'd', "", 0755},
                                {"dir/.wh.gone", 'f', ""},
                                {".wh.olddir", 'f', ""},
                                {"opq/.wh..wh..opq", 'f', ""},
                                {"opq/kept", 'f', "k"},
                                {"dir/file", 'f', "data", 04755},
                                {"dir/hard", 'h', "dir/file"},
                                {"dir/sym", 'l', "file", 0777},
                                {"dev", 'c', "", 0600},
                                {"ro", 'd', "", 0555},
                                {"ro/inside", 'f', "i"}},
                               true);
    auto r = unpack(tar, d);  // unprivileged options: no owners, devices or setuid
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->compression, "gzip");
    EXPECT_EQ(r->whiteouts, 2u);
    EXPECT_EQ(r->opaque, 1u);
    EXPECT_EQ(r->devices_skipped, 1u);
    EXPECT_EQ(r->setid_stripped, 1u);
    struct stat st;
    ASSERT_EQ(lstat((d + "/dir/gone").c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
    EXPECT_EQ(st.st_rdev, makedev(0, 0));
    ASSERT_EQ(lstat((d + "/olddir").c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
    char v[8] = {};
    EXPECT_EQ(getxattr((d + "/opq").c_str(), "user.overlay.opaque", v, sizeof v), 1);
    EXPECT_EQ(v[0], 'y');
    EXPECT_TRUE(exists(d + "/opq/kept"));
    EXPECT_FALSE(exists(d + "/opq/.wh..wh..opq"));
    ASSERT_EQ(lstat((d + "/dir/file").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0755u);
    EXPECT_EQ(st.st_nlink, 2u);
    ASSERT_EQ(lstat((d + "/dir/sym").c_str(), &st), 0);
    EXPECT_TRUE(S_ISLNK(st.st_mode));
    EXPECT_FALSE(exists(d + "/dev"));
    ASSERT_EQ(lstat((d + "/ro").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0555u);
    EXPECT_TRUE(exists(d + "/ro/inside"));
    // The diff_id is the digest of the uncompressed stream.
    EXPECT_EQ(r->diff_id, sha256(gunzip(tar)));
}

TEST(ImageUnpack, EveryCompressionAndTarFormat) {
    TempDir t;
    int i = 0;
    for (Zip zip : {Zip::none, Zip::gzip, Zip::zstd})
        for (Fmt fmt : {Fmt::pax, Fmt::gnu, Fmt::ustar}) {
            std::string d = t.path() + "/f" + std::to_string(i++);
            auto r = unpack(make_tar({{"a", 'd', "", 0755}, {"a/f", 'f', "data"}, {"a/.wh.x", 'f', ""},
                                      {"a/l", 'l', "f", 0777}, {"a/h", 'h', "a/f"}},
                                     zip, fmt),
                            d);
            ASSERT_TRUE(r.ok()) << r.error().message();
            EXPECT_EQ(r->compression, zip == Zip::none ? "none" : zip == Zip::gzip ? "gzip" : "zstd");
            EXPECT_EQ(r->whiteouts, 1u);
            struct stat st;
            ASSERT_EQ(lstat((d + "/a/h").c_str(), &st), 0);
            EXPECT_EQ(st.st_nlink, 2u);
            EXPECT_TRUE(exists(d + "/a/l"));
        }
}

TEST(ImageUnpack, DevicesAndOwnersOnlyWhenAsked) {
    if (geteuid() != 0) GTEST_SKIP() << "making a device node needs root";
    TempDir t;
    UnpackOptions o;
    o.owners = o.devices = o.setid = true;
    auto r = unpack(make_tar({{"null", 'c', "", 0666}, {"s", 'f', "x", 04755}}), t.path() + "/d", o);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->devices_skipped, 0u);
    struct stat st;
    ASSERT_EQ(lstat((t.path() + "/d/null").c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
    EXPECT_EQ(st.st_rdev, makedev(1, 3));
    ASSERT_EQ(lstat((t.path() + "/d/s").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 04755u);
}

TEST(ImageUnpack, RefusesEscapes) {
    TempDir t;
    struct Case {
        const char* name;
        std::vector<Entry> entries;
        const char* says;
    } cases[] = {
        {"dotdot", {{"../evil", 'f', "x"}}, "climb out"},
        {"absolute", {{"/evil", 'f', "x"}}, "absolute"},
        {"through a symlink", {{"esc", 'l', t.path()}, {"esc/pwned", 'f', "x"}}, "symlink"},
        {"hard link out", {{"h", 'h', "../../etc/passwd"}}, "climb out"},
        {"symlink climbing", {{"a", 'd', ""}, {"a/l", 'l', "../../x"}}, "climbs out"},
    };
    int i = 0;
    for (const auto& c : cases) {
        auto r = unpack(make_tar(c.entries), t.path() + "/c" + std::to_string(i++));
        ASSERT_FALSE(r.ok()) << c.name;
        EXPECT_NE(r.error().what.find(c.says), std::string::npos) << c.name << ": " << r.error().what;
    }
    EXPECT_FALSE(exists(t.path() + "/pwned"));
    // A truncated tar, and something that is no tar at all.
    std::string tar = make_tar({{"f", 'f', std::string(5000, 'x')}});
    auto r = unpack(tar.substr(0, 2000), t.path() + "/trunc");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().what.find("runcated"), std::string::npos) << r.error().what;
    EXPECT_FALSE(unpack("this is not a tar archive at all", t.path() + "/junk").ok());
}

// Found by tests/fuzz/image-layer: a gzip stream cut short in its first
// block fails archive_read_open_fd() without an error string; the message
// was built from a null char* (a crash in the programs, UB everywhere).
TEST(ImageUnpack, ACutGzipStreamIsAnErrorNotACrash) {
    TempDir t;
    const unsigned char cut[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xed,
                                 0xd1, 0xb9, 0x0d, 0xc3, 0x30, 0x0c, 0x40, 0x51, 0xd5, 0x99, 0xc2,
                                 0x1b, 0x58, 0x91, 0x75, 0xcc, 0x23, 0x8f, 0x90, 0x63, 0xff, 0x08,
                                 0x2a, 0x5d, 0xa4, 0xb3, 0x81, 0x20, 0xef, 0x35, 0x24, 0xd8, 0xb0,
                                 0xf8, 0x7d, 0x0d, 0xa7, 0x00, 0x00, 0xf0, 0xa3, 0x3e, 0xf8, 0x88,
                                 0xae, 0x63, 0x00, 0x28, 0x00, 0x16};
    auto r = unpack(std::string(reinterpret_cast<const char*>(cut), sizeof cut), t.path() + "/cut");
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().what.starts_with("layer: ")) << r.error().what;
    EXPECT_GT(r.error().what.size(), strlen("layer: ")) << r.error().what;
}

// --- unpacking with workers (UnpackOptions::workers) -------------------------

namespace {

// n > 1: a reader thread too (as set_threads() gives from 3 CPUs).
UnpackOptions with_workers(unsigned n) {
    UnpackOptions o;
    o.workers = n;
    o.reader = n > 1;
    return o;
}

// One line per path below root, sorted: type, mode, link count, size and
// contents (or a symlink's target, a node's numbers). Hard links show as
// link counts; which names share an inode is checked where it matters.
void walk(const std::string& root, const std::string& rel, std::vector<std::string>& out) {
    DIR* d = opendir((root + "/" + rel).c_str());
    if (!d) return;
    std::vector<std::string> names;
    while (struct dirent* e = readdir(d))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            names.emplace_back(e->d_name);
    closedir(d);
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
        std::string p = rel.empty() ? n : rel + "/" + n;
        std::string full = root + "/" + p;
        struct stat st;
        if (lstat(full.c_str(), &st) != 0) continue;
        std::string line = p + " " + std::to_string(st.st_mode) + " " +
                           std::to_string(st.st_nlink) + " " + std::to_string(st.st_size);
        if (S_ISREG(st.st_mode)) {
            std::ifstream f(full, std::ios::binary);
            std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
            line += " " + sha256(data);
        } else if (S_ISLNK(st.st_mode)) {
            char t[4096];
            ssize_t k = readlink(full.c_str(), t, sizeof t);
            line += " -> " + std::string(t, k > 0 ? static_cast<size_t>(k) : 0);
        } else if (S_ISCHR(st.st_mode)) {
            line +=
                " " + std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev));
        }
        out.push_back(line);
        if (S_ISDIR(st.st_mode)) walk(root, p, out);
    }
}

std::vector<std::string> tree(const std::string& root) {
    std::vector<std::string> out;
    walk(root, "", out);
    return out;
}

std::string read_all(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// Many directories of many files, some larger than a worker takes in
// memory, with links, whiteouts and entries replaced along the way.
std::vector<Entry> busy_layer() {
    std::vector<Entry> es;
    for (int d = 0; d < 12; ++d) {
        std::string dir = "d" + std::to_string(d);
        es.push_back({dir, 'd', "", 0755});
        for (int f = 0; f < 40; ++f) {
            std::string name = dir + "/f" + std::to_string(f);
            size_t size = (f == 7) ? (300u << 10) : static_cast<size_t>(f * 37);
            es.push_back(
                {name, 'f', std::string(size, static_cast<char>('a' + (d + f) % 26)), 0644});
        }
        es.push_back({dir + "/sub", 'd', "", 0700});
        es.push_back({dir + "/sub/s", 'l', "../f1", 0777});
        es.push_back({dir + "/.wh.gone", 'f', ""});
        es.push_back({dir + "/f3", 'f', "replaced " + dir, 0600});
    }
    es.push_back({"d0/hard", 'h', "d11/f5"});
    es.push_back({"d5/f7", 'f', "small now", 0644});
    es.push_back({"d6/f8", 'f', std::string(400u << 10, 'z'), 0644});
    return es;
}

}  // namespace

TEST(ImageUnpackWorkers, AnyNumberOfWorkersMakesTheSameTree) {
    TempDir t;
    std::string tar = make_tar(busy_layer(), true);
    std::vector<std::string> first;
    std::string diff_id;
    for (unsigned n : {1u, 2u, 4u, 7u}) {
        std::string d = t.path() + "/w" + std::to_string(n);
        auto r = unpack(tar, d, with_workers(n));
        ASSERT_TRUE(r.ok()) << n << ": " << r.error().message();
        EXPECT_EQ(r->diff_id, sha256(gunzip(tar))) << n;
        EXPECT_EQ(r->whiteouts, 12u) << n;
        auto now = tree(d);
        if (first.empty()) {
            first = now;
            diff_id = r->diff_id;
            EXPECT_GT(first.size(), 500u);
        } else {
            EXPECT_EQ(now, first) << n << " workers";
        }
    }
}

TEST(ImageUnpackWorkers, ALaterEntryReplacesAnEarlierOne) {
    TempDir t;
    std::vector<Entry> es = {
        {"a", 'd', "", 0755}, {"a/f", 'f', "first"}, {"a/l", 'f', "a file first"}};
    // Work for the other workers in between.
    for (int i = 0; i < 200; ++i)
        es.push_back({"b" + std::to_string(i % 9) + "/x" + std::to_string(i), 'f', "x"});
    es.push_back({"a/f", 'f', "second"});
    es.push_back({"a/l", 'l', "f", 0777});
    es.push_back({"a/big", 'f', std::string(300u << 10, 'b')});
    es.push_back({"a/big", 'f', "small"});
    es.push_back({"a/was-file", 'f', "then a directory"});
    es.push_back({"a/was-file", 'd', "", 0755});
    es.push_back({"a/was-file/in", 'f', "in"});
    es.push_back({"a/was-dir", 'd', "", 0755});
    es.push_back({"a/was-dir", 'f', "then a file"});
    for (unsigned n : {2u, 4u}) {
        std::string d = t.path() + "/w" + std::to_string(n);
        auto r = unpack(make_tar(es), d, with_workers(n));
        ASSERT_TRUE(r.ok()) << r.error().message();
        EXPECT_EQ(read_all(d + "/a/f"), "second");
        struct stat st;
        ASSERT_EQ(lstat((d + "/a/l").c_str(), &st), 0);
        EXPECT_TRUE(S_ISLNK(st.st_mode));
        EXPECT_EQ(read_all(d + "/a/big"), "small");
        ASSERT_EQ(lstat((d + "/a/was-file").c_str(), &st), 0);
        EXPECT_TRUE(S_ISDIR(st.st_mode));
        EXPECT_EQ(read_all(d + "/a/was-file/in"), "in");
        EXPECT_EQ(read_all(d + "/a/was-dir"), "then a file");
    }
}

TEST(ImageUnpackWorkers, AHardLinkToAFileAWorkerWrote) {
    TempDir t;
    std::vector<Entry> es;
    for (int i = 0; i < 300; ++i)
        es.push_back({"a" + std::to_string(i % 5) + "/f" + std::to_string(i), 'f',
                      "data" + std::to_string(i)});
    es.push_back({"z/hard", 'h', "a3/f298"});
    es.push_back({"a3/also", 'h', "a3/f298"});
    std::string d = t.path() + "/l";
    auto r = unpack(make_tar(es), d, with_workers(4));
    ASSERT_TRUE(r.ok()) << r.error().message();
    struct stat a, b;
    ASSERT_EQ(lstat((d + "/a3/f298").c_str(), &a), 0);
    ASSERT_EQ(lstat((d + "/z/hard").c_str(), &b), 0);
    EXPECT_EQ(a.st_ino, b.st_ino);
    EXPECT_EQ(a.st_nlink, 3u);
    EXPECT_EQ(read_all(d + "/z/hard"), "data298");
}

TEST(ImageUnpackWorkers, AWhiteoutAfterFilesInTheSameDirectory) {
    TempDir t;
    std::vector<Entry> es;
    for (int i = 0; i < 100; ++i) es.push_back({"d/f" + std::to_string(i), 'f', "f"});
    es.push_back({"d/.wh.f50", 'f', ""});  // a file of this layer: it stays
    es.push_back({"d/.wh.lower", 'f', ""});
    es.push_back({"d/.wh..wh..opq", 'f', ""});
    std::string d = t.path() + "/l";
    auto r = unpack(make_tar(es), d, with_workers(3));
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->whiteouts, 1u);
    EXPECT_EQ(r->opaque, 1u);
    struct stat st;
    ASSERT_EQ(lstat((d + "/d/f50").c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    ASSERT_EQ(lstat((d + "/d/lower").c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
    EXPECT_EQ(tree(d).size(), 102u);
}

TEST(ImageUnpackWorkers, AnErrorInAWorkerIsTheOneReported) {
    TempDir t;
    std::vector<Entry> es;
    for (int i = 0; i < 100; ++i) es.push_back({"a/f" + std::to_string(i), 'f', "f"});
    std::string long_name = "b/" + std::string(300, 'n');  // ENAMETOOLONG, in a worker
    es.push_back({long_name, 'f', "x"});
    for (int i = 0; i < 2000; ++i)
        es.push_back({"c" + std::to_string(i % 7) + "/f" + std::to_string(i), 'f', "f"});
    std::string d = t.path() + "/l";
    auto r = unpack(make_tar(es), d, with_workers(4));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().err, ENAMETOOLONG);
    EXPECT_NE(r.error().what.find("create " + long_name), std::string::npos) << r.error().what;
    // A symlink that a worker made is still refused as a way through.
    auto esc = unpack(make_tar({{"e", 'l', t.path()}, {"e/pwned", 'f', "x"}}), t.path() + "/esc",
                      with_workers(2));
    ASSERT_FALSE(esc.ok());
    EXPECT_NE(esc.error().what.find("symlink"), std::string::npos) << esc.error().what;
    EXPECT_FALSE(exists(t.path() + "/pwned"));
}

TEST(ImageWrite, UpperBackToWhiteouts) {
    TempDir t;
    std::string up = t.path() + "/up";
    mkdir(up.c_str(), 0755);
    mkdir((up + "/opq").c_str(), 0755);
    setxattr((up + "/opq").c_str(), "user.overlay.opaque", "y", 1, 0);
    std::system(("echo hi > " + up + "/opq/f; ln " + up + "/opq/f " + up + "/opq/g; ln -s f " + up + "/opq/s").c_str());
    bool whiteout = mknod((up + "/gone").c_str(), S_IFCHR, makedev(0, 0)) == 0;
    int src = open(up.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    std::string out = t.path() + "/layer.tar";
    int fd = open(out.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    WriteOptions w;
    w.whiteouts = true;
    auto st = write_layer(src, fd, w, "upper");
    ASSERT_TRUE(st.ok()) << st.error().message();
    EXPECT_EQ(st->whiteouts, whiteout ? 2u : 1u);
    lseek(fd, 0, SEEK_SET);
    std::string back = t.path() + "/back";
    mkdir(back.c_str(), 0755);
    int b = open(back.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    auto r = unpack_layer(fd, b, {}, "layer");
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->diff_id, st->digest);
    EXPECT_EQ(r->opaque, 1u);
    struct stat s;
    ASSERT_EQ(lstat((back + "/opq/g").c_str(), &s), 0);
    EXPECT_EQ(s.st_nlink, 2u);
    if (whiteout) {
        ASSERT_EQ(lstat((back + "/gone").c_str(), &s), 0);
        EXPECT_TRUE(S_ISCHR(s.st_mode));
    }
    close(src);
    close(fd);
    close(b);
}

TEST(ImageStore, BlobsChecksAndCollection) {
    TempDir t;
    auto s = Store::open(t.path() + "/store", true);
    ASSERT_TRUE(s.ok()) << s.error().message();
    EXPECT_TRUE(exists(t.path() + "/store/oci-layout"));
    EXPECT_TRUE(exists(t.path() + "/store/index.json"));
    EXPECT_FALSE(Store::open(t.path() + "/a:b", true).ok());
    // A blob whose digest does not match is refused and not published.
    int fd = memfd_of("content");
    std::string other = sha256("other");
    auto bad = s->put_blob(fd, other, -1, "blob");
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().what.find(other), std::string::npos);
    EXPECT_FALSE(s->has_blob(sha256("content")));
    EXPECT_FALSE(s->has_blob(other));
    lseek(fd, 0, SEEK_SET);
    auto good = s->put_blob(fd, sha256("content"), 7, "blob");
    ASSERT_TRUE(good.ok()) << good.error().message();
    EXPECT_TRUE(s->has_blob(sha256("content")));
    close(fd);
    // A layer is published whole under its chain ID, once.
    std::string tar = make_tar({{"f", 'f', "x"}});
    auto lb = s->put_bytes(tar);
    ASSERT_TRUE(lb.ok());
    std::string diff = sha256(tar);
    auto wrong = s->add_layer(lb->digest, sha256("nope"), diff, {});
    ASSERT_FALSE(wrong.ok());
    EXPECT_NE(wrong.error().what.find("diff_id"), std::string::npos);
    EXPECT_FALSE(s->has_layer(diff));
    auto l = s->add_layer(lb->digest, diff, diff, {});
    ASSERT_TRUE(l.ok()) << l.error().message();
    EXPECT_TRUE(l->has_value());
    EXPECT_TRUE(exists(s->layer_path(diff) + "/f"));
    auto shared = s->add_layer(lb->digest, diff, diff, {});
    ASSERT_TRUE(shared.ok());
    EXPECT_FALSE(shared->has_value());
    // Nothing refers to them: collected.
    auto gone = s->collect();
    ASSERT_TRUE(gone.ok());
    EXPECT_EQ(gone->first, 2u);
    EXPECT_EQ(gone->second, 1u);
    EXPECT_FALSE(s->has_layer(diff));
    EXPECT_FALSE(resolve(*s, "nothing").ok());
}

namespace {
// The two ways a LayerWriter runs: everything hashed by the unpacker or
// the feeder (one CPU), or a hasher thread and a copier (set_threads(2)).
UnpackOptions layout(bool threads) {
    UnpackOptions o;
    set_threads(o, threads ? 2 : 1);
    return o;
}

// What tmp/, blobs/sha256 and layers/ of a store hold.
size_t entries_in(const std::string& dir) {
    size_t n = 0;
    if (DIR* d = opendir(dir.c_str())) {
        while (struct dirent* e = readdir(d))
            if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") ++n;
        closedir(d);
    }
    return n;
}
}  // namespace

TEST(ImageIngest, OnePassPublishesBothOrNothing) {
    TempDir t;
    auto s = Store::open(t.path() + "/store", true);
    ASSERT_TRUE(s.ok()) << s.error().message();
    std::string root = t.path() + "/store";
    std::string tar = make_tar(
        {{"d", 'd', "", 0755}, {"d/f", 'f', std::string(300000, 'y')}, {"l", 'l', "d/f"}}, true);
    std::string diff = sha256(gunzip(tar));
    // A wrong blob digest: neither the blob nor the layer is published.
    int fd = memfd_of(tar);
    auto bad = ingest_layer(*s, fd, {sha256("other"), -1, diff, diff, false}, {}, "layer 1");
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().what.find("digest mismatch"), std::string::npos) << bad.error().message();
    EXPECT_FALSE(s->has_layer(diff));
    EXPECT_EQ(entries_in(root + "/blobs/sha256"), 0u);
    EXPECT_EQ(entries_in(root + "/tmp"), 0u);
    // A wrong diff_id: the same.
    lseek(fd, 0, SEEK_SET);
    auto wrong =
        ingest_layer(*s, fd, {sha256(tar), -1, sha256("nope"), diff, false}, {}, "layer 1");
    ASSERT_FALSE(wrong.ok());
    EXPECT_NE(wrong.error().what.find("diff_id"), std::string::npos) << wrong.error().message();
    EXPECT_EQ(entries_in(root + "/blobs/sha256"), 0u);
    EXPECT_EQ(entries_in(root + "/tmp"), 0u);
    // Right: both, in one pass; the stats say what was unpacked.
    lseek(fd, 0, SEEK_SET);
    auto good = ingest_layer(
        *s, fd, {sha256(tar), static_cast<int64_t>(tar.size()), diff, diff, false}, {}, "layer 1");
    ASSERT_TRUE(good.ok()) << good.error().message();
    ASSERT_TRUE(good->stats.has_value());
    EXPECT_EQ(good->stats->compression, "gzip");
    EXPECT_EQ(good->blob.digest, sha256(tar));
    EXPECT_TRUE(s->has_blob(sha256(tar)));
    EXPECT_TRUE(exists(s->layer_path(diff) + "/d/f"));
    EXPECT_EQ(entries_in(root + "/tmp"), 0u);
    close(fd);
}

TEST(ImageIngest, GarbageEndsWithTheUnpackError) {
    // The unpacker gives up at once; the reader never waits for it, and
    // still reads to the end (the digest names the content, hashed from
    // the file when the unpacker did not read it as a plain tar).
    for (bool threads : {false, true}) {
        TempDir t;
        auto s = Store::open(t.path() + "/store", true);
        ASSERT_TRUE(s.ok()) << s.error().message();
        std::string junk(16 << 20, 'z');
        int fd = memfd_of(junk);
        auto r = ingest_layer(*s, fd, {sha256(junk), -1, sha256("x"), sha256("x"), false},
                              layout(threads), "layer 1");
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().what.find("digest mismatch"), std::string::npos) << r.error().message();
        EXPECT_EQ(entries_in(t.path() + "/store/blobs/sha256"), 0u);
        EXPECT_EQ(entries_in(t.path() + "/store/tmp"), 0u);
        close(fd);
    }
}

TEST(ImageIngest, ASourceInTheStoresTmpIsLinkedNotCopied) {
    TempDir t;
    auto s = Store::open(t.path() + "/store", true);
    ASSERT_TRUE(s.ok()) << s.error().message();
    std::string tar = make_tar({{"f", 'f', "x"}});
    std::string src = t.path() + "/store/tmp/src";
    {
        int w = open(src.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        ASSERT_GE(w, 0);
        ASSERT_EQ(write(w, tar.data(), tar.size()), static_cast<ssize_t>(tar.size()));
        close(w);
    }
    int fd = open(src.c_str(), O_RDONLY | O_CLOEXEC);
    auto r = ingest_layer(*s, fd, {"", -1, sha256(tar), sha256(tar), true}, {}, "layer 1");
    ASSERT_TRUE(r.ok()) << r.error().message();
    struct stat a, b;
    ASSERT_EQ(fstat(fd, &a), 0);
    ASSERT_EQ(stat((t.path() + "/store/" + s->blob_path(sha256(tar))).c_str(), &b), 0);
    EXPECT_EQ(a.st_ino, b.st_ino);
    EXPECT_EQ(b.st_mode & 07777, 0644u);
    close(fd);
}

TEST(ImageStore, TmpNamesAreUniqueAcrossThreads) {
    TempDir t;
    auto s = Store::open(t.path() + "/store", true);
    ASSERT_TRUE(s.ok()) << s.error().message();
    std::vector<std::vector<std::string>> got(8);
    std::vector<std::thread> ts;
    for (size_t k = 0; k < got.size(); ++k)
        ts.emplace_back([&, k] {
            for (int i = 0; i < 1000; ++i) got[k].push_back(s->tmp_name("x"));
        });
    for (auto& th : ts) th.join();
    std::set<std::string> all;
    for (const auto& g : got) all.insert(g.begin(), g.end());
    EXPECT_EQ(all.size(), 8000u);
}

TEST(ImageStore, ThreadsStoringTheSameBlobAtOnceAllSucceed) {
    // The second rename finds the blob there (EEXIST): already stored.
    TempDir t;
    auto s = Store::open(t.path() + "/store", true);
    ASSERT_TRUE(s.ok()) << s.error().message();
    for (int round = 0; round < 20; ++round) {
        std::string bytes(1 << 16, static_cast<char>('a' + round));
        std::vector<Result<BlobRef>> got(6, Error{});
        std::vector<std::thread> ts;
        for (size_t k = 0; k < got.size(); ++k)
            ts.emplace_back([&, k] { got[k] = s->put_bytes(bytes); });
        for (auto& th : ts) th.join();
        for (auto& g : got) {
            ASSERT_TRUE(g.ok()) << g.error().message();
            EXPECT_EQ(g->digest, sha256(bytes));
        }
        auto back = s->read_blob(sha256(bytes));
        ASSERT_TRUE(back.ok()) << back.error().message();
        EXPECT_EQ(*back, bytes);
    }
    EXPECT_EQ(entries_in(t.path() + "/store/tmp"), 0u);
}

namespace {
void writers_in_flight(bool threads);
}  // namespace

TEST(ImageIngest, WritersInFlightAtOnceEachUnpackTheirOwn) {
    for (bool threads : {false, true}) writers_in_flight(threads);
}

TEST(ImageIngest, ThreadsForTheCpus) {
    UnpackOptions o;
    set_threads(o, 1);
    EXPECT_FALSE(o.reader);
    EXPECT_EQ(o.workers, 1u);
    set_threads(o, 2);
    EXPECT_TRUE(o.reader);
    EXPECT_EQ(o.workers, 1u);
    set_threads(o, 3);
    EXPECT_TRUE(o.reader);
    EXPECT_EQ(o.workers, 1u);
    set_threads(o, 8);
    EXPECT_TRUE(o.reader);
    EXPECT_EQ(o.workers, 6u);
}

namespace {

// A file of t's directory holding `bytes`, open for reading.
int file_of(const TempDir& t, const std::string& name, const std::string& bytes) {
    t.write(name, bytes);
    return open((t.path() + "/" + name).c_str(), O_RDONLY | O_CLOEXEC);
}

}  // namespace

TEST(ImageIngest, ACopiedRangeIsHashedAndUnpackedFromTheBlob) {
    // A layer in the middle of a file (as in a docker-archive), plain and
    // gzip, copied by the kernel, in both layouts: the blob holds the
    // range alone, its digest and the diff_id are of those bytes. A
    // source on another kind of file system (a memfd: the kernel answers
    // EXDEV) is copied through a buffer, the same bytes.
    for (bool threads : {false, true}) {
        for (int kind = 0; kind < 3; ++kind) {
            SCOPED_TRACE(cat(threads ? "threads" : "one thread", ", source ", kind));
            bool gz = kind == 1, memfd = kind == 2;
            TempDir t;
            auto s = Store::open(t.path() + "/store", true);
            ASSERT_TRUE(s.ok()) << s.error().message();
            std::string tar = make_tar({{"d", 'd', "", 0755},
                                        {"d/big", 'f', std::string(9 << 20, 'b')},
                                        {"d/small", 'f', "s"}},
                                       gz);
            std::string before(1536, 'p'), after(1024, '\0');
            int fd = file_of(t, "archive", before + tar + after);
            if (memfd) {
                close(fd);
                fd = memfd_create("archive", MFD_CLOEXEC);
                std::string all = before + tar + after;
                ASSERT_EQ(write(fd, all.data(), all.size()), static_cast<ssize_t>(all.size()));
            }
            auto w = LayerWriter::start(*s, layout(threads), "layer 1");
            ASSERT_TRUE(w.ok()) << w.error().message();
            ASSERT_TRUE((*w)->copy_range(fd, before.size(), tar.size()).ok());
            close(fd);  // the copier has its own descriptor
            auto p = (*w)->finish();
            ASSERT_TRUE(p.ok()) << p.error().message();
            EXPECT_EQ(p->blob.digest, sha256(tar));
            EXPECT_EQ(p->blob.size, static_cast<int64_t>(tar.size()));
            EXPECT_EQ(p->stats.diff_id, sha256(gz ? gunzip(tar) : tar));
            EXPECT_EQ(p->stats.compression, gz ? "gzip" : "none");
            auto made = publish(*s, *p, p->stats.diff_id);
            ASSERT_TRUE(made.ok()) << made.error().message();
            struct stat st;
            ASSERT_EQ(stat((s->layer_path(p->stats.diff_id) + "/d/big").c_str(), &st), 0);
            EXPECT_EQ(st.st_size, 9 << 20);
            auto back = s->read_blob(sha256(tar));
            ASSERT_TRUE(back.ok()) << back.error().message();
            EXPECT_EQ(*back, tar);
        }
    }
}

TEST(ImageIngest, ACopiedRangeIsReadFromTheBlobWhoeverWritesTheSource) {
    // The source changes while it is copied (someone writes the archive):
    // the digest, the diff_id and the files are all of what the blob
    // got, never a mix of the source's old and new bytes.
    for (bool threads : {false, true}) {
        TempDir t;
        auto s = Store::open(t.path() + "/store", true);
        ASSERT_TRUE(s.ok()) << s.error().message();
        std::string tar = make_tar({{"f", 'f', std::string(24 << 20, 'a')}});
        int fd = file_of(t, "archive", tar);
        int writer = open((t.path() + "/archive").c_str(), O_WRONLY | O_CLOEXEC);
        ASSERT_GE(writer, 0);
        auto w = LayerWriter::start(*s, layout(threads), "layer 1");
        ASSERT_TRUE(w.ok()) << w.error().message();
        ASSERT_TRUE((*w)->copy_range(fd, 0, tar.size()).ok());
        std::string other(1 << 20, 'z');
        for (size_t off = 8 << 20; off < (20u << 20); off += other.size())
            ASSERT_EQ(pwrite(writer, other.data(), other.size(), off),
                      static_cast<ssize_t>(other.size()));
        close(writer);
        close(fd);
        auto p = (*w)->finish();
        ASSERT_TRUE(p.ok()) << p.error().message();
        std::string blob = read_all(t.path() + "/store/tmp/" + p->blob_tmp);
        EXPECT_EQ(blob.size(), tar.size());
        EXPECT_EQ(p->blob.digest, sha256(blob));
        EXPECT_EQ(p->stats.diff_id, sha256(blob));
        EXPECT_EQ(read_all(t.path() + "/store/tmp/" + p->layer_tmp + "/f"),
                  blob.substr(512, 24 << 20));
        discard(*s, *p);
    }
}

TEST(ImageIngest, ARangePastTheFilesEndIsAnError) {
    for (bool threads : {false, true}) {
        TempDir t;
        auto s = Store::open(t.path() + "/store", true);
        ASSERT_TRUE(s.ok()) << s.error().message();
        std::string tar = make_tar({{"f", 'f', std::string(1 << 20, 'a')}});
        int fd = file_of(t, "archive", tar);
        auto w = LayerWriter::start(*s, layout(threads), "layer 1");
        ASSERT_TRUE(w.ok()) << w.error().message();
        Status st = (*w)->copy_range(fd, 0, tar.size() + 4096);
        auto p = st ? (*w)->finish() : Result<Pending>(std::move(st).error());
        ASSERT_FALSE(p.ok());
        EXPECT_NE(p.error().what.find("the file ends 4096 bytes before the layer does"),
                  std::string::npos)
            << p.error().message();
        w->reset();
        EXPECT_EQ(entries_in(t.path() + "/store/tmp"), 0u);
        close(fd);
    }
}

TEST(ImageIngest, APlainLayerInAFileIsStoredFromWhereTheDescriptorStands) {
    // ingest_layer copies a regular file from its offset to its end.
    TempDir t;
    auto s = Store::open(t.path() + "/store", true);
    ASSERT_TRUE(s.ok()) << s.error().message();
    std::string tar = make_tar({{"f", 'f', std::string(5 << 20, 'q')}});
    int fd = file_of(t, "blob", std::string(100, 'j') + tar);
    ASSERT_EQ(lseek(fd, 100, SEEK_SET), 100);
    auto r = ingest_layer(
        *s, fd, {sha256(tar), static_cast<int64_t>(tar.size()), sha256(tar), sha256(tar), false},
        layout(true), "layer 1");
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->blob.digest, sha256(tar));
    EXPECT_TRUE(exists(s->layer_path(sha256(tar)) + "/f"));
    close(fd);
}

TEST(ImageStore, ANewStoresIndexCutShortByACrashIsEmpty) {
    // A new store's empty index.json is not synced; a crash may leave it
    // an empty file, which is an empty index, not a broken store.
    TempDir t;
    {
        auto s = Store::open(t.path() + "/store", true);
        ASSERT_TRUE(s.ok()) << s.error().message();
    }
    ASSERT_EQ(truncate((t.path() + "/store/index.json").c_str(), 0), 0);
    auto s = Store::open(t.path() + "/store", true);
    ASSERT_TRUE(s.ok()) << s.error().message();
    auto idx = s->index();
    ASSERT_TRUE(idx.ok()) << idx.error().message();
    EXPECT_TRUE(idx->manifests.empty());
    EXPECT_FALSE(resolve(*s, "anything").ok());
}

TEST(ImageStore, AnEmptyIndexBesideBlobsIsRefusedAndCollectsNothing) {
    // Read as a store without images, an emptied index.json would have the
    // next import or --remove collect every blob: refused, nothing removed.
    TempDir t;
    auto s = Store::open(t.path() + "/store", true);
    ASSERT_TRUE(s.ok()) << s.error().message();
    auto b = s->put_bytes("kept");
    ASSERT_TRUE(b.ok()) << b.error().message();
    ASSERT_EQ(truncate((t.path() + "/store/index.json").c_str(), 0), 0);
    auto idx = s->index();
    ASSERT_FALSE(idx.ok());
    EXPECT_NE(idx.error().what.find("index.json is empty, but the store holds blobs"),
              std::string::npos)
        << idx.error().message();
    EXPECT_FALSE(s->collect().ok());
    EXPECT_TRUE(s->has_blob(b->digest));
}

namespace {

void writers_in_flight(bool threads) {
    // As DockerStream keeps them: every writer fed whole, then finished in
    // order; the feeder never waited for an unpacker.
    SCOPED_TRACE(threads ? "with a hasher" : "without threads");
    TempDir t;
    auto s = Store::open(t.path() + "/store", true);
    ASSERT_TRUE(s.ok()) << s.error().message();
    std::vector<std::string> tars;
    std::vector<std::unique_ptr<LayerWriter>> ws;
    for (int i = 0; i < 4; ++i) {
        tars.push_back(make_tar(
            {{"f" + std::to_string(i), 'f', std::string(3 << 20, static_cast<char>('0' + i))}},
            i % 2 == 1));
        auto w = LayerWriter::start(*s, layout(threads), "layer " + std::to_string(i));
        ASSERT_TRUE(w.ok()) << w.error().message();
        const std::string& b = tars.back();
        for (size_t off = 0; off < b.size(); off += 4096)
            ASSERT_TRUE((*w)->feed(b.data() + off, std::min<size_t>(4096, b.size() - off)).ok());
        ws.push_back(std::move(*w));
    }
    for (int i = 0; i < 4; ++i) {
        auto p = ws[i]->finish();
        ASSERT_TRUE(p.ok()) << p.error().message();
        EXPECT_EQ(p->blob.digest, sha256(tars[i]));
        EXPECT_EQ(p->stats.diff_id, sha256(i % 2 == 1 ? gunzip(tars[i]) : tars[i]));
        auto made = publish(*s, *p, p->stats.diff_id);
        ASSERT_TRUE(made.ok()) << made.error().message();
        EXPECT_TRUE(exists(s->layer_path(p->stats.diff_id) + "/f" + std::to_string(i)));
    }
    // One left unfinished: its unpacker stops, both temporary names go.
    {
        auto w = LayerWriter::start(*s, layout(threads), "layer x");
        ASSERT_TRUE(w.ok());
        std::string half = tars[0].substr(0, tars[0].size() / 2);
        ASSERT_TRUE((*w)->feed(half.data(), half.size()).ok());
    }
    EXPECT_EQ(entries_in(t.path() + "/store/tmp"), 0u);
}

}  // namespace

TEST(ImageImport, JobsAreBounded) {
    EXPECT_EQ(import_jobs(1), 1u);
    EXPECT_EQ(import_jobs(3), 3u);
    EXPECT_EQ(import_jobs(100), kMaxJobs);
    EXPECT_GE(import_jobs(0), 1u);
    EXPECT_LE(import_jobs(0), kMaxJobs);
}
