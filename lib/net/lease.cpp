#include "net/lease.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>

#include "core/parse.hpp"
#include "core/state.hpp"
#include "core/sys.hpp"

namespace kago::net::lease {

std::string dir() { return cat(state::runtime_root(), "/leases"); }

bool changed_within(int ms, const std::string& path) {
    struct stat st;
    struct timespec now;
    if (::stat(path.c_str(), &st) != 0 || ::clock_gettime(CLOCK_REALTIME, &now) != 0) return false;
    long long age_ms = (now.tv_sec - st.st_mtim.tv_sec) * 1000LL + (now.tv_nsec - st.st_mtim.tv_nsec) / 1000000;
    return age_ms >= 0 && age_ms < ms;
}

namespace {
// The names in dir() that end in `suffix` (every name for ""), without it.
// No directory yet: none.
Result<std::vector<std::string>> stems(std::string_view suffix) {
    std::vector<std::string> out;
    std::string d = dir();
    DIR* dp = ::opendir(d.c_str());
    if (!dp) {
        if (errno == ENOENT) return out;
        return sys_error(cat("open ", d));
    }
    while (struct dirent* e = ::readdir(dp)) {
        std::string_view n = e->d_name;
        if (n.size() > suffix.size() && n.substr(n.size() - suffix.size()) == suffix)
            out.emplace_back(n.substr(0, n.size() - suffix.size()));
    }
    ::closedir(dp);
    return out;
}
}  // namespace

Result<Lock> Lock::acquire() {
    std::string d = dir();
    std::string path = d + "/lock";
    for (;;) {
        if (::access(d.c_str(), F_OK) != 0) TRY(sys::mkdir_p(d, 0700));
        int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
            if (errno == ENOENT) continue;  // the directory was just tidied away
            return sys_error(cat("open lock file ", path));
        }
        Lock l;
        l.fd_.reset(fd);
        while (::flock(fd, LOCK_EX) != 0) {
            if (errno != EINTR) return sys_error(cat("lock ", path));
        }
        // The previous holder may have removed the file before we locked it.
        struct stat held, now;
        if (::fstat(fd, &held) == 0 && ::stat(path.c_str(), &now) == 0 &&
            held.st_dev == now.st_dev && held.st_ino == now.st_ino)
            return l;
        l.fd_.reset();  // a removed file: lock the new one
    }
}

void Lock::unlock() {
    if (!fd_.valid()) return;
    if (auto names = stems(""); names) {
        bool only_lock = std::all_of(names->begin(), names->end(),
                                     [](const std::string& n) { return n == "." || n == ".." || n == "lock"; });
        std::string d = dir();
        if (only_lock && ::unlink((d + "/lock").c_str()) == 0) (void)::rmdir(d.c_str());
    }
    fd_.reset();
}

LeaseFile LeaseFile::parse(std::string_view text) {
    LeaseFile f;
    for (const auto& line : parse::split(text, '\n')) {
        auto w = parse::split(line, ' ');
        if (w.size() >= 3 && w[0] == "#" && w[1] == "bridge") {
            for (size_t i = 3; i < w.size(); ++i) {
                if (w[i] == "created") f.created_bridge = true;
                if (w[i].rfind("netns=", 0) == 0) {
                    auto n = parse::u64(w[i].substr(6), "netns");
                    if (n) f.netns = *n;
                }
            }
            continue;
        }
        if (w.size() != 4) continue;
        auto a = parse_addr(w[0], "lease");
        auto pid = parse::u64(w[2], "pid");
        auto start = parse::u64(w[3], "start");
        // A pid that pid_t cannot hold would alias another process.
        if (!a || !pid || !start || *pid > uint64_t(INT32_MAX)) continue;
        f.entries.push_back(Entry{*a, w[1], Owner{pid_t(*pid), *start}});
    }
    return f;
}

std::string LeaseFile::format(const std::string& bridge) const {
    std::string s = cat("# bridge ", bridge, created_bridge ? " created" : " existing", " netns=", netns, "\n");
    for (const auto& e : entries) s += cat(e.addr.addr_str(), " ", e.name, " ", e.owner.pid, " ", e.owner.start, "\n");
    return s;
}

bool LeaseFile::in_use(const Cidr& a) const {
    for (const auto& e : entries)
        if (e.addr.family == a.family && e.addr.bytes == a.bytes) return true;
    return false;
}

