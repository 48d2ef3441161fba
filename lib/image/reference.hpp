// Image references as `docker pull` takes them:
//
//   [REGISTRY[:PORT]/]REPO[:TAG][@sha256:DIGEST]
//
// The first component names a registry when it holds a '.' or a ':' or is
// "localhost"; otherwise the image is on Docker Hub (docker.io, served from
// registry-1.docker.io), where a repository of one component is under
// "library/". With no tag and no digest, the tag is "latest".
#pragma once

#include <string>

#include "core/result.hpp"

namespace kago::image {

struct Reference {
    std::string registry;    // as written, or "docker.io": "127.0.0.1:5000", "quay.io"
    std::string repository;  // "library/debian", "kago/test"
    std::string tag;         // "latest" unless given; empty with a digest alone
    std::string digest;      // "sha256:HEX", or empty

    // The host (and port) the API is served from: docker.io is
    // registry-1.docker.io.
    std::string api_host() const;
    // The host name alone, without a port or brackets.
    std::string host() const;
    // What the manifest is asked for by: the digest when there is one.
    std::string manifest_ref() const { return digest.empty() ? tag : digest; }
    // REGISTRY/REPO[:TAG][@DIGEST], every default spelled out.
    std::string str() const;
};

Result<Reference> parse_reference(const std::string& text);

// A loopback registry (localhost, 127.0.0.0/8, [::1]): plain HTTP is
// allowed without --insecure.
bool is_loopback(const Reference& r);

}  // namespace kago::image
