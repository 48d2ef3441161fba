// image-layers --pull: an image from a registry into the store.
//
// The manifest (an index or manifest list resolved to the platform, as an
// import does), the config, then each layer the store lacks, streamed in
// one pass: hashed, kept as its blob and unpacked while it arrives
// (LayerWriter), its digest, size and diff_id checked before anything is
// published. A layer whose blob and directory are in the store already is
// not fetched; one whose blob is there is unpacked from it.
//
// Layers are independent until the image is published, so up to `jobs` of
// them (KAGO_IMAGE_JOBS, as for an import) come at once, each on its own
// thread with its own libcurl handle (Registry::clone): the blocking easy
// API keeps a blob's Range resume a plain loop, and the thread's share of
// the work (hashing the bytes, writing the blob file) runs beside the
// other layers' on another CPU, as their unpackers do. The first layer
// that fails stops the others (their transfers end at once) and its
// error, which names its digest, is the pull's.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "core/result.hpp"
#include "image/import.hpp"
#include "image/registry.hpp"

namespace kago::image {

struct PullEvent {
    enum Kind { start, bytes, fetched, present, unpacked } kind;
    size_t index = 0, count = 0;  // the layer (1-based) of how many
    std::string digest;
    int64_t size = -1, done = 0;  // the descriptor's size, the bytes so far
};

struct PullOptions {
    std::string ref, name;  // name: "" takes REF (":latest" added)
    std::optional<Platform> platform;
    UnpackOptions unpack;
    Registry::Options registry;
    unsigned jobs = 0;  // layers at once, as ImportOptions::jobs
    // Called from the threads that fetch the layers, one call at a time.
    std::function<void(const PullEvent&)> progress;
};

// The store must be locked. A failed pull publishes nothing; what it
// stored before failing is collected, as after a failed import.
Result<ImportResult> pull(Store& s, const PullOptions& o);

// The store name a pull of REF gives its image.
Result<std::string> pull_name(const PullOptions& o);

}  // namespace kago::image