std::optional<Cidr> LeaseFile::allocate(const Cidr& subnet, const Cidr& gateway) const {
    uint32_t n = host_count(subnet);
    for (uint32_t i = 1; i <= n; ++i) {
        auto c = nth_host(subnet, i);
        if (!c) break;
        Cidr bare = *c;
        bare.prefix = 32;
        if (bare.bytes == gateway.bytes) continue;
        if (in_use(bare)) continue;
        return c;
    }
    return std::nullopt;
}

size_t LeaseFile::reap(const std::function<bool(const Entry&)>& dead) {
    size_t before = entries.size();
    std::erase_if(entries, dead);
    return before - entries.size();
}

Result<LeaseFile> load(const std::string& bridge) {
    std::string path = cat(dir(), "/", bridge, ".leases");
    auto text = sys::read_file(path.c_str());
    if (!text) {
        if (text.error().err == ENOENT) return LeaseFile{};
        return std::move(text).error();
    }
    return LeaseFile::parse(*text);
}

namespace {
Status write_atomic(const std::string& path, std::string_view content) {
    std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return sys_error(cat("create ", tmp));
    UniqueFd owner(fd);
    if (::write(fd, content.data(), content.size()) != ssize_t(content.size())) return sys_error(cat("write ", tmp));
    owner.reset();
    if (::rename(tmp.c_str(), path.c_str()) != 0) return sys_error(cat("rename ", tmp, " to ", path));
    return {};
}
}  // namespace

// Readers and writers of a lease file hold the lock (but for a supervisor
// whose lock failed at exit, which cleans up anyway), so it is rewritten in
// place: a rename over it, or an O_TRUNC, makes ext4 write the
// new data out at once (auto_da_alloc), 250 us per save on this kind of
// host, where /run may be ext4. One write at offset 0, padded with newlines
// up to the old size (parse() skips empty lines): a kill cannot leave half
// of the old content behind. The padding is then cut off.
Status write_in_place(const std::string& path, std::string_view content) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return sys_error(cat("open ", path));
    UniqueFd owner(fd);
    struct stat st;
    if (::fstat(fd, &st) != 0) return sys_error(cat("stat ", path));
    std::string data(content);
    if (static_cast<off_t>(data.size()) < st.st_size) data.append(static_cast<size_t>(st.st_size) - data.size(), '\n');
    if (::pwrite(fd, data.data(), data.size(), 0) != static_cast<ssize_t>(data.size())) return sys_error(cat("write ", path));
    if (data.size() > content.size() && ::ftruncate(fd, static_cast<off_t>(content.size())) != 0)
        return sys_error(cat("truncate ", path));
    return {};
}

Status save(const std::string& bridge, const LeaseFile& f) {
    std::string path = cat(dir(), "/", bridge, ".leases");
    if (f.entries.empty() && !f.created_bridge) {
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) return sys_error(cat("remove ", path));
        return {};
    }
    TRY(sys::mkdir_p(dir(), 0700));
    return write_in_place(path, f.format(bridge));
}

Owner Record::owner() const {
    Owner o;
    auto p = parse::u64(get("pid"), "pid");
    auto s = parse::u64(get("start"), "start");
    if (p && *p <= uint64_t(INT32_MAX)) o.pid = pid_t(*p);
    if (s) o.start = *s;
    return o;
}

Record Record::parse(std::string name, std::string_view text) {
    Record r;
    r.name = std::move(name);
    for (const auto& line : parse::split(text, '\n')) {
        auto eq = line.find('=');
        if (eq == std::string::npos) continue;
        r.kv[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return r;
}

std::string Record::format() const {
    std::string s;
    for (const auto& [k, v] : kv) s += cat(k, "=", v, "\n");
    return s;
}

Status write_record(const Record& r) {
    TRY(sys::mkdir_p(dir(), 0700));
    return write_atomic(cat(dir(), "/", r.name, ".owner"), r.format());
}

Status remove_record(const std::string& name) {
    std::string path = cat(dir(), "/", name, ".owner");
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return sys_error(cat("remove ", path));
    return {};
}

Result<std::vector<std::string>> lease_files() { return stems(".leases"); }

Result<std::vector<Record>> records() {
    std::vector<Record> out;
    for (const auto& name : TRY(stems(".owner"))) {
        auto text = sys::read_file(cat(dir(), "/", name, ".owner").c_str());
        if (!text) continue;  // removed meanwhile
        out.push_back(Record::parse(name, *text));
    }
    return out;
}

}  // namespace kago::net::lease
