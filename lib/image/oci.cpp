#include "image/oci.hpp"

#include <sys/utsname.h>

#include <nlohmann/json.hpp>

#include "image/digest.hpp"

namespace kago::image {

using nlohmann::json;

bool is_index_type(const std::string& t) { return t == media::kIndex || t == media::kDockerList; }
bool is_manifest_type(const std::string& t) { return t == media::kManifest || t == media::kDockerManifest; }
bool is_layer_type(const std::string& t) {
    return t == media::kLayer || t == media::kLayerGzip || t == media::kLayerZstd || t == media::kDockerLayer ||
           t == "application/vnd.docker.image.rootfs.diff.tar";
}

Result<Descriptor> pick_manifest(const Index& idx, const Platform& want, bool asked,
                                 const std::string& what) {
    std::string have;
    const Descriptor* pick = nullptr;
    for (const auto& m : idx.manifests) {
        if (m.platform && m.platform->os == "unknown") continue;  // attestations
        if (m.platform) have += " " + m.platform->str();
        if (!pick && (!m.platform || fits(*m.platform, want))) pick = &m;
    }
    if (!pick)
        return Error{0,
                     cat(what, ": no image for ", want.str(), " (the index has",
                         have.empty() ? " none" : have, ")"),
                     asked ? "" : "--platform OS/ARCH picks another"};
    return *pick;
}

std::string Platform::str() const { return cat(os, "/", architecture, variant.empty() ? "" : "/", variant); }

Platform host_platform() {
    struct utsname u {};
    ::uname(&u);
    std::string m = u.machine;
    Platform p;
    if (m == "x86_64") p.architecture = "amd64";
    else if (m == "aarch64") p.architecture = "arm64";
    else if (m == "i686" || m == "i386") p.architecture = "386";
    else if (m.starts_with("armv7")) p.architecture = "arm", p.variant = "v7";
    else if (m.starts_with("armv6")) p.architecture = "arm", p.variant = "v6";
    else p.architecture = m;  // ppc64le, s390x, riscv64 are their own names
    return p;
}

Result<Platform> parse_platform(const std::string& s) {
    Platform p;
    auto a = s.find('/');
    if (a == std::string::npos || a == 0 || a + 1 == s.size())
        return usage_error(cat("--platform ", s, ": expected OS/ARCH[/VARIANT], e.g. linux/amd64"));
    p.os = s.substr(0, a);
    auto b = s.find('/', a + 1);
    p.architecture = s.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1);
    if (b != std::string::npos) p.variant = s.substr(b + 1);
    if (p.architecture.empty()) return usage_error(cat("--platform ", s, ": expected OS/ARCH[/VARIANT]"));
    return p;
}

bool fits(const Platform& have, const Platform& want) {
    return have.os == want.os && have.architecture == want.architecture &&
           (want.variant.empty() || have.variant.empty() || have.variant == want.variant);
}

namespace {

Result<json> parse_json(const std::string& text, const std::string& what) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return usage_error(cat(what, ": not a JSON object"));
    return j;
}

std::string str_of(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::vector<std::string> strings_of(const json& j, const char* key) {
    std::vector<std::string> out;
    auto it = j.find(key);
    if (it == j.end() || !it->is_array()) return out;
    for (const auto& v : *it)
        if (v.is_string()) out.push_back(v.get<std::string>());
    return out;
}

Result<Descriptor> descriptor(const json& j, const std::string& what) {
    if (!j.is_object()) return usage_error(cat(what, ": a descriptor is not an object"));
    Descriptor d;
    d.media_type = str_of(j, "mediaType");
    d.digest = str_of(j, "digest");
    TRY(check_digest(d.digest, what));
    auto size = j.find("size");
    if (size == j.end() || !size->is_number_integer() || size->get<int64_t>() < 0)
        return usage_error(cat(what, ": descriptor ", d.digest, " has no valid size"));
    d.size = size->get<int64_t>();
    if (auto p = j.find("platform"); p != j.end() && p->is_object()) {
        Platform pl;
        pl.os = str_of(*p, "os");
        pl.architecture = str_of(*p, "architecture");
        pl.variant = str_of(*p, "variant");
        d.platform = pl;
    }
    if (auto a = j.find("annotations"); a != j.end() && a->is_object())
        for (auto it = a->begin(); it != a->end(); ++it)
            if (it.value().is_string()) d.annotations[it.key()] = it.value().get<std::string>();
    return d;
}

json descriptor_json(const Descriptor& d) {
    json j = {{"mediaType", d.media_type}, {"digest", d.digest}, {"size", d.size}};
    if (d.platform) {
        j["platform"] = {{"os", d.platform->os}, {"architecture", d.platform->architecture}};
        if (!d.platform->variant.empty()) j["platform"]["variant"] = d.platform->variant;
    }
    if (!d.annotations.empty()) j["annotations"] = d.annotations;
    return j;
}

}  // namespace

