// Storing a layer blob and unpacking it in one pass over its bytes.
//
// A layer that is neither in the store as a blob nor as a directory is read
// once: the reading thread hashes each buffer, writes it to the blob's
// temporary file and hands it through a socket to a second thread, which
// decompresses and unpacks it (unpack_layer) into a temporary directory.
// Only when both agree with what was expected (the blob's digest and size,
// the layer's diff_id) are the blob and the directory published, each by a
// rename; on any failure both are removed and nothing is published.
//
//   auto in = ingest_layer(store, fd, {.digest = d, .size = n, .diff_id = id, .chain = c}, unpack, "layer X");
#pragma once

#include <optional>
#include <string>

#include "core/result.hpp"
#include "image/layer.hpp"
#include "image/store.hpp"

namespace kago::image {

struct LayerWant {
    std::string digest;   // the blob's digest, or empty when unknown (docker-archive)
    int64_t size = -1;    // the blob's size, or -1
    std::string diff_id;  // what the unpacked stream must hash to
    std::string chain;    // the layer directory's key (layers/CHAIN)
    // The source is a file in the store's tmp/ that nobody else writes (an
    // archive unpacked there): its inode is hard-linked into blobs/ rather
    // than copied. Copied anyway when it is not a regular file there.
    bool link = false;
};

struct Ingested {
    BlobRef blob;
    // The unpack's statistics; nullopt when layers/CHAIN was there already.
    std::optional<UnpackStats> stats;
};

// Store and unpack the layer read from src_fd (see above). When the blob
// is already stored, only the directory is made (from the stored blob);
// when the directory is there, only the blob is stored.
Result<Ingested> ingest_layer(Store& s, int src_fd, const LayerWant& want, const UnpackOptions& u,
                              const std::string& what);

}  // namespace kago::image
