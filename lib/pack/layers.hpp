// Packing an image (pack-selfexec --image): its layer directories, as the
// image store unpacks them (lib/image/layer.hpp: the form overlayfs reads),
// merged into one tree as overlayfs shows them, and the image's config
// turned into the packed file's settings.
#pragma once

#include <string>
#include <vector>

#include "core/result.hpp"
#include "pack/format.hpp"
#include "pack/tree.hpp"

namespace kago::pack {

// Add the layers, bottom first, to tree, applying what each one says about
// the ones below, as overlayfs does:
// - a whiteout (a character device 0:0) deletes its path and everything
//   under it, and is not packed;
// - an opaque directory (trusted.overlay.opaque or user.overlay.opaque
//   "y") hides what the layers below hold under it;
// - a directory over a directory merges with it; any other entry replaces
//   what was there, with everything under it.
// The overlay xattrs themselves (trusted.overlay.*, user.overlay.*) are not
// packed. A hard link whose first path a layer above deleted or replaced
// keeps its data: the first surviving path of its group holds it.
Status add_layers(Tree& tree, const std::vector<std::string>& dirs_bottom_first,
                  const ScanOptions& o);

// What the image's config gives the packed file, under what the user gave.
struct ImageConfig {
    std::vector<std::string> entrypoint, cmd, env;  // env: NAME=VALUE
    std::string user, working_dir;
};
struct Given {
    bool command = false;  // a COMMAND after the options
    bool workdir = false, user = false;
};
// The command is the image's Entrypoint then Cmd unless a COMMAND was
// given; the image's Env comes first and --env (already in c.env) wins over
// it, name by name; WorkingDir and User unless --workdir and --user.
// An image that names no command and no COMMAND given is an error.
Status apply_image_config(Config& c, const ImageConfig& image, const Given& given);

}  // namespace kago::pack
