// OpenRegistry: the database files this process has open.
//
// POSIX record locks belong to the process, and closing any descriptor of a file drops all of them; a second
// handle on the same file would silently release the first one's writer lock. So one process opens a file
// once. Thread-safe.
#pragma once

#include <string>

namespace rocky::engine {

class Env;

class OpenRegistry {
 public:
  static std::string Key(const Env* env, const std::string& file_identity);
  // False when the key is already held.
  static bool Acquire(const std::string& key);
  static void Release(const std::string& key);
};

}  // namespace rocky::engine