Result<Index> parse_index(const std::string& text, const std::string& what) {
    json j = TRY(parse_json(text, what));
    auto m = j.find("manifests");
    if (m == j.end() || !m->is_array()) return usage_error(cat(what, ": no manifests list"));
    Index idx;
    for (const auto& d : *m) idx.manifests.push_back(TRY(descriptor(d, what)));
    return idx;
}

Result<Manifest> parse_manifest(const std::string& text, const std::string& what) {
    json j = TRY(parse_json(text, what));
    Manifest m;
    m.media_type = str_of(j, "mediaType");
    if (m.media_type.empty()) m.media_type = media::kManifest;  // optional in OCI
    if (!is_manifest_type(m.media_type))
        return usage_error(cat(what, ": unknown media type ", m.media_type, " (expected an image manifest)"));
    auto c = j.find("config");
    if (c == j.end()) return usage_error(cat(what, ": no config"));
    m.config = TRY(descriptor(*c, what));
    if (m.config.media_type != media::kConfig && m.config.media_type != media::kDockerConfig)
        return usage_error(cat(what, ": unknown config media type ", m.config.media_type));
    auto l = j.find("layers");
    if (l == j.end() || !l->is_array()) return usage_error(cat(what, ": no layers list"));
    for (const auto& d : *l) {
        Descriptor ld = TRY(descriptor(d, what));
        if (!is_layer_type(ld.media_type))
            return usage_error(cat(what, ": layer ", ld.digest, ": unknown media type ", ld.media_type));
        m.layers.push_back(std::move(ld));
    }
    return m;
}

Result<Config> parse_config(const std::string& text, const std::string& what) {
    json j = TRY(parse_json(text, what));
    Config c;
    c.json = text;
    c.platform.os = str_of(j, "os");
    c.platform.architecture = str_of(j, "architecture");
    c.platform.variant = str_of(j, "variant");
    c.created = str_of(j, "created");
    auto r = j.find("rootfs");
    if (r == j.end() || !r->is_object() || str_of(*r, "type") != "layers")
        return usage_error(cat(what, ": no rootfs of type \"layers\""));
    c.diff_ids = strings_of(*r, "diff_ids");
    for (const auto& d : c.diff_ids) TRY(check_digest(d, cat(what, ": diff_id")));
    if (auto cfg = j.find("config"); cfg != j.end() && cfg->is_object()) {
        c.env = strings_of(*cfg, "Env");
        c.entrypoint = strings_of(*cfg, "Entrypoint");
        c.cmd = strings_of(*cfg, "Cmd");
        c.user = str_of(*cfg, "User");
        c.working_dir = str_of(*cfg, "WorkingDir");
    }
    return c;
}

std::string index_json(const Index& idx) {
    json m = json::array();
    for (const auto& d : idx.manifests) m.push_back(descriptor_json(d));
    return json{{"schemaVersion", 2}, {"mediaType", media::kIndex}, {"manifests", m}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string manifest_json(const Manifest& m) {
    json layers = json::array();
    for (const auto& l : m.layers) layers.push_back(descriptor_json(l));
    return json{{"schemaVersion", 2}, {"mediaType", m.media_type}, {"config", descriptor_json(m.config)}, {"layers", layers}}
        .dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string config_json(const std::string& base, const std::vector<std::string>& diff_ids, const Platform& p,
                        const std::string& created, const std::string& created_by) {
    json j = base.empty() ? json::object() : json::parse(base, nullptr, false);
    if (!j.is_object()) j = json::object();
    j["os"] = p.os;
    j["architecture"] = p.architecture;
    if (!p.variant.empty()) j["variant"] = p.variant;
    j["created"] = created;
    j["rootfs"] = {{"type", "layers"}, {"diff_ids", diff_ids}};
    if (!j.contains("config") || !j["config"].is_object()) j["config"] = json::object();
    if (!j.contains("history") || !j["history"].is_array()) j["history"] = json::array();
    j["history"].push_back({{"created", created}, {"created_by", created_by}});
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string pretty(const std::string& text) {
    json j = json::parse(text, nullptr, false);
    return j.is_discarded() ? text : j.dump(2, ' ', false, json::error_handler_t::replace);
}

std::string string_array(const std::vector<std::string>& v) { return json(v).dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace kago::image
