// libFuzzer target: the ELF reader of pack-selfexec --from-host
// (lib/pack/elf read_elf): the interpreter, DT_NEEDED and RUNPATH of a
// program and of each library it finds, any of which may be a hostile
// file.
#include "fuzz.hpp"
#include "pack/tree.hpp"

using namespace kago;
using namespace kago::pack;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (auto e = read_elf(std::span<const uint8_t>(data, size), "fuzz")) {
        for (const auto& n : e->needed) FUZZ_CHECK(n.find('\0') == std::string::npos);
        FUZZ_CHECK(e->interpreter.find('\0') == std::string::npos);
    }
    return 0;
}
