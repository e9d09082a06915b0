#include <dlfcn.h>

#include <mutex>
#include <string>

#include "rocky/dynload/dynload.h"

namespace rocky::dynload {
namespace {

struct Loaded {
  std::once_flag once;
  void* handle = nullptr;
  std::string error;  // why it could not be loaded; empty when loaded
};

struct Spec {
  const char* file;     // the SONAME: the major version rocky's headers are for
  const char* package;  // Debian's package that installs it
};

Spec SpecOf(Library library) {
  switch (library) {
    case Library::kCurl: return {"libcurl.so.4", "libcurl4"};
    case Library::kLibpq: return {"libpq.so.5", "libpq5"};
    case Library::kSsl: return {"libssl.so.3", "libssl3"};
    case Library::kCrypto: return {"libcrypto.so.3", "libssl3"};
  }
  return {"?", "?"};
}

Loaded& StateOf(Library library) {
  static Loaded loaded[4];
  return loaded[static_cast<int>(library)];
}

Loaded& Load(Library library) {
  Loaded& loaded = StateOf(library);
  std::call_once(loaded.once, [&] {
    const Spec spec = SpecOf(library);
    // RTLD_LOCAL: its symbols stay out of the global scope, so they never stand in for ours or the reverse.
    loaded.handle = dlopen(spec.file, RTLD_NOW | RTLD_LOCAL);
    if (loaded.handle == nullptr) {
      const char* why = dlerror();
      loaded.error = std::string(spec.file) + " could not be loaded (" + (why != nullptr ? why : "unknown") +
                     "); install the package " + spec.package;
    }
  });
  return loaded;
}

}  // namespace

base::Status Require(Library library) {
  Loaded& loaded = Load(library);
  if (loaded.handle == nullptr) return base::Status::NotSupported(loaded.error);
  return base::Status::OK();
}

void* Function(Library library, const char* name) {
  Loaded& loaded = Load(library);
  if (loaded.handle == nullptr) return nullptr;
  return dlsym(loaded.handle, name);
}

}  // namespace rocky::dynload
