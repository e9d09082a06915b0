// Libraries rocky loads at first use instead of at start-up: libcurl (the S3 and credential clients), libpq
// (the PostgreSQL warehouse) and OpenSSL's libssl and libcrypto (SigV4's hashes, Valkey's TLS). Linked
// directly, they and the ~30 libraries they bring (Kerberos, LDAP, GnuTLS, nghttp2, libssh2, ...) cost every
// command, `rocky state --table X` included, most of its start-up time and memory (libcrypto alone has 21,000
// relocations, bound at load), though only commands that reach S3, Valkey or PostgreSQL use them.
//
// How: this library defines, with hidden visibility, each function of theirs rocky calls (see
// curl_functions.cc, libpq_functions.cc and openssl_functions.cc), under the libraries' own names and
// signatures from their own headers, so callers include <curl/curl.h> or <libpq-fe.h> and call them as usual.
// The first call loads the library with dlopen and forwards to its function. Code that uses one first calls
// Require(), which says clearly when the library is missing; without it, a missing library makes the
// functions fail the way their documentation allows for (NULL handles, CURLE_FAILED_INIT, CONNECTION_BAD).
#pragma once

#include "rocky/base/status.h"

namespace rocky::dynload {

enum class Library {
  kCurl,    // libcurl.so.4, OpenSSL flavour (libcurl4-openssl-dev builds against it)
  kLibpq,   // libpq.so.5
  kSsl,     // libssl.so.3 (OpenSSL 3; it loads libcrypto.so.3 itself)
  kCrypto,  // libcrypto.so.3
};

// Loads `library` if no call has yet (thread-safe; the outcome of the first load is kept). kNotSupported
// naming the library file, the loader's reason and the Debian package that provides it when it cannot be
// loaded.
base::Status Require(Library library);

// The library's function `name`, loading the library first; nullptr when it cannot be loaded. For the
// forwarding functions; thread-safe.
void* Function(Library library, const char* name);

}  // namespace rocky::dynload
