// The packed file format.
//
//   [stub ELF][frame 0]...[frame N-1][manifest][frame table][trailer]
//
// - The frames are independent zstd frames holding the contents of the
//   regular files, concatenated in manifest order and cut every frame_size
//   bytes (a file may span frames). Each frame is decoded on its own, so the
//   frames can be decoded in parallel.
// - The manifest is one zstd frame: the runtime settings and the entries,
//   each named by its parent's index and one path component.
// - The frame table has, per frame, its offset, compressed and decoded sizes
//   and the SHA-256 of its compressed bytes.
// - The trailer (the last kTrailerSize bytes) has the magic and version, the
//   offsets, the declared totals, the manifest's hash, the stub's hash
//   (SHA-256 of bytes [0, payload_offset)), the public key, the root hash
//   and the signature.
// - The root hash is SHA-256 over the trailer's first kHashedSize bytes
//   (everything before the root hash) and the frame table. It is the cache
//   key and what --sign signs, and it covers every byte of the file but the
//   signature: the stub through its hash, the frames through the table's
//   hashes, the manifest through its hash, the table and the trailer
//   directly (the end magic is a constant). decode_trailer() and
//   decode_frame_table() check that the parts tile the file with no gap.
// - The runner checks the root hash on every run (a few hundred bytes), and
//   the stub's, the manifest's and the frames' hashes on a cold run. A file
//   vouching for itself proves nothing against tampering: only a check by
//   another program (pack-selfexec --verify) does.
//
// Everything here is pure: it parses and checks bytes, and is fuzzed.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"

namespace kago::pack {

using Hash = std::array<uint8_t, 32>;

// SHA-256 of a, then b: OpenSSL's libcrypto, whose code uses the CPU's SHA
// extensions (about 1.5 GB/s per core here, against 0.2 GB/s for
// libsodium's portable code). Only its low-level digest is linked, so the
// static stub grows by about 26 KB.
Hash sha256(std::span<const uint8_t> a, std::span<const uint8_t> b = {});
// The same, fed in pieces.
class Sha256 {
  public:
    Sha256();
    void update(std::span<const uint8_t> data);
    Hash final();

