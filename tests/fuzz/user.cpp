// libFuzzer target: cap-drop --user USER[:GROUP] and --groups LIST,
// resolved in the container's own /etc/passwd and /etc/group
// (lib/caps/user), which the image's author wrote.
//
// The input: the option value, a NUL byte, the passwd file, a NUL byte, the
// group file. The files are memfds, named by their /proc/self/fd path.
#include <sys/mman.h>
#include <unistd.h>

#include "caps/user.hpp"
#include "fuzz.hpp"

using namespace kago;
using namespace kago::caps;

namespace {

struct MemFile {
    int fd = memfd_create("fuzz", MFD_CLOEXEC);
    std::string path = "/proc/self/fd/" + std::to_string(fd);
    void set(std::string_view s) {
        FUZZ_CHECK(ftruncate(fd, 0) == 0);
        FUZZ_CHECK(pwrite(fd, s.data(), s.size(), 0) == static_cast<ssize_t>(s.size()));
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static MemFile passwd, group;
    auto p = fuzz::pieces(std::string_view(reinterpret_cast<const char*>(data), size), '\0');
    p.resize(3);
    passwd.set(p[1]);
    group.set(p[2]);
    UserFiles files{passwd.path, group.path};
    // No id that set*id(2) reads as "leave unchanged": a switch that does
    // nothing would leave the payload root.
    constexpr uint32_t kUnchanged = 0xffffffffu;
    if (auto id = resolve_user(p[0], files)) FUZZ_CHECK(id->uid != kUnchanged && id->gid != kUnchanged);
    if (auto g = resolve_groups(p[0], files))
        for (auto gid : *g) FUZZ_CHECK(gid != kUnchanged);
    return 0;
}
