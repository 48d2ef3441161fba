#include "image/import.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <system_error>
#include <thread>

#include "core/env.hpp"
#include "core/fd.hpp"
#include "core/parse.hpp"
#include "core/sys.hpp"
#include "image/digest.hpp"
#include "image/ingest.hpp"

namespace kago::image {

using nlohmann::json;

unsigned import_jobs(unsigned asked) {
    if (asked == 0) {
        cpu_set_t set;
        asked = ::sched_getaffinity(0, sizeof set, &set) == 0
                    ? static_cast<unsigned>(CPU_COUNT(&set))
                    : 1;
    }
    return std::clamp(asked, 1u, kMaxJobs);
}

std::string now_rfc3339() {
    time_t t = ::time(nullptr);
    struct tm tm {};
    ::gmtime_r(&t, &tm);
    char buf[32];
    ::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

namespace {

// Inside a source directory: beneath it, symlinks allowed (docker save
// links repeated layers), never out of it.
int open_in(int dirfd, const std::string& path, int flags) {
    return sys::open_beneath(dirfd, path.c_str(), flags, 0, true);
}

Result<std::string> read_text(int dirfd, const std::string& path, const std::string& src) {
    int fd = open_in(dirfd, path, O_RDONLY);
    if (fd < 0) return sys_error(cat(src, ": ", path));
    UniqueFd f(fd);
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(f.get(), buf, sizeof buf);
        if (n < 0) return sys_error(cat(src, ": read ", path));
        if (n == 0) return out;
        out.append(buf, static_cast<size_t>(n));
        if (out.size() > (64u << 20)) return usage_error(cat(src, ": ", path, ": larger than 64 MiB"));
    }
}

// A blob of an OCI layout, checked against its descriptor.
Result<std::string> read_blob_text(int dirfd, const Descriptor& d, const std::string& src) {
    std::string p = cat("blobs/sha256/", hex_of(d.digest));
    int fd = open_in(dirfd, p, O_RDONLY);
    if (fd < 0) {
        if (errno == ENOENT) return Error{ENOENT, cat(src, ": blob ", d.digest, " is missing"), ""};
        return sys_error(cat(src, ": blob ", d.digest));
    }
    ::close(fd);
    std::string text = TRY(read_text(dirfd, p, src));
    std::string got = sha256(text);
    if (got != d.digest)
        return usage_error(cat(src, ": blob ", d.digest, ": digest mismatch: the content hashes to ", got));
    if (d.size >= 0 && static_cast<int64_t>(text.size()) != d.size)
        return usage_error(cat(src, ": blob ", d.digest, ": ", text.size(), " bytes, the descriptor says ", d.size));
    return text;
}

std::string ref_of(const Descriptor& d) {
    auto it = d.annotations.find(kRefName);
    return it == d.annotations.end() ? std::string() : it->second;
}

Status check_platform(const Config& c, const Platform& want, bool asked, const std::string& src) {
    if (c.platform.architecture.empty() || fits(c.platform, want)) return {};
    Error e = usage_error(cat(src, ": the image is for ", c.platform.str(), ", not ", want.str()));
    e.hint = asked ? "" : cat("this host runs ", want.str(), "; --platform ", c.platform.str(), " imports it anyway");
    return e;
}

// Publish NAME -> manifest in index.json, replacing what NAME named.
Status publish(Store& s, const std::string& name, const Descriptor& manifest) {
    Index idx = TRY(s.index());
    std::vector<Descriptor> kept;
    for (auto& d : idx.manifests)
        if (ref_of(d) != name) kept.push_back(d);
    Descriptor d = manifest;
    d.platform.reset();
    d.annotations = {{kRefName, name}};
    kept.push_back(d);
    idx.manifests = std::move(kept);
    TRY(s.write_index(idx));
    TRY(s.collect());
    return {};
}

// One layer of add_layers, as its worker left it.
struct LayerDone {
    Descriptor kept;
    std::optional<UnpackStats> st;
    Status status;
};

// Layers into the store: each blob checked and unpacked in one pass
// (ingest_layer), its diff_id checked. `ours`: the sources are files of an
// archive unpacked in the store's tmp/, linked rather than copied.
//
// Layers are independent until the image is published (each is made in
// tmp/ and renamed into place whole), so `jobs` workers take them in
// order, each one layer at a time: what a worker holds in memory is its
// buffers, whatever the layer's size. After a failure no later layer is
// started, and the error is that of the first layer that failed, as one
// worker would have reported it.
Status add_layers(Store& s, const std::vector<Descriptor>& layers, const Config& cfg,
                  const UnpackOptions& u, unsigned jobs, ImportResult& r,
                  const std::function<Result<UniqueFd>(const Descriptor&, size_t)>& open_src,
                  std::vector<Descriptor>* stored, bool ours) {
    if (cfg.diff_ids.size() != layers.size())
        return usage_error(cat("the manifest lists ", layers.size(), " layers, the config ", cfg.diff_ids.size(), " diff_ids"));
    auto chains = chain_ids(cfg.diff_ids);
    std::vector<LayerDone> done(layers.size());
    auto one = [&](size_t i) -> Status {
        const Descriptor& l = layers[i];
        LayerDone& d = done[i];
        d.kept = l;
        if (!l.digest.empty() && s.has_blob(l.digest)) {
            d.st = TRY(s.add_layer(l.digest, cfg.diff_ids[i], chains[i], u));
        } else {
            UniqueFd src = TRY(open_src(l, i));
            LayerWant want{l.digest, l.size, cfg.diff_ids[i], chains[i], ours};
            Ingested in = TRY(
                ingest_layer(s, src.get(), want, u,
                             cat("layer ", l.digest.empty() ? std::to_string(i + 1) : l.digest)));
            d.kept.digest = in.blob.digest;
            d.kept.size = in.blob.size;
            d.st = std::move(in.stats);
        }
        return {};
    };
    std::atomic<size_t> next{0}, failed{layers.size()};
    auto work = [&] {
        for (;;) {
            size_t i = next.fetch_add(1);
            if (i >= layers.size() || i > failed.load()) return;
            done[i].status = one(i);
            if (!done[i].status) {
                size_t f = failed.load();
                while (i < f && !failed.compare_exchange_weak(f, i)) {
                }
            }
        }
    };
    size_t n = std::min<size_t>(import_jobs(jobs), layers.size());
    std::vector<std::thread> workers;
    for (size_t k = 1; k < n; ++k) {
        try {
            workers.emplace_back(work);
        } catch (const std::system_error&) {
            break;  // no thread to be had (RLIMIT_NPROC): fewer workers
        }
    }
    work();
    for (auto& t : workers) t.join();
    if (failed.load() < layers.size()) return std::move(done[failed.load()].status);
    for (size_t i = 0; i < layers.size(); ++i) {
        ++r.layers;
        Descriptor& kept = done[i].kept;
        std::optional<UnpackStats>& st = done[i].st;
        if (st) {
            add_stats(r.totals, *st);
            if (kept.media_type.empty())
                kept.media_type = st->compression == "gzip" ? media::kLayerGzip
                                  : st->compression == "zstd" ? media::kLayerZstd : media::kLayer;
        } else {
            ++r.layers_shared;
            if (kept.media_type.empty()) kept.media_type = kept.digest == cfg.diff_ids[i] ? media::kLayer : media::kLayerGzip;
        }
        if (stored) stored->push_back(kept);
    }
    return {};
}

Result<ImportResult> from_oci(Store& s, int dirfd, const std::string& ref, const ImportOptions& o,
                              const std::string& src, bool ours) {
    std::string itext = TRY(read_text(dirfd, "index.json", src));
    Index idx = TRY(parse_index(itext, src + ": index.json"));
    const Descriptor* d = nullptr;
    if (!ref.empty()) {
        for (const auto& m : idx.manifests)
            if (ref_of(m) == ref) d = &m;
        if (!d) return usage_error(cat(src, ": no image named '", ref, "'"));
    } else if (idx.manifests.size() == 1) {
        d = &idx.manifests[0];
    } else {
        std::string names;
        for (const auto& m : idx.manifests) names += " " + (ref_of(m).empty() ? m.digest : ref_of(m));
        return usage_error(cat(src, ": ", idx.manifests.size(), " images; name one (oci:DIR:REF):", names));
    }
    Platform want = o.platform ? *o.platform : host_platform();
    Descriptor desc = *d;
    std::string name = o.name.empty() ? ref_of(desc) : o.name;
    for (int depth = 0; is_index_type(desc.media_type); ++depth) {
        if (depth > 2) return usage_error(cat(src, ": indexes nested too deep"));
        std::string t = TRY(read_blob_text(dirfd, desc, src));
        Index sub = TRY(parse_index(t, cat(src, ": index ", desc.digest)));
        desc = TRY(pick_manifest(sub, want, o.platform.has_value(), src));
    }
    if (!is_manifest_type(desc.media_type))
        return usage_error(cat(src, ": ", desc.digest, ": unknown media type ", desc.media_type));
    if (name.empty()) return usage_error(cat(src, ": the image has no name; give one: --import SRC NAME"));
    name = TRY(normalize_name(name, "NAME"));
    std::string mtext = TRY(read_blob_text(dirfd, desc, src));
    Manifest m = TRY(parse_manifest(mtext, cat(src, ": manifest ", desc.digest)));
    std::string ctext = TRY(read_blob_text(dirfd, m.config, src));
    Config cfg = TRY(parse_config(ctext, cat(src, ": config ", m.config.digest)));
    TRY(check_platform(cfg, want, o.platform.has_value(), src));
    for (const auto& l : m.layers) {  // every blob there before anything is stored
        int fd = open_in(dirfd, cat("blobs/sha256/", hex_of(l.digest)), O_RDONLY);
        if (fd < 0) return Error{errno, cat(src, ": layer blob ", l.digest, errno == ENOENT ? " is missing" : ""), ""};
        ::close(fd);
    }
    ImportResult r;
    auto open_src = [&](const Descriptor& l, size_t) -> Result<UniqueFd> {
        int fd = open_in(dirfd, cat("blobs/sha256/", hex_of(l.digest)), O_RDONLY);
        if (fd < 0) return sys_error(cat(src, ": layer blob ", l.digest));
        return UniqueFd(fd);
    };
    TRY(add_layers(s, m.layers, cfg, o.unpack, o.jobs, r, open_src, nullptr, ours));
    TRY(s.put_bytes(ctext));
    TRY(s.put_bytes(mtext));
    TRY(publish(s, name, desc));
    r.name = name;
    r.manifest_digest = desc.digest;
    r.config_digest = m.config.digest;
    return r;
}

// A docker-archive (docker save, podman save, skopeo's docker-archive:),
// read as it streams: each layer is stored and unpacked in one pass as it
// comes by (LayerWriter), the JSON files are kept in memory, and once
// manifest.json is known the layers it names are checked against the
// config's diff_ids and published; the rest is discarded. The archive is
// never unpacked to disk, so stdin works as well as a file.
class DockerStream {
  public:
    DockerStream(Store& s, const ImportOptions& o, std::string src)
        : s_(s), o_(o), src_(std::move(src)), jobs_(import_jobs(o.jobs)) {}
    ~DockerStream() {
        flying_.clear();  // each unpacker stopped, its temporary names removed
        for (auto& [path, p] : layers_)
            if (p) discard(s_, *p);
    }

    Status read(int fd);
    Result<ImportResult> import(const std::string& ref);

  private:
    static constexpr size_t kJsonMax = 64u << 20;  // all JSON files together
    Status entry(struct archive* a, struct archive_entry* e);
    // Wait for the oldest layer in flight and keep what it made.
    void land();
    // An archive path through the links the archive itself holds (docker
    // save links a repeated layer to its first copy); never the disk's.
    std::string follow(std::string path) const;
    Result<std::string> text(const std::string& path) const;
    // Whether the file holds these bytes at offset `at`.
    bool same_bytes(int64_t at, const char* p, size_t n) const;

    Store& s_;
    const ImportOptions& o_;
    std::string src_;
    std::map<std::string, std::string> json_, links_;
    std::map<std::string, std::optional<Pending>> layers_;  // nullopt: not a layer
    std::map<std::string, Error> not_layers_;
    std::map<std::string, Descriptor> shared_;  // published, by path
    size_t json_bytes_ = 0;
    size_t count_ = 0;
    // Layers whose bytes are all written and whose unpackers still run:
    // the archive is read on meanwhile, at most jobs_ of them at once.
    unsigned jobs_;
    std::deque<std::pair<std::string, std::unique_ptr<LayerWriter>>> flying_;
    int fd_ = -1;
    // A plain tar in a regular file: the offset in it where libarchive
    // started reading; -1 otherwise (a stream, a compressed archive).
    int64_t in_place_ = -1;
};

bool DockerStream::same_bytes(int64_t at, const char* p, size_t n) const {
    std::vector<char> got(n);
    size_t have = 0;
    while (have < n) {
        ssize_t r = ::pread(fd_, got.data() + have, n - have, at + static_cast<int64_t>(have));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        have += static_cast<size_t>(r);
    }
    return memcmp(got.data(), p, n) == 0;
}

void DockerStream::land() {
    auto [path, w] = std::move(flying_.front());
    flying_.pop_front();
    auto p = w->finish();
    // The same name again in the archive: the later entry is the file.
    if (auto old = layers_.find(path); old != layers_.end() && old->second)
        discard(s_, *old->second);
    not_layers_.erase(path);
    if (p) {
        layers_[path] = std::move(p).value();
    } else {
        layers_[path] = std::nullopt;
        not_layers_.emplace(path, std::move(p).error());
    }
}

std::string DockerStream::follow(std::string path) const {
    for (int i = 0; i < 16; ++i) {
        auto it = links_.find(path);
        if (it == links_.end()) return path;
        path = it->second;
    }
    return path;
}

Result<std::string> DockerStream::text(const std::string& path) const {
    auto it = json_.find(follow(path));
    if (it == json_.end()) return Error{ENOENT, cat(src_, ": ", path, " is missing"), ""};
    return it->second;
}

Status DockerStream::entry(struct archive* a, struct archive_entry* e) {
    const char* raw = archive_entry_pathname(e);
    std::string path = TRY(clean_path(raw ? raw : "", src_));
    if (const char* hard = archive_entry_hardlink(e)) {
        links_[path] = TRY(clean_path(hard, src_));
        return {};
    }
    mode_t type = archive_entry_filetype(e);
    if (type == AE_IFLNK) {
        // Relative to the link's directory, kept inside the archive's names.
        const char* t = archive_entry_symlink(e);
        std::string target = t ? t : "";
        if (target.empty() || target[0] == '/' || symlink_climbs_out(path, target))
            return usage_error(
                cat(src_, ": ", path, ": a link out of the archive ('", target, "')"));
        auto slash = path.rfind('/');
        std::string joined =
            slash == std::string::npos ? target : path.substr(0, slash + 1) + target;
        std::vector<std::string> parts;
        for (auto& part : parse::split(joined, '/')) {
            if (part.empty() || part == ".") continue;
            if (part == "..") {
                if (!parts.empty()) parts.pop_back();
                continue;
            }
            parts.push_back(part);
        }
        std::string clean;
        for (const auto& part : parts) clean += (clean.empty() ? "" : "/") + part;
        links_[path] = clean;
        return {};
    }
    if (type != AE_IFREG) return {};
    // JSON (manifest.json, the config, the old format's json files) is
    // kept; anything else may be a layer: its first bytes decide nothing,
    // the unpacker does (a file that is no tar is remembered as such).
    // Where the entry's bytes start in the file, when the archive is a
    // plain tar in a regular file (checked against what libarchive reads
    // there below).
    int64_t at = -1;
    if (in_place_ >= 0 && archive_entry_size_is_set(e) && archive_entry_sparse_count(e) == 0)
        at = in_place_ + archive_filter_bytes(a, 0);
    std::vector<char> buf(1 << 17);
    la_ssize_t n = archive_read_data(a, buf.data(), buf.size());
    if (n < 0) return usage_error(cat(src_, ": ", path, ": ", archive_why(a)));
    size_t first = 0;
    while (first < static_cast<size_t>(n) && isspace(static_cast<unsigned char>(buf[first])))
        ++first;
    bool json = first < static_cast<size_t>(n) && (buf[first] == '{' || buf[first] == '[');
    if (json || n == 0) {
        std::string t(buf.data(), static_cast<size_t>(n));
        for (;;) {
            if (json_bytes_ + t.size() > kJsonMax)
                return usage_error(cat(src_, ": more than ", kJsonMax >> 20, " MiB of JSON files"));
            la_ssize_t m = archive_read_data(a, buf.data(), buf.size());
            if (m < 0) return usage_error(cat(src_, ": ", path, ": ", archive_why(a)));
            if (m == 0) break;
            t.append(buf.data(), static_cast<size_t>(m));
        }
        json_bytes_ += t.size();
        json_[path] = std::move(t);
        return {};
    }
    while (flying_.size() >= jobs_) land();
    auto w = TRY(LayerWriter::start(s_, o_.unpack, cat("layer ", path)));
    if (at >= 0 && n > 0 && same_bytes(at, buf.data(), static_cast<size_t>(n))) {
        // The layer is a range of the file: the kernel copies it into the
        // blob, and libarchive skips it (a seek).
        TRY(w->copy_range(fd_, at, archive_entry_size(e)));
        flying_.emplace_back(path, std::move(w));
        return {};
    }
    for (;;) {
        TRY(w->feed(buf.data(), static_cast<size_t>(n)));
        n = archive_read_data(a, buf.data(), buf.size());
        if (n < 0) return usage_error(cat(src_, ": ", path, ": ", archive_why(a)));
        if (n == 0) break;
    }
    flying_.emplace_back(path, std::move(w));
    return {};
}

Status DockerStream::read(int fd) {
    std::unique_ptr<struct archive, int (*)(struct archive*)> a(archive_read_new(),
                                                                archive_read_free);
    archive_read_support_filter_gzip(a.get());
    archive_read_support_filter_zstd(a.get());
    archive_read_support_format_tar(a.get());
    fd_ = fd;
    struct stat st;
    off_t base = ::lseek(fd, 0, SEEK_CUR);
    if (archive_read_open_fd(a.get(), fd, 1 << 17) != ARCHIVE_OK)
        return usage_error(cat(src_, ": not a tar archive: ", archive_why(a.get())));
    // One filter, "none": the tar's offsets are the file's.
    if (base >= 0 && ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        archive_filter_count(a.get()) == 1 &&
        archive_filter_code(a.get(), 0) == ARCHIVE_FILTER_NONE)
        in_place_ = base;
    for (;;) {
        struct archive_entry* e;
        int r = archive_read_next_header(a.get(), &e);
        if (r == ARCHIVE_EOF) {
            while (!flying_.empty()) land();
            return {};
        }
        if (r < ARCHIVE_WARN) {
            return usage_error(cat(src_, ": ", archive_why(a.get(), "not a tar archive")));
        }
        if (++count_ > 100000)
            return usage_error(cat(src_, ": more than 100000 entries: not an image archive"));
        TRY(entry(a.get(), e));
    }
}

Result<ImportResult> DockerStream::import(const std::string& ref) {
    std::string mtext = TRY(text("manifest.json"));
    json j = json::parse(mtext, nullptr, false);
    if (!j.is_array() || j.empty())
        return usage_error(cat(src_, ": manifest.json: not a list of images"));
    const json* pick = nullptr;
    std::string name = o_.name;
    for (const auto& e : j) {
        if (!e.is_object()) continue;
        std::vector<std::string> tags;
        if (auto t = e.find("RepoTags"); t != e.end() && t->is_array())
            for (const auto& v : *t)
                if (v.is_string()) tags.push_back(v.get<std::string>());
        if (ref.empty() || std::find(tags.begin(), tags.end(), ref) != tags.end()) {
            pick = &e;
            if (name.empty()) name = ref.empty() ? (tags.empty() ? "" : tags[0]) : ref;
            break;
        }
    }
    if (!pick) return usage_error(cat(src_, ": no image tagged '", ref, "'"));
    if (name.empty())
        return usage_error(cat(src_, ": the image has no tag; give it a name: --import SRC NAME"));
    name = TRY(normalize_name(name, "NAME"));
    auto cpath = pick->find("Config");
    auto lpaths = pick->find("Layers");
    if (cpath == pick->end() || !cpath->is_string() || lpaths == pick->end() || !lpaths->is_array())
        return usage_error(cat(src_, ": manifest.json: an entry without Config or Layers"));
    std::string cname = TRY(clean_path(cpath->get<std::string>(), src_));
    std::string ctext = TRY(text(cname));
    std::string cdigest = sha256(ctext);
    // "HEX.json" or "blobs/sha256/HEX": the name is the digest.
    std::string base = cname.substr(cname.rfind('/') + 1);
    if (base.ends_with(".json")) base.resize(base.size() - 5);
    if (base.size() == 64 && base.find_first_not_of("0123456789abcdef") == std::string::npos && "sha256:" + base != cdigest)
        return usage_error(
            cat(src_, ": config ", cname, ": digest mismatch: the content hashes to ", cdigest));
    Config cfg = TRY(parse_config(ctext, cat(src_, ": config ", cname)));
    Platform want = o_.platform ? *o_.platform : host_platform();
    TRY(check_platform(cfg, want, o_.platform.has_value(), src_));
    std::vector<std::string> paths;
    for (const auto& p : *lpaths) {
        if (!p.is_string())
            return usage_error(cat(src_, ": manifest.json: a layer path is not a string"));
        paths.push_back(follow(TRY(clean_path(p.get<std::string>(), src_))));
    }
    if (cfg.diff_ids.size() != paths.size())
        return usage_error(cat("the manifest lists ", paths.size(), " layers, the config ",
                               cfg.diff_ids.size(), " diff_ids"));
    // Every layer checked before any is published.
    for (size_t i = 0; i < paths.size(); ++i) {
        auto it = layers_.find(paths[i]);
        if (it == layers_.end()) {
            if (auto nl = not_layers_.find(paths[i]); nl != not_layers_.end()) return nl->second;
            return Error{ENOENT, cat(src_, ": layer ", paths[i], " is missing"), ""};
        }
        if (!it->second) return not_layers_.at(paths[i]);
        const Pending& p = *it->second;
        // blobs/sha256/HEX names its digest.
        std::string b = paths[i].substr(paths[i].rfind('/') + 1);
        if (paths[i].starts_with("blobs/sha256/") && b.size() == 64 &&
            "sha256:" + b != p.blob.digest)
            return usage_error(cat("layer ", paths[i], ": digest mismatch: the name says sha256:",
                                   b, ", the content hashes to ", p.blob.digest));
        if (p.stats.diff_id != cfg.diff_ids[i])
            return usage_error(cat("layer ", p.blob.digest, ": its diff_id is ", p.stats.diff_id,
                                   ", the config says ", cfg.diff_ids[i]));
    }
    ImportResult r;
    auto chains = chain_ids(cfg.diff_ids);
    std::vector<Descriptor> stored;
    for (size_t i = 0; i < paths.size(); ++i) {
        ++r.layers;
        auto& slot = layers_.at(paths[i]);
        const UnpackStats& st = slot ? slot->stats : UnpackStats{};
        Descriptor d{st.compression == "gzip"   ? media::kLayerGzip
                     : st.compression == "zstd" ? media::kLayerZstd
                                                : media::kLayer,
                     "",
                     -1,
                     std::nullopt,
                     {}};
        if (slot) {
            Pending p = std::move(*slot);
            slot.reset();
            d.digest = p.blob.digest;
            d.size = p.blob.size;
            bool made = TRY(publish(s_, p, chains[i]));
            if (made)
                add_stats(r.totals, p.stats);
            else
                ++r.layers_shared;
            // The same file named twice: published once, then shared.
            layers_[paths[i]] = std::nullopt;
            not_layers_.erase(paths[i]);
            shared_[paths[i]] = d;
        } else {
            d = shared_.at(paths[i]);
            ++r.layers_shared;
        }
        stored.push_back(d);
    }
    BlobRef c = TRY(s_.put_bytes(ctext));
    Manifest m;
    m.media_type = media::kManifest;
    m.config = {media::kConfig, c.digest, c.size, std::nullopt, {}};
    m.layers = stored;
    BlobRef mb = TRY(s_.put_bytes(manifest_json(m)));
    TRY(publish(s_, name, Descriptor{media::kManifest, mb.digest, mb.size, std::nullopt, {}}));
    r.name = name;
    r.manifest_digest = mb.digest;
    r.config_digest = c.digest;
    return r;
}

Result<ImportResult> from_docker(Store& s, int fd, const std::string& ref, const ImportOptions& o,
                                 const std::string& src) {
    DockerStream d(s, o, src);
    TRY(d.read(fd));
    return d.import(ref);
}

// One layer holding a root filesystem: the blob is already in the store.
Result<ImportResult> from_rootfs_blob(Store& s, const BlobRef& blob, const ImportOptions& o, const std::string& src) {
    if (o.name.empty()) return usage_error(cat(src, ": a root filesystem has no name; give one: --import SRC NAME"));
    std::string name = TRY(normalize_name(o.name, "NAME"));
    // The diff_id is known once the layer is unpacked: unpack, then key it.
    std::string n = s.tmp_name("layer");
    if (::mkdirat(s.tmp_fd(), n.c_str(), 0755) != 0) return sys_error(cat("mkdir ", s.path(), "/tmp/", n));
    UniqueFd dest(open_in(s.tmp_fd(), n, O_RDONLY | O_DIRECTORY));
    if (!dest) return sys_error(cat("open ", s.path(), "/tmp/", n));
    UniqueFd in = TRY(s.open_blob(blob.digest));
    auto st = unpack_layer(in.get(), dest.get(), o.unpack, src);
    dest.reset();
    // A refused layer leaves no work in progress behind.
    if (!st) {
        (void)remove_tree(s.tmp_fd(), n);
        return std::move(st).error();
    }
    ImportResult r;
    r.layers = 1;
    if (s.has_layer(st->diff_id)) {
        ++r.layers_shared;
        TRY(remove_tree(s.tmp_fd(), n));
    } else {
        if (::renameat2(s.tmp_fd(), n.c_str(), s.fd(), cat("layers/", hex_of(st->diff_id)).c_str(),
                        RENAME_NOREPLACE) != 0) {
            Error e = sys_error(cat("rename tmp/", n, " to layers/", hex_of(st->diff_id)));
            (void)remove_tree(s.tmp_fd(), n);
            return e;
        }
        add_stats(r.totals, *st);
    }
    Platform p = o.platform ? *o.platform : host_platform();
    std::string ctext = config_json("", {st->diff_id}, p, now_rfc3339(), cat("image-layers --import ", src));
    BlobRef c = TRY(s.put_bytes(ctext));
    Manifest m;
    m.media_type = media::kManifest;
    m.config = {media::kConfig, c.digest, c.size, std::nullopt, {}};
    m.layers = {{st->compression == "gzip"   ? media::kLayerGzip
                 : st->compression == "zstd" ? media::kLayerZstd
                                             : media::kLayer,
                 blob.digest, blob.size, std::nullopt, {}}};
    BlobRef mb = TRY(s.put_bytes(manifest_json(m)));
    TRY(publish(s, name, Descriptor{media::kManifest, mb.digest, mb.size, std::nullopt, {}}));
    r.name = name;
    r.manifest_digest = mb.digest;
    r.config_digest = c.digest;
    return r;
}

enum class ArchiveKind { oci, docker, rootfs };

// What a tar holds, from its names alone.
Result<ArchiveKind> sniff(int fd, const std::string& src) {
    std::unique_ptr<struct archive, int (*)(struct archive*)> a(archive_read_new(), archive_read_free);
    archive_read_support_filter_gzip(a.get());
    archive_read_support_filter_zstd(a.get());
    archive_read_support_format_tar(a.get());
    if (archive_read_open_fd(a.get(), fd, 1 << 17) != ARCHIVE_OK)
        return usage_error(cat(src, ": not a tar archive: ", archive_why(a.get())));
    bool oci = false, docker = false;
    struct archive_entry* e;
    int r;
    while ((r = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        auto p = clean_path(archive_entry_pathname(e) ? archive_entry_pathname(e) : "", src);
        if (p && *p == "oci-layout") oci = true;
        if (p && *p == "manifest.json") docker = true;
    }
    if (r != ARCHIVE_EOF) {
        return usage_error(cat(src, ": ", archive_why(a.get(), "not a tar archive")));
    }
    return oci ? ArchiveKind::oci : docker ? ArchiveKind::docker : ArchiveKind::rootfs;
}

Result<ImportResult> from_file(Store& s, int fd, std::string ref, const ImportOptions& o, const std::string& src,
                               std::optional<ArchiveKind> kind) {
    if (::lseek(fd, 0, SEEK_SET) != 0) return sys_error(cat("seek ", src));
    if (!kind) kind = TRY(sniff(fd, src));
    if (::lseek(fd, 0, SEEK_SET) != 0) return sys_error(cat("seek ", src));
    if (*kind == ArchiveKind::rootfs) {
        BlobRef b = TRY(s.put_blob(fd, "", -1, src));
        return from_rootfs_blob(s, b, o, src);
    }
    if (*kind == ArchiveKind::docker) return from_docker(s, fd, ref, o, src);
    // An OCI archive: unpacked into tmp/ (plain files, safely), then read as a directory.
    std::string n = s.tmp_name("src");
    if (::mkdirat(s.tmp_fd(), n.c_str(), 0700) != 0) return sys_error(cat("mkdir ", s.path(), "/tmp/", n));
    UniqueFd dir(open_in(s.tmp_fd(), n, O_RDONLY | O_DIRECTORY));
    if (!dir) return sys_error(cat("open ", s.path(), "/tmp/", n));
    auto u = unpack_layer(fd, dir.get(), UnpackOptions{}, src);
    Result<ImportResult> r =
        !u ? Result<ImportResult>(std::move(u).error()) : from_oci(s, dir.get(), ref, o, src, true);
    dir.reset();
    (void)remove_tree(s.tmp_fd(), n);
    return r;
}

// "oci:DIR:REF": DIR is the shortest prefix that exists (REF may hold ':').
std::pair<std::string, std::string> split_ref(const std::string& rest) {
    struct stat st;
    for (size_t c = rest.find(':'); c != std::string::npos; c = rest.find(':', c + 1))
        if (::stat(rest.substr(0, c).c_str(), &st) == 0) return {rest.substr(0, c), rest.substr(c + 1)};
    return {rest, ""};
}

}  // namespace

namespace {
Result<ImportResult> import_locked(Store& s, const ImportOptions& o);
Result<ImportResult> commit_locked(Store& s, const std::string& dir, const std::string& image, const std::string& name,
                                   const UnpackOptions& u, const WriteOptions& w);
}  // namespace

// A failed import or commit publishes nothing: what it stored before the
// failure (whole blobs and layers, but no image uses them) is collected.
Result<ImportResult> import(Store& s, const ImportOptions& in) {
    ImportOptions o = in;
    set_threads(o.unpack, import_jobs(o.jobs));
    auto r = import_locked(s, o);
    if (!r) {
        (void)s.clear_tmp();
        (void)s.collect();
    }
    return r;
}

Result<ImportResult> commit(Store& s, const std::string& dir, const std::string& image, const std::string& name,
                            const UnpackOptions& u, const WriteOptions& w) {
    auto r = commit_locked(s, dir, image, name, u, w);
    if (!r) {
        (void)s.clear_tmp();
        (void)s.collect();
    }
    return r;
}

namespace {

Result<ImportResult> import_locked(Store& s, const ImportOptions& o) {
    const std::string& src = o.src;
    if (src == "-") {
        std::string n = s.tmp_name("stdin");
        int fd = ::openat(s.tmp_fd(), n.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) return sys_error(cat("create ", s.path(), "/tmp/", n));
        UniqueFd f(fd);
        std::vector<char> buf(1 << 17);
        for (;;) {
            ssize_t r = ::read(0, buf.data(), buf.size());
            if (r < 0) {
                if (errno == EINTR) continue;
                return sys_error("read standard input");
            }
            if (r == 0) break;
            TRY(sys::write_all(f.get(), buf.data(), static_cast<size_t>(r),
                               cat(s.path(), "/tmp/", n)));
        }
        auto r = from_file(s, f.get(), "", o, "standard input", std::nullopt);
        (void)::unlinkat(s.tmp_fd(), n.c_str(), 0);
        return r;
    }
    std::string path = src, ref;
    std::optional<ArchiveKind> kind;
    bool want_dir = false;
    if (src.starts_with("oci:")) {
        std::tie(path, ref) = split_ref(src.substr(4));
        want_dir = true;
    } else if (src.starts_with("oci-archive:")) {
        std::tie(path, ref) = split_ref(src.substr(12));
        kind = ArchiveKind::oci;
    } else if (src.starts_with("docker-archive:")) {
        std::tie(path, ref) = split_ref(src.substr(15));
        kind = ArchiveKind::docker;
    }
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sys_error(cat("--import ", path));
    UniqueFd f(fd);
    struct stat st;
    if (::fstat(f.get(), &st) != 0) return sys_error(cat("stat ", path));
    if (S_ISDIR(st.st_mode)) {
        if (kind) return usage_error(cat(src, ": a directory, not an archive"));
        struct stat l;
        if (::fstatat(f.get(), "oci-layout", &l, 0) == 0)
            return from_oci(s, f.get(), ref, o, src, false);
        if (want_dir) return usage_error(cat(src, ": not an OCI image layout (no oci-layout file)"));
        // A root filesystem: written as one tar layer, then unpacked like any other.
        std::string n = s.tmp_name("rootfs");
        int out = ::openat(s.tmp_fd(), n.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (out < 0) return sys_error(cat("create ", s.path(), "/tmp/", n));
        UniqueFd of(out);
        WriteStats w = TRY(write_layer(f.get(), of.get(), o.write, src));
        of.reset();
        TRY(s.adopt_blob(n, w.digest));
        return from_rootfs_blob(s, BlobRef{w.digest, static_cast<int64_t>(w.size)}, o, src);
    }
    if (want_dir) return usage_error(cat(src, ": oci: names a directory (an OCI image layout)"));
    return from_file(s, f.get(), ref, o, src, kind);
}

Result<ImportResult> commit_locked(Store& s, const std::string& dir, const std::string& image, const std::string& name,
                                   const UnpackOptions& u, const WriteOptions& w) {
    std::string full = TRY(normalize_name(name, "NAME"));
    Image img = TRY(resolve(s, image));
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return sys_error(cat("--commit ", dir));
    UniqueFd d(fd);
    std::string n = s.tmp_name("commit");
    int out = ::openat(s.tmp_fd(), n.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) return sys_error(cat("create ", s.path(), "/tmp/", n));
    UniqueFd of(out);
    WriteOptions wo = w;
    wo.whiteouts = true;
    WriteStats ws = TRY(write_layer(d.get(), of.get(), wo, dir));
    of.reset();
    TRY(s.adopt_blob(n, ws.digest));
    std::vector<std::string> diff_ids = img.config.diff_ids;
    diff_ids.push_back(ws.digest);
    auto chains = chain_ids(diff_ids);
    ImportResult r;
    r.layers = 1;
    auto st = TRY(s.add_layer(ws.digest, ws.digest, chains.back(), u));
    if (st) add_stats(r.totals, *st);
    else ++r.layers_shared;
    std::string ctext = config_json(img.config.json, diff_ids, img.config.platform.architecture.empty()
                                                                 ? host_platform()
                                                                 : img.config.platform,
                                    now_rfc3339(), cat("image-layers --commit ", dir));
    BlobRef c = TRY(s.put_bytes(ctext));
    Manifest m = img.manifest;
    m.config.digest = c.digest;
    m.config.size = c.size;
    bool docker = m.media_type == media::kDockerManifest;
    m.layers.push_back({docker ? "application/vnd.docker.image.rootfs.diff.tar" : media::kLayer, ws.digest,
                        static_cast<int64_t>(ws.size), std::nullopt, {}});
    BlobRef mb = TRY(s.put_bytes(manifest_json(m)));
    TRY(publish(s, full, Descriptor{m.media_type, mb.digest, mb.size, std::nullopt, {}}));
    r.name = full;
    r.manifest_digest = mb.digest;
    r.config_digest = c.digest;
    return r;
}

}  // namespace

Status name_image(Store& s, const std::string& name, const Descriptor& manifest) {
    return publish(s, name, manifest);
}

Status tag(Store& s, const std::string& image, const std::string& name) {
    std::string full = TRY(normalize_name(name, "NAME"));
    Image img = TRY(resolve(s, image));
    return publish(s, full, img.manifest_desc);
}

Result<std::vector<std::string>> remove(Store& s, const std::string& image) {
    Image img = TRY(resolve(s, image));
    Index idx = TRY(s.index());
    std::string full = normalize_name(image, "IMAGE").ok() ? *normalize_name(image, "IMAGE") : image;
    bool by_name = false;
    for (const auto& d : idx.manifests)
        if (ref_of(d) == image || ref_of(d) == full) by_name = true;
    std::vector<Descriptor> kept;
    std::vector<std::string> removed;
    for (const auto& d : idx.manifests) {
        bool hit = by_name ? (ref_of(d) == image || ref_of(d) == full) : d.digest == img.manifest_desc.digest;
        if (hit) removed.push_back(ref_of(d).empty() ? d.digest : ref_of(d));
        else kept.push_back(d);
    }
    idx.manifests = std::move(kept);
    TRY(s.write_index(idx));
    TRY(s.collect());
    return removed;
}

Result<unsigned> parse_jobs(std::string_view v) {
    if (v.empty()) return 0u;
    auto n = parse::u64(v, env::kImageJobs);
    if (!n || *n < 1 || *n > kMaxJobs)
        return usage_error(cat(env::kImageJobs, " '", v, "': not a number from 1 to ", kMaxJobs));
    return static_cast<unsigned>(*n);
}

}  // namespace kago::image
