#include "image/digest.hpp"

// The low-level SHA256_* calls, without OpenSSL 3's deprecation notes (as
// lib/pack/format.cpp).
#define OPENSSL_API_COMPAT 10101
#include <openssl/sha.h>

namespace kago::image {

static_assert(sizeof(SHA256_CTX) <= 112 && alignof(SHA256_CTX) <= 8);

Sha256::Sha256() {
    SHA256_Init(reinterpret_cast<SHA256_CTX*>(ctx_));
}

void Sha256::update(const void* data, size_t n) {
    SHA256_Update(reinterpret_cast<SHA256_CTX*>(ctx_), data, n);
}

std::string Sha256::finish() {
    unsigned char md[SHA256_DIGEST_LENGTH];
    unsigned len = SHA256_DIGEST_LENGTH;
    SHA256_Final(md, reinterpret_cast<SHA256_CTX*>(ctx_));
    static const char hexd[] = "0123456789abcdef";
    std::string out = "sha256:";
    for (unsigned i = 0; i < len; ++i) {
        out.push_back(hexd[md[i] >> 4]);
        out.push_back(hexd[md[i] & 15]);
    }
    return out;
}

std::string sha256(std::string_view bytes) {
    Sha256 h;
    h.update(bytes.data(), bytes.size());
    return h.finish();
}

Status check_digest(std::string_view d, std::string_view what) {
    auto colon = d.find(':');
    if (colon == std::string_view::npos) return usage_error(cat(what, ": '", d, "' is not a digest (ALGORITHM:HEX)"));
    if (d.substr(0, colon) != "sha256")
        return usage_error(cat(what, ": digest algorithm '", d.substr(0, colon), "' is not supported (only sha256)"));
    std::string_view hex = d.substr(colon + 1);
    if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdef") != std::string_view::npos)
        return usage_error(cat(what, ": '", d, "' is not a sha256 digest (64 lowercase hex digits)"));
    return {};
}

std::vector<std::string> chain_ids(const std::vector<std::string>& diff_ids) {
    std::vector<std::string> out;
    for (const auto& d : diff_ids) out.push_back(out.empty() ? d : sha256(cat(out.back(), " ", d)));
    return out;
}

}  // namespace kago::image
