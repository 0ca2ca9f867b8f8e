/*
 * pytcp_native.c -- the C side of pytcp.native: RFC 1071 Internet checksum and ring-buffer
 * copies with wrap-around. Built by native/build_native.py (cffi, out-of-line API mode) into
 * the extension module pytcp._native. Semantics match pytcp/_pyfallback.py exactly.
 *
 * The checksum adds 32-bit words loaded with memcpy (any alignment, any offset) into 64-bit
 * accumulators in the machine's byte order; RFC 1071 section 2(B) shows the one's-complement
 * sum is byte-order independent, so the folded 16-bit result is swapped once at the end on a
 * little-endian machine.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t pytcp_load32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint32_t pytcp_fold64(uint64_t s)
{
    /* End-around-carry folding: a nonzero sum never folds to zero. */
    s = (s & 0xffffffffu) + (s >> 32);
    s = (s & 0xffffffffu) + (s >> 32);
    s = (s & 0xffffu) + (s >> 16);
    s = (s & 0xffffu) + (s >> 16);
    s = (s & 0xffffu) + (s >> 16);
    return (uint32_t)s;
}

uint32_t pytcp_csum_partial(const char *buf, size_t len, uint32_t start)
{
    const unsigned char *p = (const unsigned char *)buf;
    uint64_t a = 0, b = 0, c = 0, d = 0;
    const uint16_t one = 1;
    uint32_t r;

    /* Each term is < 2**32 and a 64 KiB buffer adds < 2**15 of them: no overflow for
     * buffers below 2**32 * 4 bytes per accumulator, far above anything IP carries. */
    while (len >= 32) {
        a += pytcp_load32(p) + pytcp_load32(p + 16);
        b += pytcp_load32(p + 4) + pytcp_load32(p + 20);
        c += pytcp_load32(p + 8) + pytcp_load32(p + 24);
        d += pytcp_load32(p + 12) + pytcp_load32(p + 28);
        p += 32;
        len -= 32;
    }
    while (len >= 4) {
        a += pytcp_load32(p);
        p += 4;
        len -= 4;
    }
    if (len) {
        /* 1..3 trailing bytes: pad with zeros in memory order (RFC 1071: an odd last byte is
         * the high byte of a zero-padded big-endian word). */
        unsigned char tail[4] = {0, 0, 0, 0};
        memcpy(tail, p, len);
        b += pytcp_load32(tail);
    }
    r = pytcp_fold64(a + b + c + d);
    if (*(const unsigned char *)&one) /* little-endian: back to network byte order */
        r = ((r >> 8) | (r << 8)) & 0xffffu;
    return pytcp_fold64((uint64_t)r + start);
}

void pytcp_ring_write(char *ring, size_t size, size_t pos, const char *src, size_t n)
{
    size_t first = size - pos;
    if (n <= first) {
        memcpy(ring + pos, src, n);
    } else {
        memcpy(ring + pos, src, first);
        memcpy(ring, src + first, n - first);
    }
}

void pytcp_ring_read(const char *ring, size_t size, size_t pos, char *dst, size_t n)
{
    size_t first = size - pos;
    if (n <= first) {
        memcpy(dst, ring + pos, n);
    } else {
        memcpy(dst, ring + pos, first);
        memcpy(dst + first, ring, n - first);
    }
}
