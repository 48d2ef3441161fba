#include "image/registry.hpp"

#include <curl/curl.h>
#include <dlfcn.h>
#include <strings.h>
#include <time.h>

#include <mutex>
#include <nlohmann/json.hpp>

#include "core/handoff.hpp"
#include "core/trace.hpp"
#include "image/digest.hpp"

namespace kago::image {

using nlohmann::json;

namespace {

// The part of libcurl's API this client calls, loaded once.
struct Curl {
    CURLcode (*global_init)(long);
    CURL* (*easy_init)();
    CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
    CURLcode (*easy_perform)(CURL*);
    CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
    void (*easy_reset)(CURL*);
    void (*easy_cleanup)(CURL*);
    const char* (*easy_strerror)(CURLcode);
    curl_slist* (*slist_append)(curl_slist*, const char*);
    void (*slist_free_all)(curl_slist*);
    char* (*easy_escape)(CURL*, const char*, int);
    void (*free)(void*);
};

Result<const Curl*> load_curl() {
    static Curl api;
    static std::string failed;
    static std::once_flag once;
    std::call_once(once, [] {
        void* h = handoff::open_library("libcurl.so.4");
        if (!h) {
            const char* e = ::dlerror();
            failed = e ? e : "dlopen failed";
            return;
        }
        auto sym = [&](auto& f, const char* name) {
            f = reinterpret_cast<std::remove_reference_t<decltype(f)>>(::dlsym(h, name));
            if (!f && failed.empty()) failed = cat("libcurl.so.4 has no ", name);
        };
        sym(api.global_init, "curl_global_init");
        sym(api.easy_init, "curl_easy_init");
        sym(api.easy_setopt, "curl_easy_setopt");
        sym(api.easy_perform, "curl_easy_perform");
        sym(api.easy_getinfo, "curl_easy_getinfo");
        sym(api.easy_reset, "curl_easy_reset");
        sym(api.easy_cleanup, "curl_easy_cleanup");
        sym(api.easy_strerror, "curl_easy_strerror");
        sym(api.slist_append, "curl_slist_append");
        sym(api.slist_free_all, "curl_slist_free_all");
        sym(api.easy_escape, "curl_easy_escape");
        sym(api.free, "curl_free");
        if (failed.empty() && api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            failed = "curl_global_init failed";
    });
    if (!failed.empty())
        return Error{0, cat("load libcurl: ", failed),
                     "pulling needs libcurl (Debian: apt-get install libcurl4)"};
    return &api;
}

bool header_is(const std::string& line, const char* name, std::string* value) {
    size_t n = strlen(name);
    if (line.size() <= n || line[n] != ':' || strncasecmp(line.c_str(), name, n) != 0) return false;
    size_t b = n + 1, e = line.size();
    while (b < e && (line[b] == ' ' || line[b] == '\t')) ++b;
    while (e > b && (line[e - 1] == '\r' || line[e - 1] == '\n' || line[e - 1] == ' ')) --e;
    *value = line.substr(b, e - b);
    return true;
}

// The registry's own words for an error ({"errors":[{"code","message"}]}).
std::string registry_errors(const std::string& body) {
    json j = json::parse(body, nullptr, false);
    std::string out;
    if (j.is_object() && j.contains("errors") && j["errors"].is_array())
        for (const auto& e : j["errors"]) {
            if (!e.is_object()) continue;
            std::string code = e.value("code", ""), msg = e.value("message", "");
            out += cat(out.empty() ? "" : "; ", code, code.empty() || msg.empty() ? "" : ": ", msg);
        }
    return out;
}

}  // namespace

std::string manifest_accept() {
    return cat("Accept: ", media::kIndex, ", ", media::kManifest, ", ", media::kDockerList, ", ",
               media::kDockerManifest);
}

struct Registry::Response {
    long status = 0;
    std::string body, content_type, docker_digest, location;
    std::vector<std::string> challenges;
    int64_t range_first = -1;  // Content-Range's first byte
};

struct Registry::Impl {
    const Curl* api = nullptr;
    CURL* h = nullptr;
};

namespace {

struct Transfer {
    const Curl* api;
    CURL* h;
    void* response;  // Registry::Response
    const Registry::Sink* sink;
    size_t limit;
    int64_t max_stream, streamed = 0;
    // A ranged request's first byte: a 206 answer must start there, a 200
    // answer (the range ignored) has that many bytes skipped.
    int64_t range_from = 0, skip = 0;
    Error error;
    bool failed = false;
    const std::atomic<bool>* stop = nullptr;
};

Status stopped() {
    return usage_error("stopped: another layer failed");
}

// "bytes FIRST-LAST/TOTAL": FIRST, or -1.
int64_t content_range_first(const std::string& v) {
    if (!v.starts_with("bytes ")) return -1;
    int64_t n = 0;
    size_t i = 6;
    if (i >= v.size() || v[i] < '0' || v[i] > '9') return -1;
    for (; i < v.size() && v[i] >= '0' && v[i] <= '9'; ++i) n = n * 10 + (v[i] - '0');
    return i < v.size() && v[i] == '-' ? n : -1;
}

}  // namespace

Registry::Registry(const Reference& ref, const Options& o) : ref_(ref), o_(o), impl_(new Impl) {}

Registry::~Registry() {
    if (impl_ && impl_->h) impl_->api->easy_cleanup(impl_->h);
}

Result<std::unique_ptr<Registry>> Registry::connect(const Reference& ref, const Options& o) {
    const Curl* api = TRY(load_curl());
    std::unique_ptr<Registry> r(new Registry(ref, o));
    r->impl_->api = api;
    r->impl_->h = api->easy_init();
    if (!r->impl_->h) return Error{ENOMEM, "curl_easy_init", ""};
    r->plain_ok_ = o.insecure || is_loopback(ref);
    r->base_ = cat("https://", ref.api_host());
    return r;
}

Result<std::unique_ptr<Registry>> Registry::clone() const {
    std::unique_ptr<Registry> r(new Registry(ref_, o_));
    r->impl_->api = impl_->api;
    r->impl_->h = impl_->api->easy_init();
    if (!r->impl_->h) return Error{ENOMEM, "curl_easy_init", ""};
    r->plain_ok_ = plain_ok_;
    r->base_ = base_;
    r->auth_ = auth_;
    r->decided_ = decided_;
    r->authed_ = authed_;
    return r;
}

std::string Registry::what() const {
    return cat(ref_.registry, "/", ref_.repository);
}

std::string Registry::url(const std::string& path) const {
    return cat(base_, "/v2/", ref_.repository, path);
}

Result<Registry::Response> Registry::perform(const std::string& url,
                                             const std::vector<std::string>& headers,
                                             const Sink* sink, size_t limit, int64_t max_stream,
                                             const std::string* form) {
    const Curl& c = *impl_->api;
    CURL* h = impl_->h;
    c.easy_reset(h);
    Response resp;
    Transfer t{&c,          h,           &resp,       sink,    limit, max_stream,
               range_from_, range_from_, range_from_, Error{}, false, stop_};
    transport_failed_ = false;
    curl_slist* list = nullptr;
    for (const auto& hd : headers) list = c.slist_append(list, hd.c_str());
    if (!auth_.empty()) list = c.slist_append(list, auth_.c_str());
    std::unique_ptr<curl_slist, void (*)(curl_slist*)> owned(list, c.slist_free_all);
    const char* protocols = plain_ok_ ? "http,https" : "https";
    const char* method = form ? "POST" : "GET";
    c.easy_setopt(h, CURLOPT_URL, url.c_str());
    if (form) {
        c.easy_setopt(h, CURLOPT_POSTFIELDS, form->c_str());
        c.easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(form->size()));
    } else {
        c.easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    c.easy_setopt(h, CURLOPT_PROTOCOLS_STR, protocols);
    c.easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
    c.easy_setopt(h, CURLOPT_FOLLOWLOCATION, form ? 0L : 1L);
    c.easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    c.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    c.easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    // A transfer that stalls (less than a byte a second for a minute) fails.
    c.easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    c.easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    c.easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);
    c.easy_setopt(h, CURLOPT_USERAGENT, "kago-image-layers");
    if (o_.insecure) {
        c.easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        c.easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (list) c.easy_setopt(h, CURLOPT_HTTPHEADER, list);
    using Cb = size_t (*)(char*, size_t, size_t, void*);
    Cb on_header = [](char* p, size_t, size_t n, void* u) -> size_t {
        auto* t = static_cast<Transfer*>(u);
        auto* r = static_cast<Response*>(t->response);
        std::string line(p, n), v;
        if (line.starts_with("HTTP/")) {  // a new answer (after a redirect): its own headers
            *r = Response{};
        } else if (header_is(line, "content-type", &v)) {
            r->content_type = v.substr(0, v.find(';'));
        } else if (header_is(line, "docker-content-digest", &v)) {
            r->docker_digest = v;
        } else if (header_is(line, "www-authenticate", &v)) {
            r->challenges.push_back(v);
        } else if (header_is(line, "content-range", &v)) {
            r->range_first = content_range_first(v);
        }
        return n;
    };
    Cb on_data = [](char* p, size_t, size_t n, void* u) -> size_t {
        auto* t = static_cast<Transfer*>(u);
        auto* r = static_cast<Response*>(t->response);
        long status = 0;
        t->api->easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &status);
        if (t->stop && t->stop->load()) {
            t->error = stopped().error();
            t->failed = true;
            return 0;
        }
        if (t->sink && status / 100 == 2) {
            if (t->range_from > 0 && status == 206 && r->range_first != t->range_from) {
                t->error = usage_error(cat("asked for the bytes from ", t->range_from,
                                           ", the answer starts at ", r->range_first));
                t->failed = true;
                return 0;
            }
            size_t skipped = 0;
            if (status == 200 && t->skip > 0) {  // the range ignored: skip what we have
                skipped = static_cast<size_t>(std::min<int64_t>(t->skip, static_cast<int64_t>(n)));
                t->skip -= static_cast<int64_t>(skipped);
                p += skipped;
                n -= skipped;
                if (n == 0) return skipped;
            }
            t->streamed += static_cast<int64_t>(n);
            if (t->max_stream >= 0 && t->streamed > t->max_stream) {
                t->error = usage_error(cat("more bytes than the descriptor's ", t->max_stream));
                t->failed = true;
                return 0;
            }
            auto st = (*t->sink)(p, n);
            if (!st) {
                t->error = std::move(st).error();
                t->failed = true;
                return 0;
            }
            return skipped + n;
        }
        size_t limit = status / 100 == 2 ? t->limit : 65536;
        if (r->body.size() + n > limit) {
            if (status / 100 != 2) return n;  // an error page: its start is enough
            t->error = usage_error(cat("the answer is larger than ", limit, " bytes"));
            t->failed = true;
            return 0;
        }
        r->body.append(p, n);
        return n;
    };
    c.easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    c.easy_setopt(h, CURLOPT_HEADERDATA, &t);
    c.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    c.easy_setopt(h, CURLOPT_WRITEDATA, &t);
    if (stop_) {  // a stalled transfer sees `stop` too (curl calls this about once a second)
        using Progress = int (*)(void*, curl_off_t, curl_off_t, curl_off_t, curl_off_t);
        Progress on_progress = [](void* u, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
            auto* t = static_cast<Transfer*>(u);
            if (!t->stop->load()) return 0;
            if (!t->failed) {
                t->error = stopped().error();
                t->failed = true;
            }
            return 1;
        };
        c.easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        c.easy_setopt(h, CURLOPT_XFERINFODATA, &t);
        c.easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    if (trace::verbose()) trace::emit(cat(method, " ", url));
    CURLcode rc = c.easy_perform(h);
    if (t.failed) {
        t.error.what = cat(method, " ", url, ": ", t.error.what);
        return std::move(t.error);
    }
    if (rc != CURLE_OK) {
        transport_failed_ = true;
        return Error{0, cat(method, " ", url, ": ", c.easy_strerror(rc)), ""};
    }
    c.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
    char* eff = nullptr;
    if (c.easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff) resp.location = eff;
    return resp;
}

Result<Registry::Response> Registry::get(const std::string& path,
                                         const std::vector<std::string>& headers, const Sink* sink,
                                         size_t limit, int64_t max_stream) {
    for (int attempt = 0;; ++attempt) {
        std::string u = path.starts_with("/") ? url(path) : path;
        auto r = perform(u, headers, sink, limit, max_stream);
        if (!r && !decided_ && plain_ok_ && base_.starts_with("https://")) {
            // Not TLS: a loopback or --insecure registry may speak plain http.
            base_ = cat("http://", ref_.api_host());
            decided_ = true;
            continue;
        }
        decided_ = true;
        if (!r) return std::move(r).error();
        if (r->status == 401 && !authed_ && attempt < 2) {
            TRY(authenticate(r->challenges, u));
            continue;
        }
        if (r->status / 100 != 2) {
            std::string why = registry_errors(r->body);
            Error e{0, cat("GET ", u, ": HTTP ", r->status, why.empty() ? "" : cat(" (", why, ")")),
                    ""};
            if (r->status == 401 || r->status == 403)
                e.hint = cat("no access to ", what(), " with ",
                             auth_.empty() ? "no credentials" : "these credentials");
            return e;
        }
        return r;
    }
}

Status Registry::authenticate(const std::vector<std::string>& challenges, const std::string& u) {
    authed_ = true;
    std::optional<Challenge> bearer, basic;
    for (const auto& v : challenges) {
        auto cs = TRY(parse_challenges(v));
        for (auto& ch : cs) {
            if (ch.scheme == "bearer" && !bearer) bearer = ch;
            if (ch.scheme == "basic" && !basic) basic = ch;
        }
    }
    if (!bearer && !basic)
        return usage_error(cat("GET ", u, ": HTTP 401 with no Bearer or Basic challenge",
                               challenges.empty() ? "" : cat(" (", challenges[0], ")")));
    std::string from;
    auto creds = TRY(find_credentials(ref_, o_.auth_files, &from));
    // An identity token is a refresh token for the token server alone.
    const std::string* identity =
        creds && !creds->identity_token.empty() ? &creds->identity_token : nullptr;
    std::string basic_header =
        creds && !identity
            ? cat("Authorization: Basic ", base64(cat(creds->user, ":", creds->password)))
            : "";
    if (!bearer) {
        if (identity)
            return usage_error(cat(what(), ": the registry asks for a user and password, and ",
                                   from, " holds an identity token for ", ref_.registry,
                                   ", which only a token server takes"));
        if (!creds) {
            std::string files;
            for (const auto& f : o_.auth_files) files += (files.empty() ? "" : ", ") + f;
            return Error{
                0,
                cat(what(), ": the registry asks for a user and password, and none is given for ",
                    ref_.registry, " in ", files.empty() ? "(no credential file)" : files),
                cat("podman login ", ref_.registry, " or skopeo login ", ref_.registry,
                    " writes them")};
        }
        if (trace::verbose()) trace::emit(cat("basic auth as ", creds->user, " (from ", from, ")"));
        auth_ = basic_header;
        return {};
    }
    std::string realm = bearer->params["realm"];
    if (!(realm.starts_with("https://") || (plain_ok_ && realm.starts_with("http://"))))
        return usage_error(cat(what(), ": the token realm '", realm, "' is not an https URL"));
    std::string scope = bearer->params.count("scope")
                            ? bearer->params["scope"]
                            : cat("repository:", ref_.repository, ":pull");
    const Curl& c = *impl_->api;
    auto esc = [&](const std::string& s) {
        char* e = c.easy_escape(impl_->h, s.c_str(), static_cast<int>(s.size()));
        std::string out = e ? e : "";
        c.free(e);
        return out;
    };
    std::string service =
        bearer->params.count("service") ? cat("&service=", esc(bearer->params["service"])) : "";
    std::string saved = std::move(auth_);
    auth_.clear();
    Result<Response> r = Error{};
    if (identity) {
        // OAuth2's refresh-token grant (the distribution token spec's
        // "OAuth2 token" form, as docker and containers/image send it).
        if (trace::verbose()) trace::emit(cat("identity token (from ", from, ")"));
        std::string form =
            cat("grant_type=refresh_token&client_id=kago&refresh_token=", esc(*identity),
                "&scope=", esc(scope), service);
        r = perform(realm, {}, nullptr, 1 << 20, -1, &form);
    } else {
        std::string token_url = cat(realm, realm.find('?') == std::string::npos ? "?" : "&",
                                    "scope=", esc(scope), service);
        std::vector<std::string> hd;
        if (creds) hd.push_back(basic_header);
        r = perform(token_url, hd, nullptr, 1 << 20, -1);
    }
    if (!r) return std::move(r).error();
    if (r->status / 100 != 2)
        return Error{0,
                     cat("token for ", what(), ": ", identity ? "POST " : "GET ", realm, ": HTTP ",
                         r->status),
                     identity ? cat("the token server refused the identity token from ", from)
                     : creds  ? ""
                              : "no credentials given"};
    json j = json::parse(r->body, nullptr, false);
    std::string token;
    if (j.is_object()) {
        if (j.contains("token") && j["token"].is_string())
            token = j["token"];
        else if (j.contains("access_token") && j["access_token"].is_string())
            token = j["access_token"];
    }
    if (token.empty())
        return usage_error(cat("token for ", what(), ": the answer of ", realm, " holds no token"));
    auth_ = cat("Authorization: Bearer ", token);
    return {};
}

Result<Fetched> Registry::manifest(const std::string& ref) {
    Response r = TRY(get(cat("/manifests/", ref), {manifest_accept()}, nullptr, 4u << 20, -1));
    Fetched f;
    f.body = std::move(r.body);
    f.digest = sha256(f.body);
    std::string what_ = cat(what(), ": manifest ", ref);
    if (ref.starts_with("sha256:") && f.digest != ref)
        return usage_error(cat(what_, ": digest mismatch: the content hashes to ", f.digest));
    if (!r.docker_digest.empty() && r.docker_digest.starts_with("sha256:") &&
        r.docker_digest != f.digest)
        return usage_error(cat(what_, ": digest mismatch: the registry says ", r.docker_digest,
                               ", the content hashes to ", f.digest));
    json j = json::parse(f.body, nullptr, false);
    if (j.is_object() && j.contains("mediaType") && j["mediaType"].is_string())
        f.media_type = j["mediaType"];
    if (f.media_type.empty()) f.media_type = r.content_type;
    if (j.is_object() && j.value("schemaVersion", 0) == 1)
        return usage_error(cat(what_, ": a Docker schema 1 manifest, which is not supported"));
    return f;
}

Result<std::string> Registry::blob(const Descriptor& d) {
    constexpr size_t kMax = 64u << 20;
    std::string body;
    Sink keep = [&](const char* p, size_t n) -> Status {
        if (body.size() + n > kMax) return usage_error(cat("larger than ", kMax, " bytes"));
        body.append(p, n);
        return {};
    };
    TRY(blob_stream(d, keep));
    std::string got = sha256(body);
    if (got != d.digest)
        return usage_error(
            cat(what(), ": blob ", d.digest, ": digest mismatch: the content hashes to ", got));
    if (d.size >= 0 && static_cast<int64_t>(body.size()) != d.size)
        return usage_error(cat(what(), ": blob ", d.digest, ": ", body.size(),
                               " bytes, the descriptor says ", d.size));
    return body;
}

Status Registry::blob_stream(const Descriptor& d, const Sink& sink, const std::atomic<bool>* stop) {
    TRY(check_digest(d.digest, "blob"));
    stop_ = stop;
    struct Unset {
        Registry* r;
        ~Unset() { r->stop_ = nullptr; }
    } unset{this};
    int64_t got = 0;
    Sink counted = [&](const char* p, size_t n) -> Status {
        TRY(sink(p, n));
        got += static_cast<int64_t>(n);
        return {};
    };
    for (int attempt = 1;; ++attempt) {
        // A broken transfer resumes from the bytes already passed on: the
        // sink (its hash, its unpacker) goes on where it stopped.
        std::vector<std::string> hd;
        if (got > 0) hd.push_back(cat("Range: bytes=", got, "-"));
        range_from_ = got;
        int64_t before = got;
        auto r = get(cat("/blobs/", d.digest), hd, &counted, 1 << 16, d.size);
        range_from_ = 0;
        if (r) {
            if (d.size >= 0 && got < d.size)
                return usage_error(cat(what(), ": blob ", d.digest, ": the answer ended after ",
                                       got, " of ", d.size, " bytes"));
            return {};
        }
        Error e = std::move(r).error();
        if (stop && stop->load()) return stopped();
        if (!transport_failed_ || attempt > kResumes) {
            if (transport_failed_)
                e = Error{0,
                          cat(what(), ": blob ", d.digest, ": the transfer broke after ", got,
                              d.size >= 0 ? cat(" of ", d.size) : std::string(), " bytes, ",
                              attempt, " attempts; the last: ", e.what),
                          "a later pull fetches it again"};
            return e;
        }
        if (trace::verbose())
            trace::emit(cat("blob ", d.digest, ": ", e.what, "; resuming at byte ", got));
        if (got == before) {  // no progress: wait a little longer each time
            struct timespec ts {
                0, 250'000'000L * attempt
            };
            ::nanosleep(&ts, nullptr);
        }
    }
}

}  // namespace kago::image
