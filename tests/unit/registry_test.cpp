// lib/image's pulling side that needs no network: image references, the
// WWW-Authenticate challenge, credential files, index platform picks.
#include "image/registry.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <string>

#include "image/auth.hpp"
#include "image/oci.hpp"
#include "image/reference.hpp"
#include "temp_dir.hpp"

using namespace kago;
using namespace kago::image;

namespace {

const std::string kDigest = "sha256:" + std::string(64, 'a');

Reference parsed(const std::string& s) {
    auto r = parse_reference(s);
    EXPECT_TRUE(r.ok()) << s << ": " << (r ? "" : r.error().message());
    return r ? *r : Reference{};
}

using kago::test::TempDir;

}  // namespace

TEST(ImageReference, DockerHubDefaults) {
    Reference r = parsed("debian");
    EXPECT_EQ(r.registry, "docker.io");
    EXPECT_EQ(r.repository, "library/debian");
    EXPECT_EQ(r.tag, "latest");
    EXPECT_EQ(r.digest, "");
    EXPECT_EQ(r.api_host(), "registry-1.docker.io");
    EXPECT_EQ(r.str(), "docker.io/library/debian:latest");
    EXPECT_EQ(parsed("debian:12").tag, "12");
    EXPECT_EQ(parsed("user/app:1").repository, "user/app");
    EXPECT_EQ(parsed("docker.io/debian").repository, "library/debian");
    EXPECT_EQ(parsed("index.docker.io/library/debian").registry, "docker.io");
    EXPECT_EQ(parsed("registry-1.docker.io/debian").api_host(), "registry-1.docker.io");
}

TEST(ImageReference, RegistriesPortsDigests) {
    Reference r = parsed("127.0.0.1:5000/kago/test:2");
    EXPECT_EQ(r.registry, "127.0.0.1:5000");
    EXPECT_EQ(r.host(), "127.0.0.1");
    EXPECT_EQ(r.api_host(), "127.0.0.1:5000");
    EXPECT_EQ(r.repository, "kago/test");
    EXPECT_EQ(r.tag, "2");
    EXPECT_EQ(r.manifest_ref(), "2");
    EXPECT_EQ(parsed("localhost/app").registry, "localhost");
    EXPECT_EQ(parsed("localhost/app").repository, "app");
    EXPECT_EQ(parsed("quay.io/org/app").repository, "org/app");
    Reference d = parsed("quay.io/org/app@" + kDigest);
    EXPECT_EQ(d.tag, "");
    EXPECT_EQ(d.digest, kDigest);
    EXPECT_EQ(d.manifest_ref(), kDigest);
    Reference both = parsed("quay.io/org/app:1@" + kDigest);
    EXPECT_EQ(both.tag, "1");
    EXPECT_EQ(both.manifest_ref(), kDigest);
    EXPECT_EQ(parsed("[::1]:5000/app").host(), "::1");
    // A first component without '.' or ':' is a Docker Hub namespace.
    EXPECT_EQ(parsed("kago/app").registry, "docker.io");
    EXPECT_EQ(parsed("kago/app").repository, "kago/app");
    EXPECT_EQ(parsed("a__b/c-d.e_f").repository, "a__b/c-d.e_f");
}

TEST(ImageReference, Refused) {
    for (const char* bad : {"", "Debian", "app:", "app@sha256:abc",
                            "app@md5:"
                            "0123",
                            "/app", "app/", "a//b", "app:bad/tag", "app:-x", "-app", "a...b",
                            "a___b", "127.0.0.1:5000/", "app:t@x"}) {
        auto r = parse_reference(bad);
        EXPECT_FALSE(r.ok()) << bad;
        if (!r.ok()) {
            EXPECT_NE(r.error().what.find("image reference"), std::string::npos) << r.error().what;
        }
    }
}

TEST(ImageReference, Loopback) {
    EXPECT_TRUE(is_loopback(parsed("127.0.0.1:5000/a")));
    EXPECT_TRUE(is_loopback(parsed("127.1.2.3:80/a")));
    EXPECT_TRUE(is_loopback(parsed("localhost:5000/a")));
    EXPECT_TRUE(is_loopback(parsed("[::1]:5000/a")));
    EXPECT_FALSE(is_loopback(parsed("128.0.0.1:5000/a")));
    EXPECT_FALSE(is_loopback(parsed("quay.io/a")));
    EXPECT_FALSE(is_loopback(parsed("localhost.example.com/a")));
    EXPECT_FALSE(is_loopback(parsed("debian")));
}

