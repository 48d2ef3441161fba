// libFuzzer target: net-setup's host bookkeeping files (lib/net/lease):
// the lease file of a bridge (RUNTIME/leases/BRIDGE.leases) and the owner
// record of a container (NAME.owner). net-setup reads them back after a
// crash or a kill, from whatever state they were left in.
#include "fuzz.hpp"
#include "net/lease.hpp"

using namespace kago;
using namespace kago::net;
using namespace kago::net::lease;

namespace {

bool same(const LeaseFile& a, const LeaseFile& b) {
    if (a.created_bridge != b.created_bridge || a.netns != b.netns || a.entries.size() != b.entries.size())
        return false;
    for (size_t i = 0; i < a.entries.size(); ++i) {
        const auto &x = a.entries[i], &y = b.entries[i];
        if (!(x.addr == y.addr) || x.name != y.name || x.owner.pid != y.owner.pid ||
            x.owner.start != y.owner.start)
            return false;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto in = fuzz::choose(data, size, "lr");
    auto text = in.text;
    switch (in.kind) {
    case 0: {
        auto f = LeaseFile::parse(text);
        // What is written reads back the same.
        FUZZ_CHECK(same(LeaseFile::parse(f.format("kago0")), f));
        // A new address is free, inside the subnet, and not the gateway.
        auto subnet = *parse_cidr("10.88.0.0/24", "subnet");
        auto gateway = *parse_cidr("10.88.0.1", "gateway");
        if (auto a = f.allocate(subnet, gateway)) {
            Cidr bare = *a;
            bare.prefix = 32;
            FUZZ_CHECK(!f.in_use(bare) && subnet.contains(*a) && bare.bytes != gateway.bytes);
        }
        size_t before = f.entries.size();
        size_t gone = f.reap([](const LeaseFile::Entry& e) { return e.owner.pid % 2 == 0; });
        FUZZ_CHECK(before - gone == f.entries.size());
        break;
    }
    case 1: {
        auto r = Record::parse("web", text);
        auto again = Record::parse("web", r.format());
        FUZZ_CHECK(again.kv == r.kv);
        (void)r.owner();
        break;
    }
    }
    return 0;
}
