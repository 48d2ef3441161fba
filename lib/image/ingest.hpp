// Storing a layer blob and unpacking it in one pass over its bytes.
//
// A LayerWriter is fed the blob's bytes as they arrive (from a file, from
// an archive being read, from the network): it hashes them and keeps them
// in a temporary file of the store's tmp/, which a second thread reads as
// it grows, decompresses and unpacks (unpack_layer) into a temporary
// directory. The feeder never waits for the unpacker: the bytes in
// between are the file's, in the page cache, not the process's memory, so
// a reader of a stream can go on to the next layer while this one is
// still unpacking (DockerStream keeps several in flight). finish() waits
// and gives the blob's digest and the layer's diff_id; the caller checks
// them against what it expected, then publishes both (each by a rename)
// or discards both. Nothing half-made is ever where a run looks.
//
// With threads to spare (UnpackOptions::reader), a third thread hashes
// the blob as it grows, reading the same file as the unpacker: a plain
// layer's digest is its diff_id, so the unpacker does not hash it too.
// When the bytes are a range of a regular file (a layer of an uncompressed
// docker-archive, a blob of an OCI layout), copy_range() has the kernel copy
// them into the blob (copy_file_range(2)) instead of this process reading
// and writing them, by a thread of its own.
//
//   auto w = TRY(LayerWriter::start(store, unpack, "layer 1"));
//   while (n = read(...)) TRY(w->feed(buf, n));    // or: TRY(w->copy_range(fd, off, len));
//   Pending p = TRY(w->finish());
//   if (p.stats.diff_id != want) { discard(store, p); return error; }
//   bool made = TRY(publish(store, p, chain));
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
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
    // All of the blob's bytes: `len` bytes of the regular file `fd` from
    // offset `off` (fd's own offset is left alone; fd may be closed once
    // this returns). The kernel copies them into the blob, in steps, by a
    // thread of its own at a lower priority when the unpack has threads
    // (UnpackOptions::reader), else here before this returns. The file
    // ending early is an error at finish(). Nothing is fed before or after.
    Status copy_range(int fd, int64_t off, int64_t len);
    // The end of the bytes: waits for the unpacker. A failed unpack is its
    // error; on any error both temporary names are gone.
    Result<Pending> finish();
    // The blob's digest and size, once finish() returned (even an error).
    const BlobRef& blob() const { return blob_ref_; }

  private:
    LayerWriter(Store& s, std::string what) : s_(s), what_(std::move(what)) {}
    void drop();
    // The unpacker's end of the file: waits for bytes the feeder has not
    // written yet.
    class Spool;
    friend class Spool;
    // No more bytes: the unpacker sees the end of them; `cancel`: it
    // fails at its next read instead.
    void stop(bool cancel);
    // The copier's work (copy_range): src's bytes [off, off + len) to the
    // end of the blob, each step published to the readers.
    Status copy(int src, int64_t off, int64_t len);
    Status append(const void* data, size_t n);  // write to the blob, then grown(n)
    void grown(int64_t n);

    Store& s_;
    std::string what_;
    std::string blob_name_, layer_name_;
    UniqueFd blob_, dest_;
    int spool_fd_ = -1;  // what the unpacker reads: blob_, or the linked source
    std::mutex mu_;
    std::condition_variable grew_;
    int64_t written_ = 0;     // bytes the unpacker may read (under mu_)
    bool ended_ = false;      // no more will come (under mu_)
    bool cancelled_ = false;  // the unpacker is to stop at once (under mu_)
    std::thread unpacker_;
    Result<UnpackStats> unpacked_ = Error{};
    // The hasher (with threads): the blob's digest, from the blob.
    std::thread hasher_;
    Result<std::string> hashed_ = Error{};
    // The copier (copy_range with threads), and how its copy ended.
    std::thread copier_;
    Status copied_;
    // The blob's digest is hashed here as the bytes go by when they are
    // compressed; a plain tar's digest is its diff_id, which the unpacker
    // hashes from the same bytes, so it is not hashed twice (unless the
    // unpack fails: then the file is hashed at finish()).
    // With a hasher, neither: Hashing::hasher.
    enum class Hashing { undecided, here, unpacker, hasher } hashing_ = Hashing::undecided;
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