TEST(ImageAuth, BearerChallenge) {
    auto cs = parse_challenges(
        R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull")");
    ASSERT_TRUE(cs.ok()) << cs.error().message();
    ASSERT_EQ(cs->size(), 1u);
    EXPECT_EQ((*cs)[0].scheme, "bearer");
    EXPECT_EQ((*cs)[0].params.at("realm"), "https://auth.docker.io/token");
    EXPECT_EQ((*cs)[0].params.at("service"), "registry.docker.io");
    EXPECT_EQ((*cs)[0].params.at("scope"), "repository:library/debian:pull");
}

TEST(ImageAuth, ChallengeForms) {
    auto b = parse_challenges(R"(Basic realm="Registry Realm")");
    ASSERT_TRUE(b.ok());
    EXPECT_EQ((*b)[0].scheme, "basic");
    EXPECT_EQ((*b)[0].params.at("realm"), "Registry Realm");
    // Case, spaces, tokens, escapes, commas inside quotes, two challenges.
    auto two = parse_challenges(
        R"(BEARER  Realm = "https://x/t?a=1,b=2" , Service=reg,scope="repository:a/b:pull,push" , Basic realm="say \"hi\"")");
    ASSERT_TRUE(two.ok()) << two.error().message();
    ASSERT_EQ(two->size(), 2u);
    EXPECT_EQ((*two)[0].scheme, "bearer");
    EXPECT_EQ((*two)[0].params.at("realm"), "https://x/t?a=1,b=2");
    EXPECT_EQ((*two)[0].params.at("service"), "reg");
    EXPECT_EQ((*two)[0].params.at("scope"), "repository:a/b:pull,push");
    EXPECT_EQ((*two)[1].scheme, "basic");
    EXPECT_EQ((*two)[1].params.at("realm"), "say \"hi\"");
    auto bare = parse_challenges("Negotiate");
    ASSERT_TRUE(bare.ok());
    EXPECT_EQ((*bare)[0].scheme, "negotiate");
    EXPECT_TRUE((*bare)[0].params.empty());
    EXPECT_FALSE(parse_challenges("").ok());
    EXPECT_FALSE(parse_challenges(R"(Bearer realm="open)").ok());
    EXPECT_FALSE(parse_challenges("=x").ok());
}

TEST(ImageAuth, AuthJson) {
    // podman's and skopeo's auth.json, with a namespaced entry.
    std::string text = R"({"auths": {
        "quay.io": {"auth": ")" +
                       base64("alice:s3cret:with:colons") + R"("},
        "quay.io/team": {"auth": ")" +
                       base64("bob:pw") + R"("},
        "127.0.0.1:5000": {"auth": ")" +
                       base64("kago:pass") + R"("},
        "helper.io": {}
    }})";
    auto a = parse_auth_file(text, "auth.json");
    ASSERT_TRUE(a.ok()) << a.error().message();
    EXPECT_EQ(a->at("quay.io").user, "alice");
    EXPECT_EQ(a->at("quay.io").password, "s3cret:with:colons");
    EXPECT_EQ(a->at("quay.io/team").user, "bob");
    EXPECT_EQ(a->at("127.0.0.1:5000").password, "pass");
    EXPECT_EQ(a->count("helper.io"), 0u);
    EXPECT_TRUE(parse_auth_file("{}", "x")->empty());
}

TEST(ImageAuth, DockerConfigJson) {
    std::string text = R"({"auths": {"https://index.docker.io/v1/": {"auth": ")" +
                       base64("hubuser:hubpw") +
                       R"("}, "http://registry.local:5000/v2/": {"auth": ")" + base64("u:p") +
                       R"("}}, "credsStore": "desktop", "HttpHeaders": {"User-Agent": "x"}})";
    auto a = parse_auth_file(text, "config.json");
    ASSERT_TRUE(a.ok()) << a.error().message();
    EXPECT_EQ(a->at("docker.io").user, "hubuser");
    EXPECT_EQ(a->at("registry.local:5000").user, "u");
}

