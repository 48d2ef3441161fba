// Storing a layer blob and unpacking it in one pass over its bytes.
//
// A LayerWriter is fed the blob's bytes as they arrive (from a file, from
// an archive being read, from the network): it hashes them, keeps them in a
// temporary file of the store's tmp/ and hands them through a socket to a
// second thread, which decompresses and unpacks them (unpack_layer) into a
// temporary directory. finish() gives the blob's digest and the layer's
// diff_id; the caller checks them against what it expected, then publishes
// both (each by a rename) or discards both. Nothing half-made is ever
// where a run looks.
//
//   auto w = TRY(LayerWriter::start(store, unpack, "layer 1"));
//   while (n = read(...)) TRY(w->feed(buf, n));
//   Pending p = TRY(w->finish());
//   if (p.stats.diff_id != want) { discard(store, p); return error; }
//   bool made = TRY(publish(store, p, chain));
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "core/fd.hpp"
#include "core/result.hpp"
#include "image/digest.hpp"
#include "image/layer.hpp"
#include "image/store.hpp"

namespace kago::image {

// A layer made in tmp/, not yet published.
struct Pending {
    BlobRef blob;
    UnpackStats stats;
    std::string blob_tmp, layer_tmp;  // names in the store's tmp/
};

class LayerWriter {
  public:
    // link_fd >= 0: the bytes are those of this file, a regular file of the
    // store's tmp/ that nobody else writes (an archive unpacked there): it
    // is hard-linked as the blob instead of copied. Copied anyway when it
    // is not a regular file on the store's filesystem.
    static Result<std::unique_ptr<LayerWriter>> start(Store& s, const UnpackOptions& u,
                                                      std::string what, int link_fd = -1);
    ~LayerWriter();  // unless finished: stops the unpacker, removes both
    LayerWriter(const LayerWriter&) = delete;
    LayerWriter& operator=(const LayerWriter&) = delete;

    Status feed(const void* data, size_t n);
    // The end of the bytes: waits for the unpacker. A failed unpack is its
    // error; on any error both temporary names are gone.
    Result<Pending> finish();
    // The blob's digest and size, once finish() returned (even an error).
    const BlobRef& blob() const { return blob_ref_; }

  private:
    LayerWriter(Store& s, std::string what) : s_(s), what_(std::move(what)) {}
    void drop();

    Store& s_;
    std::string what_;
    std::string blob_name_, layer_name_;
    UniqueFd blob_, dest_, feed_, drain_;
    std::thread unpacker_;
    Result<UnpackStats> unpacked_ = Error{};
    Sha256 hash_;
    int64_t size_ = 0;
    BlobRef blob_ref_;
    bool finished_ = false;
};

// Publish a pending layer: the blob under its digest (kept when it is
// there), the directory as layers/CHAIN. Returns false when layers/CHAIN
// was there already: the new directory is removed, the old one stays.
Result<bool> publish(Store& s, const Pending& p, const std::string& chain);
void discard(Store& s, const Pending& p);

struct LayerWant {
    std::string digest;   // the blob's digest, or empty when unknown (docker-archive)
    int64_t size = -1;    // the blob's size, or -1
    std::string diff_id;  // what the unpacked stream must hash to
    std::string chain;    // the layer directory's key (layers/CHAIN)
    bool link = false;    // src_fd is a file of the store's tmp/ (LayerWriter::start's link_fd)
};

struct Ingested {
    BlobRef blob;
    // The unpack's statistics; nullopt when layers/CHAIN was there already.
    std::optional<UnpackStats> stats;
};

// Read src_fd to its end through a LayerWriter, check the digest, size and
// diff_id, and publish. When the blob is already stored, only the directory
// is made (from the stored blob); when the directory is there, only the
// blob is stored.
Result<Ingested> ingest_layer(Store& s, int src_fd, const LayerWant& want, const UnpackOptions& u,
                              const std::string& what);

// The end of ingest_layer, for bytes fed from elsewhere (a registry): finish
// the writer, check the digest, size and diff_id, and publish.
Result<Ingested> settle(Store& s, LayerWriter& w, const LayerWant& want, const std::string& what);

}  // namespace kago::image
