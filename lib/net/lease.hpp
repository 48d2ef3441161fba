// Host-side bookkeeping that must survive a SIGKILL: address leases per
// bridge and one owner record per container, under RUNTIME/leases/ (for
// root /run/kago/leases). One lock file serializes every net-setup that
// changes host state, so two containers starting at once never get the
// same address, and a table or bridge is never removed under a newcomer.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/fd.hpp"
#include "core/proc.hpp"
#include "core/result.hpp"
#include "net/addr.hpp"

namespace kago::net::lease {

// The supervisor that owns a lease or a record: core/proc decides whether
// it still runs, for every kago program alike.
using proc::Owner;
using proc::self;
using proc::alive;

std::string dir();  // runtime root + "/leases"
// Whether DIR (or `path`) changed (an owner record written or removed: a
// container starting or ending; lease files are rewritten in place and do
// not change it) in the last `ms` milliseconds.
// False when it does not exist.
bool changed_within(int ms, const std::string& path = dir());
// Rewrite `path` with `content` in place (created when missing), for files
// whose readers hold the lock: a newline-padded write, then a truncation.
Status write_in_place(const std::string& path, std::string_view content);

class Lock {
  public:
    // flock(LOCK_EX) on DIR/lock; released on destruction.
    static Result<Lock> acquire();
    Lock() = default;
    Lock(Lock&&) = default;
    Lock& operator=(Lock&&) = default;
    ~Lock() { unlock(); }
    // Release the lock. When no lease or owner record is left, the lock file
    // and DIR are removed first (while the lock is held), so that nothing of
    // net-setup stays on the host; acquire() retries when it locked a file
    // that was removed meanwhile.
    void unlock();
    bool held() const { return fd_.valid(); }

  private:
    UniqueFd fd_;
};

// One bridge's leases: "ADDR NAME PID START" lines, and a header line
// "# bridge NAME created" when net-setup created the bridge.
struct LeaseFile {
    struct Entry {
        Cidr addr;  // no prefix
        std::string name;
        Owner owner;
    };
    bool created_bridge = false;
    uint64_t netns = 0;  // inode of the host network namespace of the bridge
    std::vector<Entry> entries;

    static LeaseFile parse(std::string_view text);
    std::string format(const std::string& bridge) const;
    bool in_use(const Cidr& a) const;
    // The lowest free host address of the subnet, skipping the gateway.
    std::optional<Cidr> allocate(const Cidr& subnet, const Cidr& gateway) const;
    // Drop the entries for which dead() is true; returns how many.
    size_t reap(const std::function<bool(const Entry&)>& dead);
};

Result<LeaseFile> load(const std::string& bridge);
// The keys of every lease file ("kago0@4026531840").
Result<std::vector<std::string>> lease_files();
// Writes the file, or removes it when it holds nothing.
Status save(const std::string& bridge, const LeaseFile& f);

// The owner record of one container: key=value lines.
struct Record {
    std::string name;
    std::map<std::string, std::string> kv;
    std::string get(const std::string& k) const {
        auto it = kv.find(k);
        return it == kv.end() ? "" : it->second;
    }
    Owner owner() const;
    static Record parse(std::string name, std::string_view text);
    std::string format() const;
};
Status write_record(const Record& r);
Status remove_record(const std::string& name);
Result<std::vector<Record>> records();

}  // namespace kago::net::lease
