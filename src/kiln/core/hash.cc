#include "kiln/core/hash.h"

#include <openssl/evp.h>
#include <xxhash.h>

#include <cassert>

namespace kiln {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

std::string Digest::Hex() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex(64, '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    hex[2 * i] = kDigits[bytes[i] >> 4];
    hex[2 * i + 1] = kDigits[bytes[i] & 15];
  }
  return hex;
}

bool Digest::FromHex(std::string_view hex, Digest* out) {
  if (!IsHexDigest(hex)) return false;
  for (size_t i = 0; i < 32; ++i) {
    out->bytes[i] = static_cast<uint8_t>(HexValue(hex[2 * i]) << 4 | HexValue(hex[2 * i + 1]));
  }
  return true;
}

struct Sha256::State {
  EVP_MD_CTX* context = nullptr;
};

Sha256::Sha256() : state_(std::make_unique<State>()) {
  state_->context = EVP_MD_CTX_new();
  [[maybe_unused]] int ok = EVP_DigestInit_ex(state_->context, EVP_sha256(), nullptr);
  assert(ok == 1);
}

Sha256::~Sha256() { EVP_MD_CTX_free(state_->context); }

void Sha256::Update(std::string_view data) {
  EVP_DigestUpdate(state_->context, data.data(), data.size());
}

Digest Sha256::Finish() {
  Digest digest;
  unsigned int length = 0;
  EVP_DigestFinal_ex(state_->context, digest.bytes.data(), &length);
  assert(length == 32);
  return digest;
}

Digest Sha256Of(std::string_view data) {
  Digest digest;
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest.bytes.data(), &length, EVP_sha256(), nullptr);
  return digest;
}

std::string Sha256Hex(std::string_view data) { return Sha256Of(data).Hex(); }

uint64_t Xxh3(std::string_view data) { return XXH3_64bits(data.data(), data.size()); }

bool IsHexDigest(std::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (HexValue(c) < 0) return false;
  }
  return true;
}

}  // namespace kiln
