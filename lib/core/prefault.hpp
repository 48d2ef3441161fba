#pragma once
// Prefaulting: map the pages a short-lived process will touch in one system
// call instead of one page fault each.
namespace kago::prefault {

// The executable's code and read-only data (MADV_POPULATE_READ), its
// writable data and the stack's top (MADV_POPULATE_WRITE). Call at a
// program's start and in a forked child.
void image();

}  // namespace kago::prefault
