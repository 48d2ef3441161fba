// Layers: tar streams (plain, gzip or zstd; ustar, pax or GNU) unpacked
// into a directory in the form overlayfs reads, and directories written back
// as tar layers. libarchive reads and writes the tar; this file decides
// what each entry may do.
//
// Whiteouts (OCI image spec, "Representing Changes"):
//   DIR/.wh.NAME       NAME is deleted: an overlay whiteout, a character
//                      device 0:0 (any user may make one since Linux 5.8)
//   DIR/.wh..wh..opq   DIR hides the layers below: the opaque xattr,
//                      trusted.overlay.opaque=y (read by overlay as root)
//                      and user.overlay.opaque=y (read by overlay mounted
//                      with userxattr, which mount-layers uses in a user
//                      namespace)
// write_layer() turns both back into .wh. entries (--commit).
//
// Safety: every entry is made with openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS) below the layer directory, so that no entry writes
// outside it, nor through a symlink that an earlier entry made. Paths with
// "..", absolute paths, hard links that leave the layer and relative
// symlinks that climb above its root are refused. The xattrs overlay
// itself reads (trusted.overlay.*, user.overlay.*) are never taken from a
// layer: only this file sets them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.hpp"

struct archive;

namespace kago::image {

// libarchive's text for the last error of `a`, or `fallback`:
// archive_error_string() returns NULL when a call failed without setting
// one (a gzip stream cut short in its first block does).
const char* archive_why(struct archive* a, const char* fallback = "unreadable archive");

// A tar entry's name as a clean relative path: "./" and trailing "/"
// dropped; "" is the layer's root. Refused: absolute paths, "..", NUL.
Result<std::string> clean_path(std::string_view raw, std::string_view what);

enum class Whiteout { none, file, opaque };
// What a base name means: ".wh..wh..opq", ".wh.NAME" (NAME is base.substr(4)), or neither.
Whiteout whiteout_kind(std::string_view base);

// Whether a relative symlink at `path` (a clean path) pointing at `target`
// climbs above the layer's root ("a/b -> ../../x"). Absolute targets do
// not: they resolve inside the container's root.
bool symlink_climbs_out(std::string_view path, std::string_view target);

// Which overlay xattrs name an opaque directory, and which xattrs a layer
// may carry.
inline constexpr const char kOpaqueTrusted[] = "trusted.overlay.opaque";
inline constexpr const char kOpaqueUser[] = "user.overlay.opaque";
bool is_overlay_xattr(std::string_view name);
// The xattrs a layer keeps: user.* and security.capability, never overlay's own.
bool layer_xattr(std::string_view name);

struct UnpackOptions {
    bool owners = false;          // chown to the entry's owner (root)
    bool devices = false;         // make device nodes (root), else skip and count them
    bool setid = false;           // keep setuid/setgid bits (root), else strip and count them
    bool trusted_opaque = false;  // also set trusted.overlay.opaque (root)
    // A thread of its own reads and inflates the stream ahead of the tar
    // parser (and hashes a plain stream, when hash_plain asks for it).
    // False: the parser reads for itself.
    bool reader = false;
    // Threads that make a layer's files: above 1, this many workers make
    // the files, symlinks and nodes, the entries of one directory all by
    // one worker in the tar's order (layer.cpp says what waits for what).
    // 1: the parser makes them itself.
    unsigned workers = 1;
    // Hash a plain (uncompressed) stream for the diff_id. False: whoever
    // reads the layer hashes its blob, which for a plain layer is the same
    // bytes (LayerWriter's hasher), and UnpackStats::diff_id is left empty
    // for a plain stream. A compressed stream is always hashed here.
    bool hash_plain = true;
};

// The threads an unpack uses on `cpus` processors: a reader from 2 (the
// parser and the reader, or the parser and a LayerWriter's hasher, each on
// a processor of its own), workers from 3 (cpus - 2 of them: with fewer,
// the workers only take the parser's processor from it).
void set_threads(UnpackOptions& o, unsigned cpus);

struct UnpackStats {
    uint64_t entries = 0, bytes = 0;
    uint64_t whiteouts = 0, opaque = 0;
    uint64_t devices_skipped = 0, setid_stripped = 0, xattrs_dropped = 0;
    std::string diff_id;      // sha256 of the uncompressed tar
    std::string compression;  // "none", "gzip", "zstd"
};
// Add up the counts of s into t (an import's or a pull's totals).
void add_stats(UnpackStats& t, const UnpackStats& s);

// Where unpack_layer reads a layer's bytes: read() fills at most n bytes
// of buf and returns how many, 0 at the end, or -1 with errno set.
class ByteSource {
  public:
    virtual ssize_t read(void* buf, size_t n) = 0;

  protected:
    ~ByteSource() = default;
};

// Unpack the layer read from blob_fd (or src) into dest_fd, an empty
// directory. `what` names the layer in errors ("layer sha256:..."). The
// whole uncompressed stream is hashed, padding included, for the diff_id.
Result<UnpackStats> unpack_layer(int blob_fd, int dest_fd, const UnpackOptions& o, std::string_view what);
Result<UnpackStats> unpack_layer(ByteSource& src, int dest_fd, const UnpackOptions& o,
                                 std::string_view what);

struct WriteOptions {
    bool whiteouts = false;  // overlay whiteouts and opaque dirs become .wh. entries (an upper dir)
    uid_t root_uid = 0;      // files of this uid/gid are written as 0 (rootless: the caller);
    gid_t root_gid = 0;      // 0 leaves owners as they are
};

// What this process may keep of an image when it unpacks and writes
// layers. Root outside a user namespace keeps owners, devices, setuid bits
// and file capabilities. Root of a user namespace that maps more than one
// id (--map-auto: the caller and its subordinate ranges) keeps owners and
// setuid bits, as podman does; only device nodes cannot be made. Anyone
// else owns every file, and writes its own files as root's.
UnpackOptions caller_unpack_options();
WriteOptions caller_write_options();

struct WriteStats {
    std::string digest;  // of the tar written (uncompressed: also its diff_id)
    uint64_t size = 0, entries = 0, whiteouts = 0;
};

// Write the tree below src_fd as an uncompressed pax tar to out_fd.
Result<WriteStats> write_layer(int src_fd, int out_fd, const WriteOptions& o, std::string_view what);

// rm -rf NAME below dirfd, making directories writable on the way
// (a layer may hold 0555 directories). ENOENT is success.
Status remove_tree(int dirfd, const std::string& name);

}  // namespace kago::image
