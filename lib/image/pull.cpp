#include "image/pull.hpp"

#include <algorithm>
#include <mutex>

#include "image/digest.hpp"
#include "image/ingest.hpp"
#include "image/jobs.hpp"

namespace kago::image {

namespace {

// An error that names the layer's digest.
Error named(Error e, const std::string& digest, const std::string& what) {
    if (e.what.find(digest) == std::string::npos) e.what = cat(what, ": ", e.what);
    return e;
}

// A layer the store lacks, in one pass: its bytes from the registry to a
// LayerWriter (hashed, kept, unpacked as they come), then checked and
// published. The statistics, nullopt when layers/CHAIN was made meanwhile.
Result<std::optional<UnpackStats>> fetch_layer(
    Store& s, Registry& reg, const PullOptions& o, const Descriptor& l, const LayerWant& want,
    const std::string& what, const std::atomic<bool>& stop,
    const std::function<void(int64_t, PullEvent::Kind)>& tell) {
    tell(0, PullEvent::start);
    auto w = TRY(LayerWriter::start(s, o.unpack, what));
    int64_t done = 0;
    Registry::Sink sink = [&](const char* p, size_t n) -> Status {
        TRY(w->feed(p, n));
        done += static_cast<int64_t>(n);
        tell(done, PullEvent::bytes);
        return {};
    };
    TRY(reg.blob_stream(l, sink, &stop));
    Ingested in = TRY(settle(s, *w, want, what));
    tell(done, PullEvent::fetched);
    return std::move(in.stats);
}

Result<ImportResult> pull_locked(Store& s, const PullOptions& o) {
    Reference ref = TRY(parse_reference(o.ref));
    std::string name = TRY(pull_name(o));
    std::string src = ref.str();
    Platform want = o.platform ? *o.platform : host_platform();
    auto reg = TRY(Registry::connect(ref, o.registry));
    Fetched f = TRY(reg->manifest(ref.manifest_ref()));
    for (int depth = 0; is_index_type(f.media_type); ++depth) {
        if (depth > 2) return usage_error(cat(src, ": indexes nested too deep"));
        Index idx = TRY(parse_index(f.body, cat(src, ": index ", f.digest)));
        Descriptor d = TRY(pick_manifest(idx, want, o.platform.has_value(), src));
        f = TRY(reg->manifest(d.digest));
    }
    if (!is_manifest_type(f.media_type))
        return usage_error(cat(src, ": ", f.digest, ": unknown media type '", f.media_type, "'"));
    Manifest m = TRY(parse_manifest(f.body, cat(src, ": manifest ", f.digest)));
    std::string ctext =
        s.has_blob(m.config.digest) ? TRY(s.read_blob(m.config.digest)) : TRY(reg->blob(m.config));
    Config cfg = TRY(parse_config(ctext, cat(src, ": config ", m.config.digest)));
    if (!cfg.platform.architecture.empty() && !fits(cfg.platform, want)) {
        Error e =
            usage_error(cat(src, ": the image is for ", cfg.platform.str(), ", not ", want.str()));
        if (!o.platform)
            e.hint = cat("this host runs ", want.str(), "; --platform ", cfg.platform.str(),
                         " pulls it anyway");
        return e;
    }
    if (cfg.diff_ids.size() != m.layers.size())
        return usage_error(cat(src, ": the manifest lists ", m.layers.size(),
                               " layers, the config ", cfg.diff_ids.size(), " diff_ids"));
    auto chains = chain_ids(cfg.diff_ids);
    for (size_t i = 0; i < m.layers.size(); ++i)
        TRY(check_digest(m.layers[i].digest, cat(src, ": layer ", i + 1)));
    // The layers, up to `jobs` at once (run_jobs), each fetched on a handle
    // of its own: the first one, or a clone of it made now that it knows
    // the scheme and the authorization (a handle connects only when used).
    // Events are told one at a time.
    unsigned jobs = import_jobs(o.jobs);
    std::mutex mu;  // handles, o.progress
    std::vector<std::unique_ptr<Registry>> handles;
    handles.push_back(std::move(reg));
    for (size_t k = 1; k < std::min<size_t>(jobs, m.layers.size()); ++k)
        handles.push_back(TRY(handles.front()->clone()));
    auto tell = [&](const PullEvent& ev) {
        if (!o.progress) return;
        std::lock_guard<std::mutex> lock(mu);
        o.progress(ev);
    };
    std::vector<std::optional<UnpackStats>> stats(m.layers.size());  // nullopt: shared
    auto one = [&](size_t i, const std::atomic<bool>& stop) -> Status {
        const Descriptor& l = m.layers[i];
        PullEvent ev{PullEvent::start, i + 1, m.layers.size(), l.digest, l.size, 0};
        auto told = [&](PullEvent::Kind k) {
            ev.kind = k;
            tell(ev);
        };
        if (s.has_blob(l.digest) && s.has_layer(chains[i])) {
            told(PullEvent::present);
            return {};
        }
        std::string what = cat(src, ": layer ", l.digest);
        if (s.has_blob(l.digest)) {
            auto st = s.add_layer(l.digest, cfg.diff_ids[i], chains[i], o.unpack);
            if (!st) return named(std::move(st).error(), l.digest, what);
            stats[i] = std::move(*st);
            told(PullEvent::unpacked);
            return {};
        }
        std::unique_ptr<Registry> h;
        {
            std::lock_guard<std::mutex> lock(mu);
            h = std::move(handles.back());  // never empty: a handle per job
            handles.pop_back();
        }
        auto fetched =
            fetch_layer(s, *h, o, l, {l.digest, l.size, cfg.diff_ids[i], chains[i], false}, what,
                        stop, [&](int64_t done, PullEvent::Kind k) {
                            ev.done = done;
                            told(k);
                        });
        {
            std::lock_guard<std::mutex> lock(mu);
            handles.push_back(std::move(h));
        }
        if (!fetched) return named(std::move(fetched).error(), l.digest, what);
        stats[i] = std::move(*fetched);
        return {};
    };
    TRY(run_jobs(m.layers.size(), jobs, one));
    ImportResult r;
    for (auto& st : stats) {
        ++r.layers;
        if (st)
            add_stats(r.totals, *st);
        else
            ++r.layers_shared;
    }
    BlobRef c = TRY(s.put_bytes(ctext));
    BlobRef mb = TRY(s.put_bytes(f.body));
    if (c.digest != m.config.digest || mb.digest != f.digest)
        return usage_error(cat(src, ": stored documents do not hash to their digests"));
    TRY(name_image(s, name, Descriptor{f.media_type, mb.digest, mb.size, std::nullopt, {}}));
    r.name = name;
    r.manifest_digest = mb.digest;
    r.config_digest = c.digest;
    return r;
}

}  // namespace

Result<std::string> pull_name(const PullOptions& o) {
    TRY(parse_reference(o.ref));
    return normalize_name(o.name.empty() ? o.ref : o.name, "NAME");
}

Result<ImportResult> pull(Store& s, const PullOptions& in) {
    PullOptions o = in;
    set_threads(o.unpack, import_jobs(o.jobs));
    auto r = pull_locked(s, o);
    if (!r) {
        (void)s.clear_tmp();
        (void)s.collect();
    }
    return r;
}

}  // namespace kago::image