TEST(ImageAuth, IdentityTokenInAuthFile) {
    // docker login with a token: "identitytoken" beside an "auth" of "<token>:"
    // (or alone); it wins over the pair. An empty one is no token.
    std::string text = R"({"auths": {
        "acr.io": {"auth": ")" +
                       base64("00000000-0000-0000-0000-000000000000:") +
                       R"(", "identitytoken": "eyJhbGciOi.refresh"},
        "alone.io": {"identitytoken": "t2"},
        "plain.io": {"auth": ")" +
                       base64("u:p") + R"(", "identitytoken": ""}
    }})";
    auto a = parse_auth_file(text, "config.json");
    ASSERT_TRUE(a.ok()) << a.error().message();
    EXPECT_EQ(a->at("acr.io").identity_token, "eyJhbGciOi.refresh");
    EXPECT_EQ(a->at("acr.io").user, "");
    EXPECT_EQ(a->at("alone.io").identity_token, "t2");
    EXPECT_EQ(a->at("plain.io").identity_token, "");
    EXPECT_EQ(a->at("plain.io").user, "u");
    auto bad = parse_auth_file(R"({"auths": {"x.io": {"identitytoken": 7}}})", "config.json");
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message().find("auths.x.io.identitytoken is not a string"),
              std::string::npos)
        << bad.error().message();
}

TEST(ImageAuth, BadFiles) {
    for (const char* bad : {"not json", "[]", R"({"auths": []})", R"({"auths": {"a": 1}})",
                            R"({"auths": {"a": {"auth": "!!!!"}}})",
                            R"({"auths": {"a": {"auth": "bm9jb2xvbg=="}}})"}) {
        auto a = parse_auth_file(bad, "auth.json");
        EXPECT_FALSE(a.ok()) << bad;
        if (!a.ok()) {
            EXPECT_NE(a.error().what.find("auth.json"), std::string::npos) << a.error().what;
        }
    }
}

TEST(ImageAuth, FindCredentialsInOrder) {
    TempDir d;
    std::string podman =
        d.write("auth.json", R"({"auths": {"quay.io": {"auth": ")" + base64("p:1") +
                                 R"("}, "quay.io/team": {"auth": ")" + base64("t:2") + R"("}}})");
    std::string docker =
        d.write("config.json", R"({"auths": {"quay.io": {"auth": ")" + base64("d:3") +
                                   R"("}, "https://index.docker.io/v1/": {"auth": ")" +
                                   base64("h:4") + R"("}}})");
    std::vector<std::string> files = {d.path() + "/missing.json", podman, docker};
    std::string from;
    auto c = find_credentials(parsed("quay.io/other/app"), files, &from);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c->has_value());
    EXPECT_EQ((*c)->user, "p");
    EXPECT_EQ(from, podman);
    // The longest key that is a prefix of REGISTRY/REPO, by whole components.
    EXPECT_EQ((*find_credentials(parsed("quay.io/team/app"), files))->user, "t");
    EXPECT_EQ((*find_credentials(parsed("quay.io/teamx/app"), files))->user, "p");
    // The first file without an entry is passed over.
    EXPECT_EQ((*find_credentials(parsed("debian"), files, &from))->user, "h");
    EXPECT_EQ(from, docker);
    EXPECT_FALSE(find_credentials(parsed("ghcr.io/a/b"), files)->has_value());
    std::string broken = d.write("broken.json", "{");
    EXPECT_FALSE(find_credentials(parsed("ghcr.io/a/b"), {broken}).ok());
}

