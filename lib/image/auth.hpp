// Registry authentication, the parts that need no network: the
// WWW-Authenticate challenge of a 401 answer (RFC 7235; the registry token
// flow's "Bearer realm=...,service=...,scope=..." and "Basic realm=..."),
// and the credentials podman, skopeo and docker keep:
//
//   $REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json,
//   ${DOCKER_CONFIG:-~/.docker}/config.json
//
// each {"auths": {"REGISTRY[/REPO]": {"auth": base64("USER:PASSWORD")}}};
// the first file that has an entry for the registry wins, and within a file
// the longest key that is a prefix of REGISTRY/REPO (podman's namespaced
// entries). Docker's "https://index.docker.io/v1/" is docker.io.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "image/reference.hpp"

namespace kago::image {

struct Challenge {
    std::string scheme;                         // lowercase: "bearer", "basic"
    std::map<std::string, std::string> params;  // keys lowercase: realm, service, scope
};

// Every challenge in one WWW-Authenticate value (a value may hold several).
Result<std::vector<Challenge>> parse_challenges(const std::string& value);

struct Credentials {
    std::string user, password;
};

// The "auths" of one auth.json or config.json, keyed as normalized
// (scheme and docker's /v1/ path removed, index.docker.io as docker.io).
Result<std::map<std::string, Credentials>> parse_auth_file(const std::string& text,
                                                           const std::string& what);

// The files above, in their order, that exist or not.
std::vector<std::string> auth_files();
// The credentials for REF from the first of `files` that has any; where
// they came from goes to *from. A file that cannot be parsed is an error.
Result<std::optional<Credentials>> find_credentials(const Reference& ref,
                                                    const std::vector<std::string>& files,
                                                    std::string* from = nullptr);

std::string base64(const std::string& bytes);

}  // namespace kago::image
