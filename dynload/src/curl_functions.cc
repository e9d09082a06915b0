// The libcurl functions rocky calls, forwarding to libcurl.so.4 loaded at first use (see dynload.h). Each has
// the signature <curl/curl.h> declares; hidden, so that the executable never exports them and the loaded
// libcurl keeps calling its own.
#include <cstdarg>

// The header's type-checking macros would replace curl_easy_setopt and curl_easy_getinfo, defined here.
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

#include "rocky/dynload/dynload.h"

namespace {

template <typename F>
F Fn(F /*declared*/, const char* name) {
  return reinterpret_cast<F>(rocky::dynload::Function(rocky::dynload::Library::kCurl, name));
}

}  // namespace

#define ROCKY_HIDDEN __attribute__((visibility("hidden")))

// va_start after an enum parameter (CURLoption, CURLINFO): <curl/curl.h> declares these two functions so, and
// libcurl's own definitions do the same. Both enums hold int values, which are passed as int.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wvarargs"
#endif

extern "C" {

ROCKY_HIDDEN CURLcode curl_global_init(long flags) {
  auto f = Fn(&curl_global_init, "curl_global_init");
  return f != nullptr ? f(flags) : CURLE_FAILED_INIT;
}

ROCKY_HIDDEN CURL* curl_easy_init(void) {
  auto f = Fn(&curl_easy_init, "curl_easy_init");
  return f != nullptr ? f() : nullptr;
}

ROCKY_HIDDEN void curl_easy_cleanup(CURL* curl) {
  // A handle exists only if the library was loaded.
  if (curl != nullptr) Fn(&curl_easy_cleanup, "curl_easy_cleanup")(curl);
}

ROCKY_HIDDEN CURLcode curl_easy_perform(CURL* curl) {
  auto f = Fn(&curl_easy_perform, "curl_easy_perform");
  return f != nullptr ? f(curl) : CURLE_FAILED_INIT;
}

// The argument's type follows from the option's number, as libcurl itself reads it (CURLOPTTYPE_*).
ROCKY_HIDDEN CURLcode curl_easy_setopt(CURL* curl, CURLoption option, ...) {
  auto f = Fn(&curl_easy_setopt, "curl_easy_setopt");
  if (f == nullptr) return CURLE_FAILED_INIT;
  va_list args;
  va_start(args, option);
  CURLcode rc;
  if (option < CURLOPTTYPE_OBJECTPOINT) {
    rc = f(curl, option, va_arg(args, long));
  } else if (option < CURLOPTTYPE_FUNCTIONPOINT) {
    rc = f(curl, option, va_arg(args, void*));
  } else if (option < CURLOPTTYPE_OFF_T) {
    using AnyFunction = void (*)(void);
    rc = f(curl, option, va_arg(args, AnyFunction));
  } else if (option < CURLOPTTYPE_BLOB) {
    rc = f(curl, option, va_arg(args, curl_off_t));
  } else {
    rc = f(curl, option, va_arg(args, void*));  // struct curl_blob*
  }
  va_end(args);
  return rc;
}

// Every CURLINFO takes a pointer to where the value goes.
ROCKY_HIDDEN CURLcode curl_easy_getinfo(CURL* curl, CURLINFO info, ...) {
  auto f = Fn(&curl_easy_getinfo, "curl_easy_getinfo");
  if (f == nullptr) return CURLE_FAILED_INIT;
  va_list args;
  va_start(args, info);
  void* out = va_arg(args, void*);
  va_end(args);
  return f(curl, info, out);
}

ROCKY_HIDDEN const char* curl_easy_strerror(CURLcode code) {
  auto f = Fn(&curl_easy_strerror, "curl_easy_strerror");
  return f != nullptr ? f(code) : "libcurl could not be loaded";
}

ROCKY_HIDDEN struct curl_slist* curl_slist_append(struct curl_slist* list, const char* text) {
  auto f = Fn(&curl_slist_append, "curl_slist_append");
  return f != nullptr ? f(list, text) : nullptr;
}

ROCKY_HIDDEN void curl_slist_free_all(struct curl_slist* list) {
  if (list != nullptr) Fn(&curl_slist_free_all, "curl_slist_free_all")(list);
}

}  // extern "C"
