// pack::add_layers and pack::apply_image_config: layer directories in the
// form the image store unpacks them, merged as overlayfs shows them.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "pack/cache.hpp"
#include "pack/layers.hpp"

using namespace kago;
using namespace kago::pack;

namespace {

struct Layers {
    std::string path;
    Layers() {
        char t[] = "/tmp/pack-layers-test-XXXXXX";
        path = mkdtemp(t);
    }
    ~Layers() { (void)remove_tree_at(AT_FDCWD, path, path); }
    std::string dir(const std::string& rel) {
        std::string p = path + "/" + rel;
        std::string cmd = "mkdir -p '" + p + "'";
        EXPECT_EQ(system(cmd.c_str()), 0);
        return p;
    }
    void file(const std::string& rel, const std::string& text) {
        auto slash = rel.rfind('/');
        if (slash != std::string::npos) dir(rel.substr(0, slash));
        std::ofstream(path + "/" + rel) << text;
    }
    // A whiteout: a character device 0:0 (unprivileged since Linux 5.8).
    bool whiteout(const std::string& rel) {
        return ::mknod((path + "/" + rel).c_str(), S_IFCHR | 0, makedev(0, 0)) == 0;
    }
    bool opaque(const std::string& rel) {
        return ::setxattr((path + "/" + rel).c_str(), "user.overlay.opaque", "y", 1, 0) == 0;
    }
};

std::vector<std::string> paths(Tree& t) {
    std::vector<std::string> v;
    for (auto& [p, n] : t.nodes()) v.push_back(p);
    return v;
}

}  // namespace

TEST(PackLayers, WhiteoutsOpaqueDirectoriesAndReplacements) {
    Layers l;
    l.file("1/data/keep", "keep");
    l.file("1/data/gone", "gone");
    l.file("1/olddir/a", "a");
    l.file("1/opq/lower", "lower");
    l.file("1/was-dir/x", "x");
    l.dir("2/data");
    l.dir("2/opq");
    l.file("2/opq/upper", "upper");
    l.file("2/was-dir", "now a file");
    if (!l.whiteout("2/data/gone") || !l.whiteout("2/olddir"))
        GTEST_SKIP() << "mknod of a whiteout is refused here";
    if (!l.opaque("2/opq")) GTEST_SKIP() << "user xattrs are not supported in /tmp";
    Tree t;
    ASSERT_TRUE(add_layers(t, {l.path + "/1", l.path + "/2"}, {}));
    EXPECT_EQ(paths(t),
              (std::vector<std::string>{"", "data", "data/keep", "opq", "opq/upper", "was-dir"}));
    EXPECT_EQ(t.nodes().at("was-dir").meta.type, Type::File);
    for (auto& [p, n] : t.nodes())
        for (auto& [name, value] : n.meta.xattrs)
            EXPECT_EQ(name.find("overlay."), std::string::npos) << p;
}

TEST(PackLayers, AHardLinkWhoseFirstPathAnUpperLayerDeletedKeepsItsData) {
    Layers l;
    l.file("1/a", "data");
    ASSERT_EQ(::link((l.path + "/1/a").c_str(), (l.path + "/1/b").c_str()), 0);
    ASSERT_EQ(::link((l.path + "/1/a").c_str(), (l.path + "/1/c").c_str()), 0);
    // The path the scan meets first holds the data: an upper layer deletes it.
    std::string first;
    {
        Tree one;
        ASSERT_TRUE(scan_directory(one, l.path + "/1", {}));
        for (auto& [p, n] : one.nodes())
            if (n.meta.type == Type::File) first = p;
    }
    ASSERT_FALSE(first.empty());
    l.dir("2");
    if (!l.whiteout("2/" + first)) GTEST_SKIP() << "mknod of a whiteout is refused here";
    Tree t;
    ASSERT_TRUE(add_layers(t, {l.path + "/1", l.path + "/2"}, {}));
    auto& n = t.nodes();
    ASSERT_EQ(n.count(first), 0u);
    // The first surviving path in order takes the data, the other links to it.
    std::vector<std::string> left;
    for (std::string p : {"a", "b", "c"})
        if (p != first) left.push_back(p);
    EXPECT_EQ(n.at(left[0]).meta.type, Type::File);
    EXPECT_EQ(n.at(left[0]).meta.size, 4u);
    EXPECT_EQ(n.at(left[0]).content.path, l.path + "/1/" + left[0]);
    EXPECT_EQ(n.at(left[1]).meta.type, Type::Hardlink);
    EXPECT_EQ(n.at(left[1]).link_path, left[0]);
    auto built = t.build(std::nullopt);
    ASSERT_TRUE(built) << built.error().what;
}

TEST(PackLayers, AHardLinkWithinAnUntouchedLayerStaysALink) {
    Layers l;
    l.file("1/a", "data");
    ASSERT_EQ(::link((l.path + "/1/a").c_str(), (l.path + "/1/b").c_str()), 0);
    l.file("2/other", "x");
    Tree t;
    ASSERT_TRUE(add_layers(t, {l.path + "/1", l.path + "/2"}, {}));
    // The scan meets either first: that one holds the data.
    auto& a = t.nodes().at("a");
    auto& b = t.nodes().at("b");
    auto& link = a.meta.type == Type::Hardlink ? a : b;
    auto& file = a.meta.type == Type::Hardlink ? b : a;
    EXPECT_EQ(file.meta.type, Type::File);
    EXPECT_EQ(link.meta.type, Type::Hardlink);
    EXPECT_EQ(link.link_path, &link == &a ? "b" : "a");
}

TEST(PackLayers, ImageConfigUnderTheUsersOwn) {
    ImageConfig img{
        {"/bin/sh", "-c"}, {"echo hi"}, {"PATH=/bin", "GREETING=hello"}, "1000", "/app"};
    Config c;
    c.env = {"GREETING=bye"};
    ASSERT_TRUE(apply_image_config(c, img, {}));
    EXPECT_EQ(c.command, (std::vector<std::string>{"/bin/sh", "-c", "echo hi"}));
    EXPECT_EQ(c.env, (std::vector<std::string>{"PATH=/bin", "GREETING=bye"}));
    EXPECT_EQ(c.workdir, "/app");
    EXPECT_EQ(c.user, "1000");

    Config d;
    d.command = {"/bin/true"};
    d.workdir = "/";
    d.user = "0";
    ASSERT_TRUE(apply_image_config(d, img, {true, true, true}));
    EXPECT_EQ(d.command, (std::vector<std::string>{"/bin/true"}));
    EXPECT_EQ(d.workdir, "/");
    EXPECT_EQ(d.user, "0");

    Config e;
    auto r = apply_image_config(e, ImageConfig{}, {});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().what.find("no command"), std::string::npos);
    ImageConfig rel;
    rel.cmd = {"x"};
    rel.working_dir = "app";
    EXPECT_FALSE(apply_image_config(e, rel, {}));
}
