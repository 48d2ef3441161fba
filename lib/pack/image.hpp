// pack-selfexec --image REF: the image to pack, from the image store
// (lib/image/store.hpp) or from an archive or a layout imported into a
// temporary store of its own first.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "pack/layers.hpp"
#include "pack/scratch.hpp"

namespace kago::pack {

class PackImage {
  public:
    // REF with a transport (oci:, oci-archive:, docker-archive:) or naming
    // an existing file or directory is imported (lib/image/import.hpp)
    // into a temporary store under $TMPDIR (or /var/tmp), which the
    // destructor removes, and a watcher process if we are killed
    // (pack/scratch.hpp); anything else is a name or an id in `store`.
    // As root the temporary import keeps the image's owners, devices and
    // setid bits; as another user every file is the caller's.
    static Result<PackImage> open(const std::string& ref, const std::string& store);
    PackImage(PackImage&& o) noexcept;
    PackImage& operator=(PackImage&&) = delete;
    ~PackImage();

    std::string name;                     // the image's name or id
    std::vector<std::string> layer_dirs;  // bottom first
    ImageConfig config;
    bool imported = false;  // from a temporary store

  private:
    PackImage() = default;
    std::optional<ScratchDir> temp_;  // the temporary store's parent directory
};

// Whether REF names something to import rather than a name in a store.
bool is_import_source(const std::string& ref);

}  // namespace kago::pack
