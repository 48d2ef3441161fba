// The tree of entries being packed, gathered from a directory, a tar
// stream or a host program, and turned into a sorted manifest.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/fd.hpp"
#include "core/result.hpp"
#include "pack/format.hpp"

namespace kago::pack {

// Where a regular file's contents come from at write time.
struct Content {
    enum Kind { None, HostPath, Spill } kind = None;
    std::string path;      // HostPath: opened O_NOFOLLOW when written
    uint64_t offset = 0;   // Spill: in the spill file
};

struct Node {
    Entry meta;              // type, mode, uid, gid, mtime, size, target, devices, xattrs
    std::string link_path;   // Hardlink: the path of the target, as given
    Content content;
    uint64_t inode_key = 0;  // directory scans: groups hard links
};

class Tree {
  public:
    Tree();
    // Insert or replace path (normalized, "" is the root); missing parents
    // are created as directories (0755). A later entry replaces an earlier
    // one, as tar does.
    Status add(const std::string& path, Node node);
    std::map<std::string, Node>& nodes() { return nodes_; }
    // The spill file that holds the contents of a tar stream.
    int spill_fd() const { return spill_.get(); }
    Result<uint64_t> spill(const uint8_t* data, size_t n);

    // Sort, resolve hard links (the first path in order holds the data),
    // clamp mtimes, and number the entries. contents[i] belongs to the i-th
    // regular file of the manifest.
    struct Built {
        Manifest manifest;
        std::vector<Content> contents;
        uint64_t total_bytes = 0;
    };
    Result<Built> build(std::optional<int64_t> mtime_clamp) const;

  private:
    std::map<std::string, Node> nodes_;
    UniqueFd spill_;
    uint64_t spill_size_ = 0;
};

struct ScanOptions {
    bool map_builder_to_root = false;  // record the builder's uid/gid as 0
};

// Add every entry under dir (not crossing into other file systems is not
// enforced: a rootfs may hold mounts). Hard links are found by inode.
Status scan_directory(Tree& tree, const std::string& dir, const ScanOptions& o);

// Add the entries of a tar stream read from fd; contents go to the spill
// file. Absolute names are made relative; ".." is an error.
Status read_tar(Tree& tree, int fd, const ScanOptions& o);

// --from-host: the program, its ELF interpreter and the shared libraries it
// needs (DT_NEEDED, recursively, through RUNPATH/RPATH, ld.so.conf and the
// usual directories), at their host paths; and a few directories that make
// a root usable (/proc, /dev, /sys, /tmp, /etc/passwd, /etc/group). Returns
// the program's path in the container.
Result<std::string> add_host_program(Tree& tree, const std::string& program);
// A host directory the program needs (e.g. /usr/lib/python3.11): added
// with every ELF file's libraries.
Status add_host_tree(Tree& tree, const std::string& dir);
// --from-host PROGRAM [--add-host PATH...]: the program (add_host_program),
// its own data directory (/usr/lib/NAME or /usr/lib/x86_64-linux-gnu/NAME,
// NAME its real file name: /usr/lib/python3.11 for python3), and each
// PATH (a directory with add_host_tree, a file with add_host_program).
// The command becomes the program when empty; a first word that is the
// program's bare name becomes its path (the container's PATH may differ).
Status add_host_command(Tree& tree, const std::string& program,
                        const std::vector<std::string>& add_host,
                        std::vector<std::string>& command);

// The DT_NEEDED names, RUNPATH/RPATH and interpreter of an ELF file.
struct ElfInfo {
    std::string interpreter;
    std::vector<std::string> needed;
    std::vector<std::string> runpath;
};
Result<ElfInfo> read_elf(std::span<const uint8_t> bytes, const std::string& shown);

}  // namespace kago::pack
