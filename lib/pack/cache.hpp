// The content-addressed cache of extracted roots.
//
//   BASE/KEY/root       the extracted tree
//   BASE/KEY/config     the runtime settings, so that a hit reads no manifest
//   BASE/KEY/complete   the marker, written last
//   BASE/KEY.lock       flock(2)ed while an entry is being made
//   BASE/.tmp-KEY-XXXX  an entry being made; published with
//                       renameat2(RENAME_NOREPLACE)
//
// BASE is --kago-cache DIR, /var/cache/kago for root, or
// ${XDG_CACHE_HOME:-~/.cache}/kago, falling back to $XDG_RUNTIME_DIR/kago
// when that is not writable or is mounted noexec.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/fd.hpp"
#include "core/result.hpp"
#include "pack/format.hpp"
#include "pack/reader.hpp"

namespace kago::pack {

struct CacheBase {
    std::string path;
    UniqueFd fd;
    std::vector<std::string> skipped;  // "PATH: why" for each default not taken
};

// The candidate directories, in order of preference.
std::vector<std::string> cache_candidates(const std::string& override_dir);

// Open (creating, mode 0700) the first usable candidate: owned by us, not
// writable by others, writable, and not mounted noexec.
Result<CacheBase> open_cache_base(const std::string& override_dir);

struct CacheEntry {
    std::string dir;   // BASE/KEY
    std::string root;  // BASE/KEY/root
    Config config;
    bool hit = false;
    ExtractStats stats;  // when it was just extracted
};

// A complete entry owned by us with no write permission for others, or
// nothing.
Result<std::optional<CacheEntry>> cache_lookup(const CacheBase& base, const std::string& key);

// Look up, or extract under the lock and publish.
Result<CacheEntry> cache_get(const CacheBase& base, Packed& p, const ExtractOptions& o);

// Remove BASE/KEY (and its lock and stale temporary directories).
Status cache_clean(const CacheBase& base, const std::string& key);

// rm -r of dirfd/name that makes directories writable first (a rootless
// extraction keeps 0555 directories) and does not cross mount points.
Status remove_tree_at(int dirfd, const std::string& name, const std::string& shown);

std::vector<uint8_t> encode_config(const Config& c);
Result<Config> decode_config(std::span<const uint8_t> bytes);

}  // namespace kago::pack
