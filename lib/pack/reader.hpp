// Reading a packed file through one descriptor (the runner's
// /proc/self/exe, opened once), and extracting it safely.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/fd.hpp"
#include "core/result.hpp"
#include "pack/format.hpp"

namespace kago::pack {

class Packed {
  public:
    // Reads and checks the trailer and the frame table, and checks the root
    // hash. Cheap: a few hundred bytes. Reads only through fd.
    static Result<Packed> open(UniqueFd fd);

    // Reads, checks (SHA-256) and decodes the manifest.
    Status load_manifest();

    const Trailer& trailer() const { return trailer_; }
    const std::vector<Frame>& frames() const { return frames_; }
    const Manifest& manifest() const { return manifest_; }
    std::string key() const { return hex(trailer_.root_hash); }
    int fd() const { return fd_.get(); }
    uint64_t compressed_bytes() const { return trailer_.manifest_offset - trailer_.payload_offset; }

    // Checks the stub's SHA-256 (bytes [0, payload_offset)): against
    // corruption on a cold run, and in verify().
    Status verify_stub() const;

    // Checks the Ed25519 signature (against the embedded key, or pubkey
    // when given). Errors when the file is not signed.
    Status verify_signature(std::span<const uint8_t> pubkey) const;

    // Decode every frame in order, in parallel (threads workers, 0: one
    // per CPU): each frame's SHA-256 is checked before it is decoded, and
    // its decoded size must be exactly the declared one. sink gets the
    // frames in order.
    // Checks every frame's SHA-256 (threads at once; 0: one per CPU)
    // without decoding: what --kago-verify does.
    Status verify_frames(unsigned threads) const;
    Status decode_frames(unsigned threads,
                         const std::function<Status(size_t index, std::span<const uint8_t>)>& sink) const;

  private:
    UniqueFd fd_;
    Trailer trailer_;
    std::vector<Frame> frames_;
    Manifest manifest_;
};

Status pread_exact(int fd, void* buf, size_t n, uint64_t off, const char* what);

// What verify() found.
struct Verified {
    bool is_signed = false;
    bool trusted_key = false;  // checked against the given key, not the one the file carries
    Hash root_hash{};
    std::array<uint8_t, 32> signer{};  // the key the signature matched
};

// Check the whole file: the trailer and frame table (open() did), the
// stub, the manifest, every frame (threads at once, without decoding them), and the
// signature, against pubkey when given or else the key the file carries.
// A file that fails a check is an Error with err 0 ("packed file: ...");
// an I/O error carries its errno. An unsigned file is no error here, even
// with a pubkey: Verified::is_signed says so, and the caller decides.
Result<Verified> verify(Packed& p, std::span<const uint8_t> pubkey, unsigned threads);

// The defaults are safe for any caller and any destination: no owners, no
// device nodes (skipped and counted), no setuid or setgid bits (removed and
// counted), and the root entry's mode on the destination.
struct ExtractOptions {
    bool owners = false;     // give entries their owners (root outside a user namespace)
    bool devices = false;    // make device nodes (root outside a user namespace)
    bool setid = false;      // keep setuid and setgid bits
    bool root_mode = true;   // false: leave the destination's own mode alone
    unsigned threads = 0;
};

struct ExtractStats {
    uint64_t entries = 0, bytes = 0;
    uint64_t devices_skipped = 0;
    uint64_t setid_stripped = 0;
    uint64_t xattrs_dropped = 0;  // security.* and trusted.*, or refused by the file system
};

// Extract into dest_fd, an empty directory that we just created, after
// checking the stub's hash (a cold run: the frames are checked as they are
// decoded). Every
// entry is created with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS) below
// it, exclusively; symlinks are never followed. Checks the free space first.
Result<ExtractStats> extract(const Packed& p, int dest_fd, const ExtractOptions& o);

}  // namespace kago::pack
