#include "pack/image.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/import.hpp"
#include "image/store.hpp"

namespace kago::pack {

bool is_import_source(const std::string& ref) {
    for (const char* t : {"oci:", "oci-archive:", "docker-archive:"})
        if (ref.rfind(t, 0) == 0) return true;
    struct stat st;
    return ref == "-" || ref.find('/') != std::string::npos || ::stat(ref.c_str(), &st) == 0;
}

PackImage::PackImage(PackImage&& o) noexcept
    : name(std::move(o.name)),
      layer_dirs(std::move(o.layer_dirs)),
      config(std::move(o.config)),
      imported(o.imported),
      temp_(std::move(o.temp_)) {}

PackImage::~PackImage() = default;

Result<PackImage> PackImage::open(const std::string& ref, const std::string& store_path) {
    PackImage p;
    std::string path = store_path;
    std::string image = ref;
    if (is_import_source(ref)) {
        const char* dir = ::getenv("TMPDIR");
        // Removed by a watcher process if we are killed (scratch.hpp).
        p.temp_.emplace(TRY(ScratchDir::make(dir && *dir ? dir : "/var/tmp", "kago-pack-image.")));
        path = p.temp_->path() + "/store";
        auto s = TRY(image::Store::open(path, true));
        TRY(s.lock());
        image::ImportOptions o;
        o.src = ref;
        o.name = "packed:1";
        o.unpack = image::caller_unpack_options();
        o.write = image::caller_write_options();
        auto r = TRY(image::import(s, o));
        image = r.name;
        p.imported = true;
    }
    auto s = TRY(image::Store::open(path, false));
    auto im = TRY(image::resolve(s, image));
    p.name = p.imported ? ref : im.name;
    p.layer_dirs = im.layer_dirs;
    p.config.entrypoint = im.config.entrypoint;
    p.config.cmd = im.config.cmd;
    p.config.env = im.config.env;
    p.config.user = im.config.user;
    p.config.working_dir = im.config.working_dir;
    return p;
}

}  // namespace kago::pack
