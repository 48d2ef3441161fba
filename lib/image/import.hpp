// Bringing images into the store, and making new ones from it.
//
// SRC for an import:
//   oci:DIR[:REF]            an OCI image layout (REF: its ref.name annotation)
//   oci-archive:FILE[:REF]   the same, as a tar
//   docker-archive:FILE[:REF] what `docker save` and `podman save` write
//   DIR                      an OCI layout (it has oci-layout), else a root filesystem
//   FILE                     an OCI or docker archive, told by what it holds, else a
//                            root filesystem as a tar (plain, gzip or zstd)
//   -                        any of the archives, or a rootfs tar, on standard input
// A multi-arch index picks the host's platform, or the one asked for.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "image/store.hpp"

namespace kago::image {

struct ImportOptions {
    std::string src, name;  // name: "" takes the source's own
    std::optional<Platform> platform;
    UnpackOptions unpack;
    WriteOptions write;  // for a root filesystem directory
    // How many layers are unpacked at once, and how many workers make the
    // files of each (UnpackOptions::workers, set from this): 0 for the
    // default (the CPUs this process may run on, at most kMaxJobs), 1 for
    // one layer at a time, unpacked by one thread.
    unsigned jobs = 0;
};

inline constexpr unsigned kMaxJobs = 8;
// KAGO_IMAGE_JOBS: 1 to kMaxJobs layers at once; "" (unset) is 0, the
// default. Anything else is a usage error naming the variable.
Result<unsigned> parse_jobs(std::string_view value);
// ImportOptions::jobs made concrete: at least 1, at most kMaxJobs.
unsigned import_jobs(unsigned asked);

struct ImportResult {
    std::string name, manifest_digest, config_digest;
    size_t layers = 0, layers_shared = 0;
    UnpackStats totals;  // over the layers unpacked now
};

// The store must be locked. Nothing reaches index.json unless every blob
// and layer checked out.
Result<ImportResult> import(Store& s, const ImportOptions& o);

// --commit DIR IMAGE NAME: DIR (an overlay upper directory) becomes a new
// layer on top of IMAGE, whiteouts turned back into .wh. entries.
Result<ImportResult> commit(Store& s, const std::string& dir, const std::string& image, const std::string& name,
                            const UnpackOptions& u, const WriteOptions& w);

// Point NAME (normalized) at a stored manifest in index.json, replacing
// what NAME named, then collect what nothing uses any more.
Status name_image(Store& s, const std::string& name, const Descriptor& manifest);
// Point NAME at IMAGE's manifest.
Status tag(Store& s, const std::string& image, const std::string& name);
// Remove IMAGE's name (an id: every name of that image).
Result<std::vector<std::string>> remove(Store& s, const std::string& image);

// "2026-12-06T01:02:03Z".
std::string now_rfc3339();

}  // namespace kago::image
