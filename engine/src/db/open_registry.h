// OpenRegistry: the database files this process has open, and the only way the engine opens one.
//
// POSIX record locks belong to the process, and closing ANY descriptor of a file drops all of the process's
// locks on it. So the contract, for every descriptor the engine opens on a database file:
//   - one Database per file per process: a second Database::Open of a file this process has open (by any
//     name: the same path, a hard or symbolic link) is refused with kBusy, and is refused BEFORE any
//     descriptor is opened when the path already names the open file;
//   - a descriptor that did get opened on such a file anyway (the file appeared at the path between the stat
//     and the open, or it belongs to an Inspector) is never closed while the file is held: it is parked in
//     the holder's entry and closed by Release, after the holder's own descriptor (and with it the locks) is
//     gone.
// Files are identified by device and inode of the open descriptor when the Env is POSIX (whatever Env object
// opened it), else by the Env's FileIdentity of the path within that Env. Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "rocky/engine/env.h"

namespace rocky::engine {

class OpenRegistry {
 public:
  // Opens `path` for a Database and registers it under *key. kBusy ("already open in this process") when the
  // file is registered already; no descriptor of it is closed on the way. The caller must destroy the File
  // before calling Release(*key).
  static Result<std::unique_ptr<File>> OpenAndAcquire(Env* env, const std::string& path,
                                                      const FileOpenOptions& options, std::string* key);
  // Opens `path` without registering it (for the Inspector, which never locks); *key identifies the file for
  // Dispose.
  static Result<std::unique_ptr<File>> OpenUnregistered(Env* env, const std::string& path,
                                                        const FileOpenOptions& options, std::string* key);
  // Closes a File that OpenUnregistered returned, unless a Database of this process holds the file: then it
  // is kept open until that Database's Release.
  static void Dispose(const std::string& key, std::unique_ptr<File> file);
  // Ends a registration made by OpenAndAcquire, once the holder's File is destroyed; closes the descriptors
  // parked meanwhile.
  static void Release(const std::string& key);
};

}  // namespace rocky::engine
