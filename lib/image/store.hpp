// The image store: an OCI image layout (oci-layout, index.json whose
// entries carry org.opencontainers.image.ref.name, blobs/sha256/HEX), so
// that skopeo and umoci read it as it is, plus what the chain runs from:
//
//   STORE/oci-layout, index.json, blobs/sha256/   the OCI image layout
//   STORE/layers/CHAIN_HEX/                        each layer unpacked, keyed by
//                                                  its chain ID: images that share
//                                                  a base share its directories
//   STORE/tmp/                                     work in progress, never read
//   STORE/lock                                     flock(2): one writer at a time
//
// Writers hold the lock for the whole operation; the first thing they do
// is empty tmp/, which holds only what a killed writer left. Everything is
// made in tmp/ and published by rename(2): a blob once its digest checked,
// a layer once unpacked whole and its diff_id checked, index.json last.
// So a kill -9 at any point leaves no partial blob or layer where a later
// run looks. Readers (a chain resolving its image) take no lock: every
// file they read was published whole.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/fd.hpp"
#include "core/result.hpp"
#include "image/layer.hpp"
#include "image/oci.hpp"

namespace kago::image {

// /var/lib/kago/images for root, else ${XDG_DATA_HOME:-~/.local/share}/kago/images.
std::string default_store();

// NAME with ":latest" added when it has no tag; errors name the bad word.
Result<std::string> normalize_name(const std::string& name, const std::string& what);

struct BlobRef {
    std::string digest;
    int64_t size = 0;
};

// Bytes read against their descriptor: the digest (unless empty) and the
// size (unless -1); a mismatch names both. put_blob and ingest_layer use it.
Status check_blob(const BlobRef& got, const std::string& expected, int64_t expected_size,
                  const std::string& what);

class Store {
  public:
    // Open the store at `path`. With `create`, make the layout when it is
    // missing (under the lock). A path holding ':' is refused: the layer
    // directories are handed down as a ':'-separated list.
    static Result<Store> open(const std::string& path, bool create);
    // Take the writer's lock (waits for another writer), then empty tmp/.
    Status lock();

    const std::string& path() const { return path_; }
    int fd() const { return dir_.get(); }

    Result<Index> index() const;
    // Written whole and renamed into place; synced first unless `sync` is
    // false (only a new store's empty index, which nothing depends on).
    Status write_index(const Index& idx, bool sync = true);

    std::string blob_path(const std::string& digest) const;
    bool has_blob(const std::string& digest) const;
    // A stored blob's bytes, checked against its digest (configs, manifests).
    Result<std::string> read_blob(const std::string& digest) const;
    Result<UniqueFd> open_blob(const std::string& digest) const;
    // Copy what src_fd holds into a blob, hashing it on the way. With an
    // expected digest (and size, unless -1), a mismatch is refused naming
    // both digests and nothing is published.
    Result<BlobRef> put_blob(int src_fd, const std::string& expected, int64_t expected_size, const std::string& what);
    Result<BlobRef> put_bytes(const std::string& bytes);
    // A file this writer made in tmp/ becomes the blob `digest`. When the
    // blob is there already (another layer of the same import stored the
    // same bytes first), the published one is kept if it checks out, and
    // replaced by this one if it does not.
    Status adopt_blob(const std::string& tmp_name, const std::string& digest);

    std::string layer_path(const std::string& chain) const;
    bool has_layer(const std::string& chain) const;
    // Unpack the stored blob into layers/CHAIN, unless it is there already
    // (shared); the diff_id must match. Returns nullopt when shared.
    Result<std::optional<UnpackStats>> add_layer(const std::string& blob, const std::string& diff_id,
                                                 const std::string& chain, const UnpackOptions& o);

    // Empty tmp/: under the lock, everything there is this writer's (or a
    // killed one's). A failed import or commit calls it.
    Status clear_tmp();
    // A new name in tmp/ (PREFIX.PID.N, N from a counter the import's
    // threads share), and the tmp/ descriptor. The store's methods may be
    // called from several threads of the writer at once: they keep no
    // state but this counter.
    std::string tmp_name(const std::string& prefix);
    int tmp_fd() const { return tmp_.get(); }

    // Remove the blobs and layer directories no index entry refers to.
    // Returns how many of each went.
    Result<std::pair<size_t, size_t>> collect();

  private:
    std::string path_;
    UniqueFd dir_, tmp_, lock_;
    std::unique_ptr<std::atomic<unsigned>> counter_ = std::make_unique<std::atomic<unsigned>>(0);
};

// An image resolved for running.
struct Image {
    std::string name;             // the ref name, or the id asked for
    Descriptor manifest_desc;
    Manifest manifest;
    std::string config_digest;
    Config config;
    std::vector<std::string> chains;      // bottom first
    std::vector<std::string> layer_dirs;  // bottom first
    int64_t size = 0;                     // config and layer blobs
};

// IMAGE: a ref name (":latest" implied), or an id (a prefix of the config
// digest's hex, 4 digits at least, or of the manifest digest).
Result<Image> resolve(const Store& s, const std::string& ref);
// --list: a header, then a line per index entry: name, id, size (si_size)
// and created.
Result<std::string> list_table(const Store& s);
// "1.2 MB": decimal units, as the registries and podman show sizes.
std::string si_size(int64_t bytes);

// The index entries: (name or "", descriptor).
Result<std::vector<Descriptor>> entries(const Store& s);

}  // namespace kago::image