  private:
    alignas(8) unsigned char ctx_[112];  // SHA256_CTX (checked in format.cpp)
};

inline constexpr char kMagic[8] = {'K', 'A', 'G', 'O', 'P', 'A', 'K', '\0'};
inline constexpr char kMagicEnd[8] = {'K', 'A', 'G', 'O', 'E', 'N', 'D', '\0'};
// Version 1's root hash did not cover the stub.
inline constexpr uint32_t kVersion = 2;
inline constexpr size_t kTrailerSize = 288;
inline constexpr size_t kHashedSize = 184;  // trailer bytes covered by the root hash, which follows them
inline constexpr size_t kFrameRecordSize = 56;  // offset, csize, usize, sha256
inline constexpr uint32_t kMinFrameSize = 64 << 10;
inline constexpr uint32_t kMaxFrameSize = 64 << 20;
inline constexpr uint32_t kDefaultFrameSize = 32 << 20;
inline constexpr uint64_t kMaxManifestSize = 512ull << 20;
inline constexpr uint32_t kFlagSigned = 1;

struct Frame {
    uint64_t offset = 0;  // in the file
    uint64_t csize = 0;   // compressed bytes
    uint64_t usize = 0;   // decoded bytes
    Hash sha256{};        // of the compressed bytes
};

struct Trailer {
    uint32_t version = kVersion;
    uint32_t flags = 0;
    uint64_t payload_offset = 0;  // the stub's size: where frame 0 starts
    uint64_t frame_table_offset = 0;
    uint32_t frame_count = 0;
    uint32_t frame_size = kDefaultFrameSize;
    uint64_t manifest_offset = 0;
    uint64_t manifest_csize = 0;
    uint64_t manifest_usize = 0;
    uint64_t total_bytes = 0;    // sum of the regular files' sizes
    uint64_t total_entries = 0;  // entries in the manifest
    uint64_t file_size = 0;      // the whole packed file
    Hash manifest_hash{};        // SHA-256 of the compressed manifest
    Hash stub_hash{};            // SHA-256 of the stub, bytes [0, payload_offset)
    std::array<uint8_t, 32> public_key{};  // when signed
    Hash root_hash{};
    std::array<uint8_t, 64> signature{};   // Ed25519 over root_hash
};

std::array<uint8_t, kTrailerSize> encode_trailer(const Trailer& t);
// Parses and checks the trailer against the size of the file: magic,
// version, and every offset and size inside the file, in order.
Result<Trailer> decode_trailer(std::span<const uint8_t> bytes, uint64_t file_size);

std::vector<uint8_t> encode_frame_table(const std::vector<Frame>& frames);
// Checks that the frames tile [payload_offset, manifest_offset) exactly and
// that their decoded sizes add up to total_bytes in frame_size pieces.
Result<std::vector<Frame>> decode_frame_table(std::span<const uint8_t> bytes, const Trailer& t);

// The root hash of a trailer (its hashed part) and frame table.
Hash root_hash(const Trailer& t, std::span<const uint8_t> frame_table);

// A byte range of the file, [begin, end).
struct Range {
    uint64_t begin = 0, end = 0;
};
// Where each hash of a checked trailer reads, and the one range no hash
// covers (the signature's). Together they cover the whole file.
struct HashedRanges {
    Range stub, frames, manifest, frame_table, trailer_hashed, root_hash, signature, end_magic;
};
HashedRanges hashed_ranges(const Trailer& t);

enum class Type : uint8_t { File = 1, Dir = 2, Symlink = 3, Hardlink = 4, Char = 5, Block = 6, Fifo = 7 };
const char* type_name(Type t);

struct Entry {
    Type type = Type::File;
    uint32_t parent = 0;  // index of the parent directory; 0 is the root (itself entry 0)
    std::string name;     // one path component ("" for the root)
    uint32_t mode = 0;    // permission bits, 07777
    uint32_t uid = 0, gid = 0;
    int64_t mtime = 0;
    uint64_t size = 0;    // File
    uint64_t offset = 0;  // File: in the concatenated contents
    std::string target;   // Symlink
    uint32_t link = 0;    // Hardlink: index of an earlier regular file
    uint32_t major = 0, minor = 0;  // Char, Block
    std::vector<std::pair<std::string, std::string>> xattrs;  // sorted by name
};

// The runtime settings baked into the file. Lists keep their order.
struct Config {
    std::vector<std::string> command;
    std::vector<std::string> env;  // K=V
    std::string workdir = "/";
    std::string hostname;
    std::string user;  // UID[:GID], empty: 0:0
    std::vector<std::string> keep_caps;
    std::string seccomp = "default";  // default | unconfined
    std::string seccomp_bpf;          // default: the filter's BPF program (struct sock_filter[])
    std::string memory, pids, cpus;
    std::string net = "none";  // none | host | user-mode
    bool bind_allowed = false;
    bool read_only = false;  // true: no tmpfs upper
    bool from_host = false;  // built with --from-host
    bool sys = false;        // a read-only /sys in the container (--sys)
    bool cgroupfs = true;    // with sys: a read-only /sys/fs/cgroup (off: --no-cgroupfs)
};

struct Manifest {
    Config config;
    std::vector<Entry> entries;  // entry 0 is the root directory
};

std::vector<uint8_t> encode_manifest(const Manifest& m);
// Parses and checks the manifest: entry 0 is the root; every other entry
// has an earlier directory as parent and a name that is one component
// (not "", ".", "..", no '/', no NUL), unique in its directory; hard links
// point to an earlier regular file; file contents are laid out one after
// another and add up to total_bytes.
Result<Manifest> decode_manifest(std::span<const uint8_t> bytes, const Trailer& t);

// The path of entry i, "a/b/c" ("" for the root). Assumes a checked manifest.
std::string entry_path(const Manifest& m, uint32_t i);

std::string hex(std::span<const uint8_t> bytes);
Result<std::vector<uint8_t>> unhex(std::string_view s);

}  // namespace kago::pack
