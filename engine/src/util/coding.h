// Little-endian fixed-width encoding. Every integer on disk is little-endian (format-spec/FORMAT.md);
// these helpers are the only place that knows it. memcpy keeps unaligned access defined.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace rocky::engine {

static_assert(std::endian::native == std::endian::little, "the engine assumes a little-endian host");

inline void EncodeU16(char* dst, uint16_t v) { std::memcpy(dst, &v, sizeof v); }
inline void EncodeU32(char* dst, uint32_t v) { std::memcpy(dst, &v, sizeof v); }
inline void EncodeU64(char* dst, uint64_t v) { std::memcpy(dst, &v, sizeof v); }

inline uint16_t DecodeU16(const char* src) {
  uint16_t v;
  std::memcpy(&v, src, sizeof v);
  return v;
}
inline uint32_t DecodeU32(const char* src) {
  uint32_t v;
  std::memcpy(&v, src, sizeof v);
  return v;
}
inline uint64_t DecodeU64(const char* src) {
  uint64_t v;
  std::memcpy(&v, src, sizeof v);
  return v;
}

}  // namespace rocky::engine
