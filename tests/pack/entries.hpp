// Manifest entries for tests (tests/unit/pack_test.cpp and the hostile
// corpus generator tests/pack/hostile.cpp): one builder a type.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "pack/format.hpp"

namespace kago::pack::test {

inline Entry entry(Type type, uint32_t parent, std::string name, uint32_t mode) {
    Entry e;
    e.type = type;
    e.parent = parent;
    e.name = std::move(name);
    e.mode = mode;
    return e;
}

inline Entry dir(uint32_t parent, std::string name, uint32_t mode = 0755) {
    return entry(Type::Dir, parent, std::move(name), mode);
}

inline Entry file(uint32_t parent, std::string name, uint64_t offset, uint64_t size, uint32_t mode = 0644) {
    Entry e = entry(Type::File, parent, std::move(name), mode);
    e.offset = offset;
    e.size = size;
    return e;
}

inline Entry symlink(uint32_t parent, std::string name, std::string target) {
    Entry e = entry(Type::Symlink, parent, std::move(name), 0777);
    e.target = std::move(target);
    return e;
}

inline Entry hardlink(uint32_t parent, std::string name, uint32_t link) {
    Entry e = entry(Type::Hardlink, parent, std::move(name), 0);
    e.link = link;
    return e;
}

}  // namespace kago::pack::test
