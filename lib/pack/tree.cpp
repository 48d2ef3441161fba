#include "pack/tree.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "pack/tar.hpp"

namespace kago::pack {
namespace {

Node dir_node(uint32_t mode = 0755) {
    Node n;
    n.meta.type = Type::Dir;
    n.meta.mode = mode;
    return n;
}

std::string parent_of(const std::string& p) {
    auto s = p.rfind('/');
    return s == std::string::npos ? std::string() : p.substr(0, s);
}

Result<std::vector<std::pair<std::string, std::string>>> read_xattrs(const std::string& path) {
    std::vector<std::pair<std::string, std::string>> out;
    ssize_t n = ::llistxattr(path.c_str(), nullptr, 0);
    if (n < 0) {
        if (errno == ENOTSUP || errno == ENODATA) return out;
        return sys_error(cat("list xattrs of ", path));
    }
    if (n == 0) return out;
    std::string names(static_cast<size_t>(n), '\0');
    n = ::llistxattr(path.c_str(), names.data(), names.size());
    if (n < 0) return sys_error(cat("list xattrs of ", path));
    names.resize(static_cast<size_t>(n));
    for (size_t i = 0; i < names.size();) {
        std::string name(names.c_str() + i);
        i += name.size() + 1;
        if (name.empty()) continue;
        ssize_t m = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
        if (m < 0) continue;
        std::string value(static_cast<size_t>(m), '\0');
        m = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
        if (m < 0) continue;
        value.resize(static_cast<size_t>(m));
        out.emplace_back(std::move(name), std::move(value));
    }
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

Tree::Tree() { nodes_.emplace("", dir_node()); }

Status Tree::add(const std::string& path, Node node) {
    if (path.empty()) {
        if (node.meta.type != Type::Dir)
            return usage_error("the root of the tree must be a directory");
        nodes_[""] = std::move(node);
        return {};
    }
    // Missing parents become directories; a parent that is not a directory
    // is replaced by one.
    std::string p = parent_of(path);
    std::vector<std::string> missing;
    for (;;) {
        auto it = nodes_.find(p);
        if (it != nodes_.end() && it->second.meta.type == Type::Dir) break;
        missing.push_back(p);
        if (p.empty()) break;
        p = parent_of(p);
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) nodes_[*it] = dir_node();
    auto it = nodes_.find(path);
    if (it != nodes_.end() && it->second.meta.type == Type::Dir && node.meta.type != Type::Dir) {
        // Replaced by a non-directory: drop what was under it.
        std::string prefix = path + "/";
        auto first = nodes_.lower_bound(prefix);
        auto last = first;
        while (last != nodes_.end() && last->first.compare(0, prefix.size(), prefix) == 0) ++last;
        nodes_.erase(first, last);
    }
    nodes_[path] = std::move(node);
    return {};
}

Result<uint64_t> Tree::spill(const uint8_t* data, size_t n) {
    if (!spill_) {
        const char* dir = ::getenv("TMPDIR");
        int fd = ::open(dir && *dir ? dir : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd < 0) return sys_error(cat("create a temporary file in ", dir && *dir ? dir : "/tmp"));
        spill_.reset(fd);
    }
    uint64_t at = spill_size_;
    size_t done = 0;
    while (done < n) {
        ssize_t w = ::pwrite(spill_.get(), data + done, n - done, static_cast<off_t>(spill_size_));
        if (w < 0) {
            if (errno == EINTR) continue;
            return sys_error("write the temporary file");
        }
        done += static_cast<size_t>(w);
        spill_size_ += static_cast<uint64_t>(w);
    }
    return at;
}

Result<Tree::Built> Tree::build(std::optional<int64_t> clamp) const {
    Built b;
    // Hard links: resolve each link to the regular file it names (following
    // chains), and let the first path in sorted order hold the data.
    std::map<std::string, std::string> group_of;  // path -> canonical file path
    for (auto& [path, n] : nodes_) {
        if (n.meta.type != Type::Hardlink) continue;
        std::string t = n.link_path;
        for (int hops = 0;; ++hops) {
            auto it = nodes_.find(t);
            if (it == nodes_.end() || hops > 64)
                return usage_error(cat(path, ": hard link to ", n.link_path, ", which is not in the tree"));
            if (it->second.meta.type == Type::File) break;
            if (it->second.meta.type != Type::Hardlink)
                return usage_error(cat(path, ": hard link to ", n.link_path, ", which is not a regular file"));
            t = it->second.link_path;
        }
        group_of[path] = t;
    }
    std::map<std::string, std::string> first_of;  // canonical file -> first path of its group
    for (auto& [path, file] : group_of) {
        auto [it, fresh] = first_of.emplace(file, path);
        if (!fresh && path < it->second) it->second = path;
    }
    for (auto& [file, first] : first_of)
        if (file < first) first = file;

    std::map<std::string, uint32_t> index;
    auto& entries = b.manifest.entries;
    entries.reserve(nodes_.size());
    for (auto& [path, n] : nodes_) {
        Entry e = n.meta;
        if (clamp && e.mtime > *clamp) e.mtime = *clamp;
        if (!path.empty()) {
            auto s = path.rfind('/');
            e.name = s == std::string::npos ? path : path.substr(s + 1);
            e.parent = index.at(parent_of(path));
        } else {
            e.name.clear();
            e.parent = 0;
        }
        const Node* data = &n;
        std::string canonical;
        if (n.meta.type == Type::Hardlink) canonical = group_of.at(path);
        else if (n.meta.type == Type::File && first_of.count(path)) canonical = path;
        if (!canonical.empty()) {
            const std::string& first = first_of.at(canonical);
            data = &nodes_.at(canonical);
            if (first == path) {
                e = data->meta;  // this path holds the data
                e.name = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
                e.parent = index.at(parent_of(path));
                if (clamp && e.mtime > *clamp) e.mtime = *clamp;
            } else {
                e.type = Type::Hardlink;
                e.link = index.at(first);
                e.size = 0;
            }
        }
        if (e.type == Type::File) {
            e.size = data->meta.size;
            e.offset = b.total_bytes;
            b.total_bytes += e.size;
            b.contents.push_back(data->content);
        }
        index[path] = static_cast<uint32_t>(entries.size());
        entries.push_back(std::move(e));
    }
    return b;
}

Status scan_directory(Tree& tree, const std::string& top, const ScanOptions& o) {
    struct stat st;
    if (::lstat(top.c_str(), &st) != 0) return sys_error(cat("rootfs ", top));
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return sys_error(cat("rootfs ", top));
    }
    uid_t me = ::geteuid();
    gid_t my_gid = ::getegid();
    auto owner = [&](const struct stat& s, Entry& e) {
        e.uid = s.st_uid;
        e.gid = s.st_gid;
        if (o.map_builder_to_root) {
            if (s.st_uid == me) e.uid = 0;
            if (s.st_gid == my_gid) e.gid = 0;
        }
    };
    std::map<std::pair<dev_t, ino_t>, std::string> seen;  // hard links
    // Depth-first, with an explicit stack of relative paths.
    std::vector<std::string> stack{""};
    {
        Node root = dir_node(st.st_mode & 07777);
        owner(st, root.meta);
        root.meta.mtime = st.st_mtim.tv_sec;
        root.meta.xattrs = TRY(read_xattrs(top));
        TRY(tree.add("", std::move(root)));
    }
    while (!stack.empty()) {
        std::string rel = std::move(stack.back());
        stack.pop_back();
        std::string dirpath = rel.empty() ? top : top + "/" + rel;
        DIR* d = ::opendir(dirpath.c_str());
        if (!d) return sys_error(cat("open directory ", dirpath));
        std::vector<std::string> names;
        while (struct dirent* de = ::readdir(d)) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            names.emplace_back(de->d_name);
        }
        ::closedir(d);
        for (auto& name : names) {
            std::string r = rel.empty() ? name : rel + "/" + name;
            std::string host = top + "/" + r;
            struct stat s;
            if (::lstat(host.c_str(), &s) != 0) return sys_error(cat("stat ", host));
            Node n;
            n.meta.mode = s.st_mode & 07777;
            n.meta.mtime = s.st_mtim.tv_sec;
            owner(s, n.meta);
            n.meta.xattrs = TRY(read_xattrs(host));
            switch (s.st_mode & S_IFMT) {
            case S_IFREG: {
                if (s.st_nlink > 1) {
                    auto [it, fresh] = seen.emplace(std::make_pair(s.st_dev, s.st_ino), r);
                    if (!fresh) {
                        n.meta.type = Type::Hardlink;
                        n.link_path = it->second;
                        break;
                    }
                }
                n.meta.type = Type::File;
                n.meta.size = static_cast<uint64_t>(s.st_size);
                n.content = {Content::HostPath, host, 0};
                break;
            }
            case S_IFDIR:
                n.meta.type = Type::Dir;
                stack.push_back(r);
                break;
            case S_IFLNK: {
                n.meta.type = Type::Symlink;
                std::string t(static_cast<size_t>(s.st_size) + 1, '\0');
                ssize_t k = ::readlink(host.c_str(), t.data(), t.size());
                if (k < 0) return sys_error(cat("read link ", host));
                t.resize(static_cast<size_t>(k));
                n.meta.target = t;
                n.meta.mode = 0777;
                break;
            }
            case S_IFCHR:
            case S_IFBLK:
                n.meta.type = S_ISCHR(s.st_mode) ? Type::Char : Type::Block;
                n.meta.major = major(s.st_rdev);
                n.meta.minor = minor(s.st_rdev);
                break;
            case S_IFIFO: n.meta.type = Type::Fifo; break;
            default: continue;  // sockets are not packed
            }
            TRY(tree.add(r, std::move(n)));
        }
    }
    return {};
}

Status read_tar(Tree& tree, int fd, const ScanOptions&) {
    TarReader reader([fd](uint8_t* buf, size_t n) -> Result<size_t> {
        for (;;) {
            ssize_t r = ::read(fd, buf, n);
            if (r >= 0) return static_cast<size_t>(r);
            if (errno != EINTR) return sys_error("read the tar stream");
        }
    });
    TarEntry te;
    for (;;) {
        bool more = TRY(reader.next(te));
        if (!more) break;
        std::string path = TRY(normalize_name(te.name));
        Node n;
        n.meta.type = te.type;
        n.meta.mode = te.mode;
        n.meta.uid = te.uid;
        n.meta.gid = te.gid;
        n.meta.mtime = te.mtime;
        n.meta.xattrs = te.xattrs;
        std::sort(n.meta.xattrs.begin(), n.meta.xattrs.end());
        n.meta.major = te.major;
        n.meta.minor = te.minor;
        switch (te.type) {
        case Type::File: {
            n.meta.size = te.size;
            uint64_t start = 0;
            bool first = true;
            TRY(reader.read_data([&](const uint8_t* p, size_t k) -> Status {
                uint64_t at = TRY(tree.spill(p, k));
                if (first) start = at;
                first = false;
                return {};
            }));
            if (first) start = 0;
            n.content = {Content::Spill, "", start};
            break;
        }
        case Type::Hardlink:
            n.link_path = TRY(normalize_name(te.linkname));
            break;
        case Type::Symlink:
            n.meta.target = te.linkname;
            n.meta.mode = 0777;
            break;
        default: break;
        }
        if (path.empty()) {
            if (te.type != Type::Dir) return usage_error(cat("tar input: ", te.name, ": the root is not a directory"));
        }
        TRY(tree.add(path, std::move(n)));
    }
    return {};
}

Status add_host_command(Tree& tree, const std::string& program,
                        const std::vector<std::string>& add_host,
                        std::vector<std::string>& command) {
    std::string prog = TRY(add_host_program(tree, program));
    char real[PATH_MAX];
    if (::realpath(prog.c_str(), real)) {
        std::string base = real;
        base = base.substr(base.rfind('/') + 1);
        for (std::string d : {"/usr/lib/" + base, "/usr/lib/x86_64-linux-gnu/" + base}) {
            struct stat st;
            if (::stat(d.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) TRY(add_host_tree(tree, d));
        }
    }
    for (auto& p : add_host) {
        struct stat st;
        if (::stat(p.c_str(), &st) != 0) return sys_error(cat("--add-host ", p));
        if (S_ISDIR(st.st_mode))
            TRY(add_host_tree(tree, p));
        else
            TRY(add_host_program(tree, p));
    }
    if (command.empty())
        command = {prog};
    else if (command[0].find('/') == std::string::npos &&
             command[0] == prog.substr(prog.rfind('/') + 1))
        command[0] = prog;
    return {};
}

}  // namespace kago::pack