TEST(ImageAuth, CredentialHelpersParsed) {
    auto h = parse_credential_helpers(
        R"({"credHelpers": {"gcr.io": "gcloud", "https://index.docker.io/v1/": "desktop"},
            "credsStore": "pass", "auths": {}})",
        "config.json");
    ASSERT_TRUE(h.ok()) << h.error().what;
    EXPECT_EQ(h->per_registry.at("gcr.io"), "gcloud");
    EXPECT_EQ(h->per_registry.at("docker.io"), "desktop");
    EXPECT_EQ(h->store, "pass");
    EXPECT_TRUE(parse_credential_helpers("{}", "x")->per_registry.empty());
    for (const char* bad :
         {R"({"credHelpers": []})", R"({"credHelpers": {"a.io": 1}})", R"({"credsStore": 2})",
          R"({"credsStore": "../bin/sh"})", R"({"credHelpers": {"a.io": ""}})"}) {
        auto b = parse_credential_helpers(bad, "config.json");
        EXPECT_FALSE(b.ok()) << bad;
        if (!b.ok()) {
            EXPECT_NE(b.error().what.find("config.json"), std::string::npos);
        }
    }
    auto a = parse_helper_answer(R"({"ServerURL": "a.io", "Username": "u", "Secret": "s"})", "h");
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->user, "u");
    EXPECT_EQ(a->password, "s");
    EXPECT_FALSE(parse_helper_answer("not json", "h").ok());
    EXPECT_FALSE(parse_helper_answer(R"({"Username": "u"})", "h").ok());
    // docker's mark of an identity token: the Secret is a refresh token.
    auto t = parse_helper_answer(R"({"Username": "<token>", "Secret": "r3fresh"})", "h");
    ASSERT_TRUE(t.ok()) << t.error().message();
    EXPECT_EQ(t->identity_token, "r3fresh");
    EXPECT_EQ(t->user, "");
    EXPECT_EQ(t->password, "");
    EXPECT_EQ(a->identity_token, "");
}

TEST(ImageAuth, CredentialHelpersInOrder) {
    TempDir d;
    std::vector<std::pair<std::string, std::string>> calls;
    HelperRunner fake = [&](const std::string& name,
                            const std::string& server) -> Result<std::optional<std::string>> {
        calls.emplace_back(name, server);
        if (name == "none") return std::optional<std::string>();
        if (name == "broken") return usage_error("docker-credential-broken get: exit status 1");
        return std::optional<std::string>(R"({"Username": ")" + name + R"(", "Secret": "s"})");
    };
    std::string docker =
        d.write("config.json", R"({"credHelpers": {"gcr.io": "gcloud", "quay.io": "none"},
                           "credsStore": "store",
                           "auths": {"ghcr.io": {"auth": ")" +
                                   base64("inline:1") + R"("},
                                     "docker.io": {}}})");
    std::string later =
        d.write("later.json", R"({"auths": {"quay.io": {"auth": ")" + base64("l:2") + R"("}}})");
    std::vector<std::string> files = {docker, later};
    std::string from;
    auto c = find_credentials(parsed("gcr.io/p/app"), files, &from, fake);
    ASSERT_TRUE(c.ok() && c->has_value());
    EXPECT_EQ((*c)->user, "gcloud");
    EXPECT_EQ(from, docker + ", docker-credential-gcloud");
    ASSERT_EQ(calls.size(), 1u);
    EXPECT_EQ(calls[0], (std::pair<std::string, std::string>{"gcloud", "gcr.io"}));
    // An auths entry with credentials before credsStore.
    EXPECT_EQ((*find_credentials(parsed("ghcr.io/a/b"), files, nullptr, fake))->user, "inline");
    // credsStore for the rest; Docker Hub asked by its old URL.
    calls.clear();
    EXPECT_EQ((*find_credentials(parsed("debian"), files, nullptr, fake))->user, "store");
    ASSERT_EQ(calls.size(), 1u);
    EXPECT_EQ(calls[0].second, "https://index.docker.io/v1/");
    // A helper with nothing for the registry: the next file.
    EXPECT_EQ((*find_credentials(parsed("quay.io/a/b"), files, nullptr, fake))->user, "l");
    // A helper that fails fails the search.
    std::string broken = d.write("broken.json", R"({"credsStore": "broken"})");
    EXPECT_FALSE(find_credentials(parsed("quay.io/a/b"), {broken}, nullptr, fake).ok());
}

TEST(ImageAuth, RunCredentialHelper) {
    TempDir d;
    std::string bin = d.path() + "/bin";
    ASSERT_EQ(::mkdir(bin.c_str(), 0755), 0);
    auto script = [&](const std::string& name, const std::string& body) {
        std::string p = d.write("bin/docker-credential-" + name, "#!/bin/sh\n" + body);
        ASSERT_EQ(::chmod(p.c_str(), 0755), 0);
    };
    script(
        "echo",
        "read -r s || true; echo \"{\\\"Username\\\": \\\"$1\\\", \\\"Secret\\\": \\\"$s\\\"}\"\n");
    script("nf", "echo 'credentials not found in native keychain'; exit 1\n");
    script("bad", "echo oops >&2; exit 4\n");
    const char* old = getenv("PATH");
    std::string saved = old ? old : "";
    setenv("PATH", (bin + ":" + saved).c_str(), 1);
    auto a = run_credential_helper("echo", "a.io:5000");
    auto nf = run_credential_helper("nf", "a.io");
    auto bad = run_credential_helper("bad", "a.io");
    auto missing = run_credential_helper("no-such-helper-here", "a.io");
    setenv("PATH", saved.c_str(), 1);
    ASSERT_TRUE(a.ok()) << a.error().what;
    ASSERT_TRUE(a->has_value());
    auto c = parse_helper_answer(**a, "echo");
    ASSERT_TRUE(c.ok()) << **a;
    EXPECT_EQ(c->user, "get");
    EXPECT_EQ(c->password, "a.io:5000");
    ASSERT_TRUE(nf.ok());
    EXPECT_FALSE(nf->has_value());
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().what, "docker-credential-bad get (a.io): exit status 4: oops");
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().err, ENOENT);
}

