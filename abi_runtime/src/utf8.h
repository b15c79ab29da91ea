/*
 * utf8.h: decoding and encoding UTF-8 code points, for the text ops
 * (ops_string_text.c, ops_regex.c). Header-only, static inline.
 */
#ifndef WX_UTF8_H
#define WX_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * Decode the code point starting at s[0] (n > 0 bytes available) into *cp.
 * Returns its length in bytes (1 to 4), or 0 for invalid UTF-8: a stray
 * continuation byte, a truncated sequence, an overlong form, a surrogate
 * or a value above U+10FFFF.
 */
static inline int utf8_decode(const unsigned char *s, size_t n, int32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    if (len == 0 || c > 0xF4 || (size_t)len > n)
        return 0;
    int32_t v = c & (0x7F >> len);
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    static const int32_t min_of_len[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min_of_len[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/* Encode cp (a valid code point) into out (4 bytes); returns the length. */
static inline int utf8_encode(int32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Byte offset of the first invalid sequence of s[0..n), or -1 if valid. */
static inline ptrdiff_t utf8_invalid_at(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    int32_t cp;
    for (size_t i = 0; i < n;) {
        int len = utf8_decode(u + i, n - i, &cp);
        if (!len)
            return (ptrdiff_t)i;
        i += (size_t)len;
    }
    return -1;
}

#endif
