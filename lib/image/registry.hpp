// A client of the OCI Distribution Specification (the registry v2 API),
// enough to pull: manifests by tag or digest, and blobs, streamed.
//
// HTTP is libcurl's, loaded with dlopen(3) the first time a registry is
// contacted: image-layers is a static binary that starts every chain, and
// linking libcurl (statically impossible with Debian's packages, which
// ship no libgssapi_krb5.a, libldap.a, libnghttp2.a...) would make every
// start load some thirty shared libraries.
//
// Transport: https with the system's CAs; plain http only for --insecure
// or a loopback registry (tried after https fails). Redirects are followed
// (blob storage), to https only unless plain http is allowed; libcurl does
// not carry the Authorization header to another host. A blob transfer that
// breaks is resumed with HTTP Range requests (blob_stream).
//
// Authentication: anonymous first; a 401 answer's WWW-Authenticate
// challenge is met once: Bearer (a token from the challenge's realm, for
// its service and scope, asked with the user's credentials when there are
// any) or Basic (the user's credentials). Credentials: auth.hpp.
//
// One Registry is one libcurl easy handle, used by one thread at a time.
// Blobs are fetched in parallel by clones (clone()): each its own handle
// and connection, with what the first one learnt (http or https, the
// token).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "image/auth.hpp"
#include "image/oci.hpp"
#include "image/reference.hpp"

namespace kago::image {

// The Accept header of a manifest request: every manifest and index type.
std::string manifest_accept();

struct Fetched {
    std::string media_type, digest, body;
};

class Registry {
  public:
    struct Options {
        bool insecure = false;  // https without verification, then plain http
        std::vector<std::string> auth_files = image::auth_files();
    };
    static Result<std::unique_ptr<Registry>> connect(const Reference& ref, const Options& o);
    // Another handle on the same registry, for another thread: it starts
    // with this one's scheme (http or https) and authorization.
    Result<std::unique_ptr<Registry>> clone() const;
    ~Registry();
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    // A manifest or index by tag or digest, its digest checked (against the
    // digest asked for, and the Docker-Content-Digest header when sent).
    Result<Fetched> manifest(const std::string& ref);
    // A broken blob transfer is resumed with a Range request from the bytes
    // already received, at most this many times.
    static constexpr int kResumes = 3;

    // A small blob (a config), checked against its descriptor.
    Result<std::string> blob(const Descriptor& d);
    // A blob's bytes to `sink` as they arrive; more bytes than the
    // descriptor's size are refused. The caller checks the digest. A
    // transfer that breaks (the connection lost, a timeout) is resumed from
    // the bytes received (a Range request; a 200 answer has them skipped),
    // kResumes times; then the error names the blob and how far it came.
    // `stop`, when given and set (by another thread), ends the transfer
    // soon with an error.
    using Sink = std::function<Status(const char*, size_t)>;
    Status blob_stream(const Descriptor& d, const Sink& sink,
                       const std::atomic<bool>* stop = nullptr);

    // "https://HOST[:PORT]" (or http://), once a request decided it.
    const std::string& base() const { return base_; }

  private:
    struct Response;
    struct Impl;
    Registry(const Reference& ref, const Options& o);
    Result<Response> get(const std::string& url, const std::vector<std::string>& headers,
                         const Sink* sink, size_t limit, int64_t max_stream);
    // GET url; with `form`, POST it as application/x-www-form-urlencoded
    // (and follow no redirect: the body may hold a secret).
    Result<Response> perform(const std::string& url, const std::vector<std::string>& headers,
                             const Sink* sink, size_t limit, int64_t max_stream,
                             const std::string* form = nullptr);
    Status authenticate(const std::vector<std::string>& challenges, const std::string& url);
    std::string url(const std::string& path) const;
    std::string what() const;

    Reference ref_;
    Options o_;
    std::unique_ptr<Impl> impl_;
    std::string base_, auth_;
    bool plain_ok_ = false, decided_ = false, authed_ = false;
    bool transport_failed_ = false;  // the last perform() failed in libcurl
    int64_t range_from_ = 0;         // the next blob request's first byte
    const std::atomic<bool>* stop_ = nullptr;  // blob_stream's
};

}  // namespace kago::image
