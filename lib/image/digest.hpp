// Content addresses: SHA-256 digests ("sha256:" and 64 lowercase hex
// digits), hashed while the bytes stream past, and the chain IDs that key
// the unpacked layers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace kago::image {

// A running SHA-256: OpenSSL's SHA256_* calls (its SHA-NI and AVX2 code),
// not EVP: EVP's first use reads openssl.cnf and sets up the providers,
// which was most of what resolving an image cost a chain's start.
class Sha256 {
  public:
    Sha256();
    void update(const void* data, size_t n);
    // "sha256:HEX". The hash cannot be updated afterwards.
    std::string finish();

  private:
    alignas(8) unsigned char ctx_[112];  // a SHA256_CTX
};

std::string sha256(std::string_view bytes);

// "sha256:HEX" with exactly 64 lowercase hex digits; what names where the
// digest came from. Other algorithms are refused by name.
Status check_digest(std::string_view d, std::string_view what);
// The 64 hex digits of a checked digest.
inline std::string_view hex_of(std::string_view d) { return d.substr(7); }

// The chain IDs of a stack of layers (OCI image spec, "ChainID"): the
// first is the first diff_id, each next one the digest of
// "PARENT_CHAIN DIFF_ID".
std::vector<std::string> chain_ids(const std::vector<std::string>& diff_ids);

}  // namespace kago::image
