#include "image/pull.hpp"

#include "image/digest.hpp"
#include "image/ingest.hpp"

namespace kago::image {

namespace {

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
    ImportResult r;
    for (size_t i = 0; i < m.layers.size(); ++i) {
        const Descriptor& l = m.layers[i];
        TRY(check_digest(l.digest, cat(src, ": layer ", i + 1)));
        PullEvent ev{PullEvent::start, i + 1, m.layers.size(), l.digest, l.size, 0};
        auto tell = [&](PullEvent::Kind k) {
            ev.kind = k;
            if (o.progress) o.progress(ev);
        };
        ++r.layers;
        std::string what = cat("layer ", l.digest);
        if (s.has_blob(l.digest) && s.has_layer(chains[i])) {
            ++r.layers_shared;
            tell(PullEvent::present);
            continue;
        }
        if (s.has_blob(l.digest)) {
            auto st = TRY(s.add_layer(l.digest, cfg.diff_ids[i], chains[i], o.unpack));
            if (st)
                add_stats(r.totals, *st);
            else
                ++r.layers_shared;
            tell(PullEvent::unpacked);
            continue;
        }
        tell(PullEvent::start);
        auto w = TRY(LayerWriter::start(s, o.unpack, what));
        Registry::Sink sink = [&](const char* p, size_t n) -> Status {
            TRY(w->feed(p, n));
            ev.done += static_cast<int64_t>(n);
            tell(PullEvent::bytes);
            return {};
        };
        TRY(reg->blob_stream(l, sink));
        LayerWant lw{l.digest, l.size, cfg.diff_ids[i], chains[i], false};
        Ingested in = TRY(settle(s, *w, lw, cat(src, ": ", what)));
        if (in.stats)
            add_stats(r.totals, *in.stats);
        else
            ++r.layers_shared;
        tell(PullEvent::fetched);
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

Result<ImportResult> pull(Store& s, const PullOptions& o) {
    auto r = pull_locked(s, o);
    if (!r) {
        (void)s.clear_tmp();
        (void)s.collect();
    }
    return r;
}

}  // namespace kago::image
