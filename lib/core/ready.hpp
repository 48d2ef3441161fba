// The chain's readiness gate: KAGO_READY_FD.
//
// A supervisor whose set-up takes time (net-setup --veth: a veth, addresses,
// routes, nftables rules) starts the rest of the chain before that set-up is
// done, so that both run at once. It hands the chain the read end of a pipe.
// Kago programs pass it on; the first program that is about to exec
// something that is not a kago program (the payload, or a wrapper such as
// sh) waits on it first: one byte means the set-up is done, end of file
// means it failed, and the supervisor, which reports why, is exiting 125.
// The payload never sees the descriptor or the variable.
#pragma once

#include "core/env.hpp"
#include "core/result.hpp"

namespace kago::ready {

// The inherited gate, taken out of the contract (KAGO_READY_FD is unset in
// it for the rest of the chain): the descriptor it names, or -1 when there
// is none (or the value is not a descriptor). For the program that execs a
// non-kago command, before it cleans the environment.
int take(env::Contract& contract);

// Block until the gate opens; close fd. False when the set-up failed.
// Async-signal-safe: usable after fork() or clone().
bool wait(int fd);

// take() and wait() for a program about to exec a non-kago command. False
// when the set-up failed: the supervisor reports why, and the caller exits
// 125 quietly (reported_elsewhere()).
bool before_payload(env::Contract& contract);

// The supervisor's end.
class Gate {
  public:
    // A pipe whose read end (kept across the child's exec, see
    // Ends::keep_in_child()) is announced in `contract`'s KAGO_READY_FD,
    // which must outlive the Gate. An inherited gate is waited for first, so
    // that a nested supervisor opens only after the outer one.
    static Result<Gate> create(env::Contract& contract);
    Gate() = default;
    Gate(Gate&& o) noexcept;
    Gate& operator=(Gate&& o) noexcept;
    Gate(const Gate&) = delete;
    Gate& operator=(const Gate&) = delete;
    ~Gate();

    // The descriptors, copied for the child before it starts: a child that
    // runs alongside us in our memory (clone(CLONE_VM) without CLONE_VFORK)
    // must not read the Gate, which forked() changes.
    struct Ends {
        int read = -1, write = -1;
        // In the child, before exec: keep the read end across the exec,
        // close the write end. Async-signal-safe.
        void keep_in_child() const;
    };
    Ends ends() const { return Ends{read_, write_}; }
    // In the parent, after the fork: drop the read end and the setting.
    void forked();
    // The set-up is done: the chain may exec the payload.
    void open();
    // The set-up failed: the waiting program exits.
    void fail();
    bool valid() const { return write_ >= 0; }

  private:
    int read_ = -1, write_ = -1;
    env::Contract* contract_ = nullptr;
};

}  // namespace kago::ready
