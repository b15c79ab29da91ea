/*
 * base64.c: standard base64 encoding and decoding.
 */
#include "base64.h"

static const char ALPHABET[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 6-bit value of c, or -1. */
static int sextet(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

size_t base64_decoded_size(const char *s, size_t n)
{
    while (n > 0 && s[n - 1] == '=') n--;
    return n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
}

/* 6-bit value of every byte, -1 for bytes outside the alphabet; filled
   on first use. */
static int8_t SEXTET[256];
static int sextet_ready;

static void sextet_init(void)
{
    for (int c = 0; c < 256; c++)
        SEXTET[c] = (int8_t)sextet((unsigned char)c);
    sextet_ready = 1;
}

int base64_valid(const char *s, size_t n, size_t *bad)
{
    size_t len = n;
    while (len > 0 && s[len - 1] == '=' && n - len < 2) len--;
    if (len % 4 == 1 || (n != len && n % 4 != 0)) {
        *bad = n;
        return 0;
    }
    if (!sextet_ready)
        sextet_init();
    for (size_t i = 0; i < len; i++)
        if (SEXTET[(unsigned char)s[i]] < 0) {
            *bad = i;
            return 0;
        }
    return 1;
}

long base64_decode(const char *s, size_t n, uint8_t *out, size_t *bad)
{
    size_t len = n;
    while (len > 0 && s[len - 1] == '=' && n - len < 2) len--;
    if (len % 4 == 1 || (n != len && n % 4 != 0)) {
        *bad = n;
        return -1;
    }
    if (!sextet_ready)
        sextet_init();
    const unsigned char *u = (const unsigned char *)s;
    uint8_t *o = out;
    size_t i = 0;
    /* fast path: whole quads, one table lookup per character */
    for (; i + 4 <= len; i += 4) {
        int a = SEXTET[u[i]], b = SEXTET[u[i + 1]];
        int c = SEXTET[u[i + 2]], d = SEXTET[u[i + 3]];
        if ((a | b | c | d) < 0)
            break;  /* the slow loop below finds the bad character */
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 |
                     (uint32_t)d;
        o[0] = (uint8_t)(v >> 16);
        o[1] = (uint8_t)(v >> 8);
        o[2] = (uint8_t)v;
        o += 3;
    }
    uint32_t acc = 0;
    int bits = 0;
    for (; i < len; i++) {
        int v = SEXTET[u[i]];
        if (v < 0) {
            *bad = i;
            return -1;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *o++ = (uint8_t)(acc >> bits);
        }
    }
    return (long)(o - out);
}

size_t base64_encoded_size(size_t n)
{
    return (n + 2) / 3 * 4;
}

void base64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = ALPHABET[v >> 18];
        *out++ = ALPHABET[v >> 12 & 63];
        *out++ = ALPHABET[v >> 6 & 63];
        *out++ = ALPHABET[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        *out++ = ALPHABET[v >> 18];
        *out++ = ALPHABET[v >> 12 & 63];
        *out++ = i + 1 < n ? ALPHABET[v >> 6 & 63] : '=';
        *out++ = '=';
    }
}