TEST(ImageAuth, FilesFromEnvironment) {
    // The variables auth_files() reads, put back as they were.
    const char* names[] = {"REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "DOCKER_CONFIG", "HOME"};
    std::vector<std::pair<std::string, std::optional<std::string>>> saved;
    for (const char* n : names)
        saved.emplace_back(n, getenv(n) ? std::optional<std::string>(getenv(n)) : std::nullopt);
    setenv("XDG_RUNTIME_DIR", "/run/user/7", 1);
    setenv("HOME", "/home/u", 1);
    unsetenv("DOCKER_CONFIG");
    unsetenv("REGISTRY_AUTH_FILE");
    EXPECT_EQ(auth_files(), (std::vector<std::string>{"/run/user/7/containers/auth.json",
                                                      "/home/u/.docker/config.json"}));
    setenv("REGISTRY_AUTH_FILE", "/etc/auth.json", 1);
    setenv("DOCKER_CONFIG", "/etc/docker", 1);
    EXPECT_EQ(auth_files(),
              (std::vector<std::string>{"/etc/auth.json", "/run/user/7/containers/auth.json",
                                        "/etc/docker/config.json"}));
    unsetenv("XDG_RUNTIME_DIR");
    EXPECT_EQ(auth_files(),
              (std::vector<std::string>{"/etc/auth.json", "/etc/docker/config.json"}));
    for (const auto& [n, v] : saved) {
        if (v)
            setenv(n.c_str(), v->c_str(), 1);
        else
            unsetenv(n.c_str());
    }
}

TEST(ImageAuth, Base64) {
    EXPECT_EQ(base64(""), "");
    EXPECT_EQ(base64("a"), "YQ==");
    EXPECT_EQ(base64("kago:pass"), "a2FnbzpwYXNz");
}

TEST(ImageIndex, PickManifest) {
    auto idx = parse_index(
        R"({"schemaVersion":2,"manifests":[
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:)" +
            std::string(64, '1') +
            R"(","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:)" +
            std::string(64, '3') +
            R"(","size":1,"platform":{"os":"unknown","architecture":"unknown"}},
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:)" +
            std::string(64, '2') +
            R"(","size":1,"platform":{"os":"linux","architecture":"amd64"}}]})",
        "index");
    ASSERT_TRUE(idx.ok()) << idx.error().message();
    auto amd = pick_manifest(*idx, *parse_platform("linux/amd64"), false, "idx");
    ASSERT_TRUE(amd.ok());
    EXPECT_EQ(amd->digest, "sha256:" + std::string(64, '2'));
    EXPECT_EQ(pick_manifest(*idx, *parse_platform("linux/arm64"), true, "idx")->digest,
              "sha256:" + std::string(64, '1'));
    auto none = pick_manifest(*idx, *parse_platform("linux/s390x"), false, "idx");
    ASSERT_FALSE(none.ok());
    EXPECT_EQ(none.error().what,
              "idx: no image for linux/s390x (the index has linux/arm64/v8 linux/amd64)");
    EXPECT_NE(none.error().hint, "");
    EXPECT_EQ(pick_manifest(*idx, *parse_platform("linux/s390x"), true, "idx").error().hint, "");
}

TEST(ImageRegistry, ManifestAccept) {
    std::string a = manifest_accept();
    for (const char* t :
         {media::kIndex, media::kManifest, media::kDockerList, media::kDockerManifest})
        EXPECT_NE(a.find(t), std::string::npos) << t;
}
