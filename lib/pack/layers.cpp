#include "pack/layers.hpp"

#include <sys/stat.h>

#include <map>
#include <utility>

namespace kago::pack {

namespace {

bool is_overlay_xattr(const std::string& name) {
    return name.rfind("trusted.overlay.", 0) == 0 || name.rfind("user.overlay.", 0) == 0;
}

bool is_opaque(const Node& n) {
    for (const auto& [name, value] : n.meta.xattrs)
        if ((name == "trusted.overlay.opaque" || name == "user.overlay.opaque") && value == "y")
            return true;
    return false;
}

bool is_whiteout(const Node& n) {
    return n.meta.type == Type::Char && n.meta.major == 0 && n.meta.minor == 0;
}

// Erase path's descendants (not path itself) from nodes.
template <class Map>
void erase_below(Map& nodes, const std::string& path) {
    std::string prefix = path.empty() ? std::string() : path + "/";
    auto first = path.empty() ? std::next(nodes.find("")) : nodes.lower_bound(prefix);
    auto last = first;
    while (last != nodes.end() && last->first.compare(0, prefix.size(), prefix) == 0) ++last;
    nodes.erase(first, last);
}

}  // namespace

Status add_layers(Tree& tree, const std::vector<std::string>& dirs, const ScanOptions& o) {
    auto& nodes = tree.nodes();
    // Which layer each path came from, for the hard links below.
    std::map<std::string, size_t> origin;
    for (size_t k = 0; k < dirs.size(); ++k) {
        Tree layer;
        TRY(scan_directory(layer, dirs[k], o));
        for (auto& [path, node] : layer.nodes()) {
            if (is_whiteout(node)) {
                if (path.empty())
                    return usage_error(cat(dirs[k], ": the layer's root is a whiteout"));
                nodes.erase(path);
                erase_below(nodes, path);
                continue;
            }
            bool opaque = node.meta.type == Type::Dir && is_opaque(node);
            std::erase_if(node.meta.xattrs,
                          [](const auto& x) { return is_overlay_xattr(x.first); });
            if (opaque) erase_below(nodes, path);
            origin[path] = k;
            TRY(tree.add(path, std::move(node)));
        }
    }
    // A hard link names the first path of its group in its own layer; when
    // a layer above deleted or replaced that path, the first surviving path
    // of the group takes the data (from its own file: the same inode).
    std::map<std::pair<size_t, std::string>, std::string>
        holder;  // (layer, old first) -> new first
    for (auto& [path, n] : nodes) {
        if (n.meta.type != Type::Hardlink) continue;
        size_t k = origin.at(path);
        auto t = nodes.find(n.link_path);
        if (t != nodes.end() && origin.count(n.link_path) && origin.at(n.link_path) == k &&
            (t->second.meta.type == Type::File || t->second.meta.type == Type::Hardlink))
            continue;
        auto key = std::make_pair(k, n.link_path);
        auto h = holder.find(key);
        if (h != holder.end()) {
            n.link_path = h->second;
            continue;
        }
        std::string host = dirs[k] + "/" + path;
        struct stat s;
        if (::lstat(host.c_str(), &s) != 0) return sys_error(cat("stat ", host));
        holder.emplace(key, path);
        n.meta.type = Type::File;
        n.meta.size = static_cast<uint64_t>(s.st_size);
        n.content = {Content::HostPath, host, 0};
        n.link_path.clear();
    }
    return {};
}

Status apply_image_config(Config& c, const ImageConfig& image, const Given& given) {
    if (!given.command) {
        c.command = image.entrypoint;
        c.command.insert(c.command.end(), image.cmd.begin(), image.cmd.end());
        if (c.command.empty())
            return usage_error(
                "the image names no command (no Entrypoint or Cmd in its config): give one after "
                "--");
    }
    auto name_of = [](const std::string& v) { return v.substr(0, v.find('=')); };
    std::vector<std::string> env;
    for (const auto& v : image.env) {
        if (v.find('=') == std::string::npos || v[0] == '=') continue;
        bool overridden = false;
        for (const auto& u : c.env) overridden = overridden || name_of(u) == name_of(v);
        if (!overridden) env.push_back(v);
    }
    env.insert(env.end(), c.env.begin(), c.env.end());
    c.env = std::move(env);
    if (!given.workdir && !image.working_dir.empty()) {
        if (image.working_dir[0] != '/')
            return usage_error(
                cat("the image's WorkingDir ", image.working_dir, " is not absolute"));
        c.workdir = image.working_dir;
    }
    if (!given.user && !image.user.empty()) c.user = image.user;
    return {};
}

}  // namespace kago::pack
