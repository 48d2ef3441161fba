/* Link-time trims for the static runner (see mk/pack-selfexec.mk), which
 * must stay under 1.5 MB with glibc, libzstd, libsodium and libseccomp
 * linked in statically.
 *
 * 1. Legacy zstd formats (v0.5 to v0.7): libzstd.a carries their decoders,
 *    90 KB. A packed file never holds one: these stand-ins make a legacy
 *    frame an error instead of pulling the decoders in.
 * 2. strerror() and assert() without gettext: glibc translates their text
 *    through the locale machinery (gconv, message catalogs, wide printf).
 *    The runner prints the C locale's text. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ERR ((size_t)-1)
#define LEGACY(v)                                                                                   \
    void* ZSTDv0##v##_createDCtx(void) { return NULL; }                                           \
    size_t ZSTDv0##v##_freeDCtx(void* d) { (void)d; return 0; }                                   \
    size_t ZSTDv0##v##_decompress_usingDict(void) { return ERR; }                                 \
    size_t ZSTDv0##v##_getFrameParams(void) { return ERR; }                                       \
    void ZSTDv0##v##_findFrameSizeInfoLegacy(const void* s, size_t n, size_t* c,                  \
                                             unsigned long long* d) {                             \
        (void)s; (void)n;                                                                         \
        *c = ERR;                                                                                 \
        *d = (unsigned long long)-2;                                                              \
    }                                                                                             \
    void* ZBUFFv0##v##_createDCtx(void) { return NULL; }                                          \
    size_t ZBUFFv0##v##_freeDCtx(void* d) { (void)d; return 0; }                                  \
    size_t ZBUFFv0##v##_decompressInitDictionary(void) { return ERR; }                            \
    size_t ZBUFFv0##v##_decompressContinue(void) { return ERR; }
LEGACY(5)
LEGACY(6)
LEGACY(7)

char* strerror(int e) {
    const char* d = strerrordesc_np(e);
    return (char*)(d ? d : "Unknown error");
}

void __assert_fail(const char* expr, const char* file, unsigned line, const char* fn) {
    char buf[512];
    int n = snprintf(buf, sizeof buf, "%s:%u: %s: assertion '%s' failed\n", file, line, fn, expr);
    if (n > 0) (void)!write(2, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    abort();
}

/* 3. libsodium's utils.o (sodium_memzero) drags in its whole runtime
 *    (random numbers, every cipher's CPU dispatch), 150 KB, for a runner
 *    that only hashes with SHA-256 and checks Ed25519 signatures. */
void sodium_memzero(void* p, size_t n) { explicit_bzero(p, n); }
int sodium_memcmp(const void* a, const void* b, size_t n) {
    const volatile unsigned char* x = a;
    const volatile unsigned char* y = b;
    unsigned char d = 0;
    for (size_t i = 0; i < n; ++i) d |= x[i] ^ y[i];
    return (1 & ((d - 1) >> 8)) - 1;
}
int sodium_is_zero(const unsigned char* p, size_t n) {
    volatile unsigned char d = 0;
    for (size_t i = 0; i < n; ++i) d |= p[i];
    return 1 & ((d - 1) >> 8);
}
