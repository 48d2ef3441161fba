#include "pack/image.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/import.hpp"
#include "image/store.hpp"
#include "pack/cache.hpp"

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
      temp_(std::move(o.temp_)) {
    o.temp_.clear();
}

PackImage::~PackImage() {
    if (!temp_.empty()) (void)remove_tree_at(AT_FDCWD, temp_, temp_);
}

Result<PackImage> PackImage::open(const std::string& ref, const std::string& store_path) {
    PackImage p;
    std::string path = store_path;
    std::string image = ref;
    if (is_import_source(ref)) {
        const char* dir = ::getenv("TMPDIR");
        std::string t = cat(dir && *dir ? dir : "/var/tmp", "/kago-pack-image.XXXXXX");
        if (!::mkdtemp(t.data())) return sys_error(cat("create a temporary directory ", t));
        p.temp_ = t;
        path = t + "/store";
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
