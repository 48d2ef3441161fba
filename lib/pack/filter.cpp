// The packer's half of the seccomp filter: compiled once, when the file is
// packed, so that the static runner needs no libseccomp.
#include <cstring>

#include "caps/policy.hpp"
#include "caps/seccomp.hpp"
#include "pack/runtime.hpp"

namespace kago::pack {

Result<std::string> default_filter(const Config& c) {
    // The capabilities the payload keeps decide the profile's rules, as in
    // the runner.
    caps::CapSet kept = TRY(caps::select_caps(cap_options(c), caps::all_caps())).keep;
    // Built once, loaded at every run: a tree (see caps::Layout).
    auto f = TRY(caps::compile(caps::default_profile(kept), caps::Layout::tree));
    std::string bytes(f.program.size() * sizeof(sock_filter), '\0');
    memcpy(bytes.data(), f.program.data(), bytes.size());
    return bytes;
}

}  // namespace kago::pack
