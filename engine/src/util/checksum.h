// The engine's one checksum: XXH3-64, seeded. Seeding page checksums with the page id makes a page written
// to the wrong place (a misdirected write) fail verification even though its bytes are intact.
#pragma once

#include <xxhash.h>

#include <cstddef>
#include <cstdint>

namespace rocky::engine {

inline uint64_t Checksum64(const void* data, size_t n, uint64_t seed) {
  return XXH3_64bits_withSeed(data, n, seed);
}

}  // namespace rocky::engine
