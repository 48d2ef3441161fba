// The OCI image format's documents: descriptors, image indexes, image
// manifests and image configs (and Docker's schema 2 equivalents), parsed
// from JSON into what the store needs. nlohmann::json parses; no exception
// leaves this file.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace kago::image {

namespace media {
inline constexpr const char kIndex[] = "application/vnd.oci.image.index.v1+json";
inline constexpr const char kManifest[] = "application/vnd.oci.image.manifest.v1+json";
inline constexpr const char kConfig[] = "application/vnd.oci.image.config.v1+json";
inline constexpr const char kLayer[] = "application/vnd.oci.image.layer.v1.tar";
inline constexpr const char kLayerGzip[] = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr const char kLayerZstd[] = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr const char kDockerList[] = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr const char kDockerManifest[] = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr const char kDockerConfig[] = "application/vnd.docker.container.image.v1+json";
inline constexpr const char kDockerLayer[] = "application/vnd.docker.image.rootfs.diff.tar.gzip";
}  // namespace media

inline constexpr const char kRefName[] = "org.opencontainers.image.ref.name";

bool is_index_type(const std::string& t);
bool is_manifest_type(const std::string& t);
bool is_layer_type(const std::string& t);

struct Platform {
    std::string os = "linux", architecture, variant;
    std::string str() const;  // "linux/amd64", "linux/arm/v7"
};
// The host's platform, from uname(2)'s machine ("x86_64" is amd64).
Platform host_platform();
// "OS/ARCH[/VARIANT]".
Result<Platform> parse_platform(const std::string& s);
// An index entry's platform fits the wanted one (an empty variant fits any).
bool fits(const Platform& have, const Platform& want);

struct Descriptor {
    std::string media_type, digest;
    int64_t size = -1;
    std::optional<Platform> platform;
    std::map<std::string, std::string> annotations;
};

struct Index {
    std::vector<Descriptor> manifests;
};

// The entry of a multi-arch index (an OCI index or a Docker manifest list)
// for the platform `want`: the first that fits, or one with no platform;
// attestations (os "unknown") are skipped. `asked`: the platform was the
// user's choice (no hint to pick another). `what` names the index.
Result<Descriptor> pick_manifest(const Index& idx, const Platform& want, bool asked,
                                 const std::string& what);

struct Manifest {
    std::string media_type;
    Descriptor config;
    std::vector<Descriptor> layers;
};

// The parts of an image config the chain uses; `json` is all of it.
struct Config {
    Platform platform;
    std::vector<std::string> diff_ids;
    std::vector<std::string> env, entrypoint, cmd;
    std::string user, working_dir, created;
    std::string json;
};

// `what` names the document in errors ("index.json", "manifest sha256:...").
Result<Index> parse_index(const std::string& text, const std::string& what);
Result<Manifest> parse_manifest(const std::string& text, const std::string& what);
Result<Config> parse_config(const std::string& text, const std::string& what);

// Documents the store writes.
std::string index_json(const Index& idx);
std::string manifest_json(const Manifest& m);
// A config for a rootfs import or a commit: `base` (a config's JSON, or
// empty) with diff_ids, platform, created and a history entry set.
std::string config_json(const std::string& base, const std::vector<std::string>& diff_ids, const Platform& p,
                        const std::string& created, const std::string& created_by);
// The JSON of a config, indented, for --inspect.
std::string pretty(const std::string& json);
// A JSON array of strings, for KAGO_IMAGE_ENV and KAGO_IMAGE_CMD.
std::string string_array(const std::vector<std::string>& v);

}  // namespace kago::image
