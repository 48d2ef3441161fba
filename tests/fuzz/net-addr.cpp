// libFuzzer target: net-setup's option values (lib/net/addr): --subnet,
// --ip and other addresses, --publish, interface names; and the tag of
// the nftables rules (lib/net/nft), read back from the kernel's rule set,
// which other programs may also write.
#include <cctype>

#include "fuzz.hpp"
#include "net/addr.hpp"
#include "net/nft.hpp"

using namespace kago;
using namespace kago::net;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto in = fuzz::choose(data, size, "capivt");
    auto text = in.text;
    switch (in.kind) {
    case 0:
        if (auto c = parse_cidr(text, "--subnet")) {
            FUZZ_CHECK(c->prefix >= 0 && c->prefix <= c->max_prefix());
            FUZZ_CHECK(fuzz::gives(parse_cidr(c->str(), "again"), *c));
            auto net = c->network();
            FUZZ_CHECK(net.contains(*c) && c->contains(net));
            if (c->family == AF_INET) {
                uint32_t n = host_count(*c);
                for (uint32_t i : {1u, 2u, n}) {
                    if (i == 0 || i > n) continue;
                    auto h = nth_host(*c, i);
                    FUZZ_CHECK(h && c->contains(*h));
                }
            }
        }
        break;
    case 1:
        if (auto a = parse_addr(text, "--ip")) {
            FUZZ_CHECK(a->prefix == a->max_prefix());
            FUZZ_CHECK(fuzz::gives(parse_addr(a->addr_str(), "again"), *a));
        }
        break;
    case 2:
        if (auto p = parse_publish(text)) {
            auto again = parse_publish(p->str());
            FUZZ_CHECK(again && again->str() == p->str());
        }
        break;
    case 3:
        if (validate_ifname(text, "--bridge")) {
            FUZZ_CHECK(!text.empty() && text.size() <= 15 && text != "." && text != "..");
            // The kernel's dev_valid_name(): no '/', ':', NUL, or space as
            // the kernel's isspace() sees it (with 0xa0).
            for (char c : text)
                FUZZ_CHECK(c != '/' && c != ':' && c != '\0' && c != '\xa0' && !isspace(static_cast<unsigned char>(c)));
        }
        break;
    case 4: {
        // The host end of a veth is a valid name whatever the container's name.
        auto name = veth_host_name(text);
        FUZZ_CHECK(validate_ifname(name, "veth").ok());
        break;
    }
    case 5:
        if (auto t = nft::parse_tag(text)) {
            auto again = nft::parse_tag(t->str());
            FUZZ_CHECK(again && again->name == t->name && again->pid == t->pid && again->start == t->start);
        }
        break;
    }
    return 0;
}
