// Registry authentication, the parts that need no network: the
// WWW-Authenticate challenge of a 401 answer (RFC 7235; the registry token
// flow's "Bearer realm=...,service=...,scope=..." and "Basic realm=..."),
// and the credentials podman, skopeo and docker keep:
//
//   $REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json,
//   ${DOCKER_CONFIG:-~/.docker}/config.json
//
// each {"auths": {"REGISTRY[/REPO]": {"auth": base64("USER:PASSWORD")}}}
// or {"identitytoken": TOKEN} in place of (or beside) "auth";
// the first file that has an entry for the registry wins, and within a file
// the longest key that is a prefix of REGISTRY/REPO (podman's namespaced
// entries). Docker's "https://index.docker.io/v1/" is docker.io.
//
// A file may name credential helpers instead (docker's config.json):
// {"credHelpers": {"REGISTRY": "NAME"}} for one registry, {"credsStore":
// "NAME"} for the others. The helper is the program docker-credential-NAME
// (in PATH), run as "docker-credential-NAME get" with the registry's
// server URL on its stdin (REGISTRY, or docker's "https://index.docker.io
// /v1/" for Docker Hub); it prints {"Username": ..., "Secret": ...}, and a
// Username of "<token>" makes the Secret an identity token. In a
// file, credHelpers' entry for the registry comes first, then an auths
// entry with credentials, then credsStore. A helper that answers
// "credentials not found" leaves the search to the next file.
#pragma once

#include <functional>
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
    // An identity token (docker's and podman's "identitytoken", or a helper's
    // Username "<token>"): an OAuth2 refresh token, traded at the registry's
    // token server for an access token (POST, grant_type=refresh_token).
    // When set, user and password are not used.
    std::string identity_token;
};

// The "auths" of one auth.json or config.json, keyed as normalized
// (scheme and docker's /v1/ path removed, index.docker.io as docker.io).
Result<std::map<std::string, Credentials>> parse_auth_file(const std::string& text,
                                                           const std::string& what);

// A file's credential helpers: credHelpers (keyed as auths are) and
// credsStore ("" when none).
struct CredentialHelpers {
    std::map<std::string, std::string> per_registry;
    std::string store;
};
Result<CredentialHelpers> parse_credential_helpers(const std::string& text,
                                                   const std::string& what);

// Run docker-credential-NAME get with `server` on its stdin: its stdout,
// or an error naming the helper (with its output) when it fails. A helper
// that says "credentials not found" gives nullopt.
using HelperRunner = std::function<Result<std::optional<std::string>>(const std::string& name,
                                                                      const std::string& server)>;
Result<std::optional<std::string>> run_credential_helper(const std::string& name,
                                                         const std::string& server);
// A helper's answer: {"Username", "Secret"}; Username "<token>": the Secret
// is an identity token.
Result<Credentials> parse_helper_answer(const std::string& text, const std::string& what);

// The files above, in their order, that exist or not.
std::vector<std::string> auth_files();
// The credentials for REF from the first of `files` that has any; where
// they came from goes to *from ("FILE" or "FILE, docker-credential-NAME").
// A file that cannot be parsed, or a helper that fails, is an error.
Result<std::optional<Credentials>> find_credentials(
    const Reference& ref, const std::vector<std::string>& files, std::string* from = nullptr,
    const HelperRunner& run_helper = run_credential_helper);

std::string base64(const std::string& bytes);

}  // namespace kago::image
