#include "core/prefault.hpp"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif

extern "C" char __executable_start[], __data_start[], end[];

namespace kago::prefault {
namespace {
constexpr uintptr_t kPage = 4096;
uintptr_t down(uintptr_t a) { return a & ~(kPage - 1); }
uintptr_t up(uintptr_t a) { return (a + kPage - 1) & ~(kPage - 1); }
}  // namespace

void image() {
    uintptr_t text = down(reinterpret_cast<uintptr_t>(__executable_start));
    uintptr_t data = down(reinterpret_cast<uintptr_t>(__data_start));
    uintptr_t bss_end = up(reinterpret_cast<uintptr_t>(end));
    (void)::madvise(reinterpret_cast<void*>(text), data - text, MADV_POPULATE_READ);
    (void)::madvise(reinterpret_cast<void*>(data), bss_end - data, MADV_POPULATE_WRITE);
    char here;
    uintptr_t sp = down(reinterpret_cast<uintptr_t>(&here));
    uintptr_t lo = sp - 16 * kPage;
    (void)::madvise(reinterpret_cast<void*>(lo), sp + kPage - lo, MADV_POPULATE_WRITE);
}

}  // namespace kago::prefault
