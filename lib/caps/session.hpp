// A session of its own for the payload (cap-drop --new-session): no
// controlling terminal, so that it cannot push input into the caller's
// terminal (TIOCSTI) nor take the terminal back (TIOCSCTTY needs the
// caller's session).
#pragma once

#include <optional>

#include "core/result.hpp"

namespace kago::caps {

// setsid(2). A process group leader cannot start a session: it forks, the
// child starts the session and goes on (nullopt), and the parent returns
// the child's wait status once the child has ended, having forwarded the
// signals sent to it meanwhile. The parent closes its descriptors above 2
// first, as the child's exec would.
Result<std::optional<int>> new_session();

}  // namespace kago::caps
