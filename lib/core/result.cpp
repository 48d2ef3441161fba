#include "core/result.hpp"

#include <cstring>

namespace kago {

std::string Error::message() const {
    if (err == 0) return what;
    return cat(what, ": ", std::strerror(err));
}

Error sys_error(std::string what) { return Error{errno, std::move(what), {}}; }

Error usage_error(std::string what) { return Error{0, std::move(what), {}}; }

Error reported_elsewhere(int status) {
    return Error{0, {}, {}}.with_status(status);
}

}  // namespace kago
