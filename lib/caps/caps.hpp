// Capabilities: names, sets, and the traced calls that change them.
//
// A CapSet is a bit mask indexed by capability number (CAP_CHOWN = 0 ...
// CAP_CHECKPOINT_RESTORE = 40). Names are accepted with or without "cap_"
// and in any case; they print in the kernel's lower-case form without the
// prefix ("net_bind_service").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace kago::caps {

struct CapSet {
    uint64_t bits = 0;

    bool has(int cap) const { return cap >= 0 && cap < 64 && (bits >> cap) & 1; }
    void add(int cap) { bits |= uint64_t{1} << cap; }
    void remove(int cap) { bits &= ~(uint64_t{1} << cap); }
    bool empty() const { return bits == 0; }
    bool operator==(const CapSet&) const = default;
    CapSet operator&(CapSet o) const { return {bits & o.bits}; }
    CapSet operator|(CapSet o) const { return {bits | o.bits}; }
    CapSet operator-(CapSet o) const { return {bits & ~o.bits}; }
    std::vector<int> list() const;
};

// The highest capability number the running kernel knows
// (/proc/sys/kernel/cap_last_cap), or the highest this build knows.
int last_cap();
// Every capability of the running kernel.
CapSet all_caps();
// Docker's default set, which runc, crun and podman also give a container,
// and what cap-drop and pack-selfexec's runner keep when nothing else is
// asked for: chown, dac_override, fowner, fsetid, kill, setgid, setuid,
// setpcap, net_bind_service, net_raw, sys_chroot, mknod, audit_write,
// setfcap.
CapSet default_caps();

// "net_bind_service" for 10; "cap_41" for a number without a name.
std::string cap_name(int cap);
// "NET_BIND_SERVICE", "cap_net_bind_service", "Net_Bind_Service" -> 10.
// An unknown name is a usage error listing the known names.
Result<int> cap_from_name(std::string_view name);
// A comma-separated list of names, "all" or "none". Spaces around names
// are ignored.
Result<CapSet> parse_caps(std::string_view list);
// "all", "none", or the names joined by ','.
std::string format_caps(CapSet set);
// The known names, space separated (for error messages and completions).
std::string known_names();

// --securebits: noroot, no-setuid-fixup, keep-caps, no-cap-ambient-raise
// and their locked forms (noroot-locked, ...). Returns the SECBIT_ mask.
Result<unsigned> parse_securebits(std::string_view list);
std::string format_securebits(unsigned bits);

// The calling process's sets, as the kernel reports them.
struct ProcessCaps {
    CapSet effective, permitted, inheritable, bounding, ambient;
};
// `bounding` and `ambient` false leave those sets empty and skip their
// reads (one prctl per capability each: 41 each on this kernel).
Result<ProcessCaps> current(bool bounding = true, bool ambient = true);

// Traced changes. Each one names the capability or set in its error.
Status drop_bounding(int cap);                     // prctl(PR_CAPBSET_DROP, cap)
Status set_proc(CapSet eff, CapSet perm, CapSet inh);  // capset(2) through libcap
Status clear_ambient();                            // PR_CAP_AMBIENT_CLEAR_ALL
Status raise_ambient(int cap);                     // PR_CAP_AMBIENT_RAISE
Status set_keepcaps(bool on);                      // PR_SET_KEEPCAPS
Status set_securebits(unsigned bits);              // PR_SET_SECUREBITS
Result<unsigned> get_securebits();
Status set_no_new_privs();                         // PR_SET_NO_NEW_PRIVS

}  // namespace kago::caps
