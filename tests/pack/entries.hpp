// Manifest entries for tests (tests/unit/pack_test.cpp and the hostile
// corpus generator tests/pack/hostile.cpp): one builder a type.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "pack/format.hpp"

namespace kago::pack::test {

inline Entry dir(uint32_t parent, std::string name, uint32_t mode = 0755) {
    Entry e;
    e.type = Type::Dir;
    e.parent = parent;
    e.name = std::move(name);
    e.mode = mode;
    return e;
}

inline Entry file(uint32_t parent, std::string name, uint64_t offset, uint64_t size, uint32_t mode = 0644) {
    Entry e;
    e.type = Type::File;
    e.parent = parent;
    e.name = std::move(name);
    e.mode = mode;
    e.offset = offset;
    e.size = size;
    return e;
}

inline Entry symlink(uint32_t parent, std::string name, std::string target) {
    Entry e;
    e.type = Type::Symlink;
    e.parent = parent;
    e.name = std::move(name);
    e.target = std::move(target);
    e.mode = 0777;
    return e;
}

inline Entry hardlink(uint32_t parent, std::string name, uint32_t link) {
    Entry e;
    e.type = Type::Hardlink;
    e.parent = parent;
    e.name = std::move(name);
    e.link = link;
    return e;
}

}  // namespace kago::pack::test
