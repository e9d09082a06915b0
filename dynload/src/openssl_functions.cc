// The OpenSSL functions rocky calls, forwarding to libssl.so.3 and libcrypto.so.3 loaded at first use (see
// dynload.h). Each has the signature OpenSSL's headers declare (the compiler checks them against them);
// hidden, so that the executable never exports them and the loaded libraries keep calling their own. Without
// the libraries each fails as its documentation allows (NULL objects, 0 or -1, no error queued); the callers
// that need one call Require() first, which says why. SSL_set_mode, SSL_set_tlsext_host_name and
// SSL_CTX_set_min_proto_version are macros over SSL_ctrl and SSL_CTX_ctrl, defined here.
#define OPENSSL_SUPPRESS_DEPRECATED  // SHA256() and HMAC(), which SigV4 uses, are deprecated in OpenSSL 3
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cstring>

#include "rocky/dynload/dynload.h"

namespace {

using rocky::dynload::Library;

template <typename F>
F Fn(Library library, F /*declared*/, const char* name) {
  return reinterpret_cast<F>(rocky::dynload::Function(library, name));
}

constexpr char kNotLoaded[] = "OpenSSL (libssl.so.3, libcrypto.so.3) could not be loaded";

}  // namespace

#define ROCKY_HIDDEN __attribute__((visibility("hidden")))
// One forwarding function of `library`: `fallback` is returned when it cannot be loaded.
#define ROCKY_FORWARD(library, ret, name, params, args, fallback) \
  ROCKY_HIDDEN ret name params {                                  \
    auto f = Fn(library, &name, #name);                           \
    return f != nullptr ? f args : fallback;                      \
  }
#define ROCKY_FORWARD_VOID(library, name, params, args)           \
  ROCKY_HIDDEN void name params {                                 \
    if (auto f = Fn(library, &name, #name); f != nullptr) f args; \
  }
#define ROCKY_CRYPTO Library::kCrypto
#define ROCKY_SSL Library::kSsl

extern "C" {

// libcrypto: errors, digests, HMAC, random bytes, certificate checks.
ROCKY_FORWARD_VOID(ROCKY_CRYPTO, ERR_clear_error, (void), ())
ROCKY_FORWARD(ROCKY_CRYPTO, unsigned long, ERR_get_error, (void), (), 0)
ROCKY_FORWARD(ROCKY_CRYPTO, unsigned long, ERR_peek_error, (void), (), 0)
ROCKY_HIDDEN void ERR_error_string_n(unsigned long e, char* buf, size_t len) {
  if (auto f = Fn(ROCKY_CRYPTO, &ERR_error_string_n, "ERR_error_string_n"); f != nullptr) {
    f(e, buf, len);
  } else if (len > 0) {
    std::strncpy(buf, kNotLoaded, len - 1);
    buf[len - 1] = '\0';
  }
}
ROCKY_FORWARD(ROCKY_CRYPTO, EVP_MD_CTX*, EVP_MD_CTX_new, (void), (), nullptr)
ROCKY_FORWARD_VOID(ROCKY_CRYPTO, EVP_MD_CTX_free, (EVP_MD_CTX * ctx), (ctx))
ROCKY_FORWARD(ROCKY_CRYPTO, const EVP_MD*, EVP_sha256, (void), (), nullptr)
ROCKY_FORWARD(ROCKY_CRYPTO, int, EVP_DigestInit_ex, (EVP_MD_CTX * ctx, const EVP_MD* type, ENGINE* impl),
              (ctx, type, impl), 0)
ROCKY_FORWARD(ROCKY_CRYPTO, int, EVP_DigestUpdate, (EVP_MD_CTX * ctx, const void* d, size_t cnt),
              (ctx, d, cnt), 0)
ROCKY_FORWARD(ROCKY_CRYPTO, int, EVP_DigestFinal_ex, (EVP_MD_CTX * ctx, unsigned char* md, unsigned int* s),
              (ctx, md, s), 0)
ROCKY_FORWARD(ROCKY_CRYPTO, unsigned char*, HMAC,
              (const EVP_MD* evp_md, const void* key, int key_len, const unsigned char* data, size_t data_len,
               unsigned char* md, unsigned int* md_len),
              (evp_md, key, key_len, data, data_len, md, md_len), nullptr)
ROCKY_FORWARD(ROCKY_CRYPTO, unsigned char*, SHA256, (const unsigned char* d, size_t n, unsigned char* md),
              (d, n, md), nullptr)
ROCKY_FORWARD(ROCKY_CRYPTO, int, RAND_bytes, (unsigned char* buf, int num), (buf, num), 0)
ROCKY_FORWARD(ROCKY_CRYPTO, int, X509_VERIFY_PARAM_set1_host,
              (X509_VERIFY_PARAM * param, const char* name, size_t namelen), (param, name, namelen), 0)
ROCKY_FORWARD(ROCKY_CRYPTO, int, X509_VERIFY_PARAM_set1_ip_asc,
              (X509_VERIFY_PARAM * param, const char* ipasc), (param, ipasc), 0)
ROCKY_FORWARD_VOID(ROCKY_CRYPTO, X509_VERIFY_PARAM_set_hostflags,
                   (X509_VERIFY_PARAM * param, unsigned int flags), (param, flags))
ROCKY_FORWARD(ROCKY_CRYPTO, const char*, X509_verify_cert_error_string, (long n), (n), kNotLoaded)

// libssl: the TLS connection.
ROCKY_FORWARD(ROCKY_SSL, const SSL_METHOD*, TLS_client_method, (void), (), nullptr)
ROCKY_FORWARD(ROCKY_SSL, SSL_CTX*, SSL_CTX_new, (const SSL_METHOD* meth), (meth), nullptr)
ROCKY_FORWARD_VOID(ROCKY_SSL, SSL_CTX_free, (SSL_CTX * ctx), (ctx))
ROCKY_FORWARD(ROCKY_SSL, long, SSL_CTX_ctrl, (SSL_CTX * ctx, int cmd, long larg, void* parg),
              (ctx, cmd, larg, parg), 0)
ROCKY_FORWARD_VOID(ROCKY_SSL, SSL_CTX_set_verify, (SSL_CTX * ctx, int mode, SSL_verify_cb callback),
                   (ctx, mode, callback))
ROCKY_FORWARD(ROCKY_SSL, int, SSL_CTX_set_default_verify_paths, (SSL_CTX * ctx), (ctx), 0)
ROCKY_FORWARD(ROCKY_SSL, int, SSL_CTX_load_verify_locations,
              (SSL_CTX * ctx, const char* CAfile, const char* CApath), (ctx, CAfile, CApath), 0)
ROCKY_FORWARD(ROCKY_SSL, SSL*, SSL_new, (SSL_CTX * ctx), (ctx), nullptr)
ROCKY_FORWARD_VOID(ROCKY_SSL, SSL_free, (SSL * ssl), (ssl))
ROCKY_FORWARD(ROCKY_SSL, long, SSL_ctrl, (SSL * ssl, int cmd, long larg, void* parg), (ssl, cmd, larg, parg),
              0)
ROCKY_FORWARD(ROCKY_SSL, int, SSL_set_fd, (SSL * s, int fd), (s, fd), 0)
ROCKY_FORWARD(ROCKY_SSL, X509_VERIFY_PARAM*, SSL_get0_param, (SSL * ssl), (ssl), nullptr)
ROCKY_FORWARD(ROCKY_SSL, int, SSL_connect, (SSL * ssl), (ssl), -1)
ROCKY_FORWARD(ROCKY_SSL, int, SSL_is_init_finished, (const SSL* s), (s), 0)
ROCKY_FORWARD(ROCKY_SSL, long, SSL_get_verify_result, (const SSL* ssl), (ssl), X509_V_ERR_UNSPECIFIED)
ROCKY_FORWARD(ROCKY_SSL, int, SSL_read, (SSL * ssl, void* buf, int num), (ssl, buf, num), -1)
ROCKY_FORWARD(ROCKY_SSL, int, SSL_write, (SSL * ssl, const void* buf, int num), (ssl, buf, num), -1)
ROCKY_FORWARD(ROCKY_SSL, int, SSL_get_error, (const SSL* s, int ret_code), (s, ret_code), SSL_ERROR_SSL)
ROCKY_FORWARD(ROCKY_SSL, int, SSL_shutdown, (SSL * s), (s), -1)

}  // extern "C"
