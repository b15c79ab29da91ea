/*
 * base64.h: standard base64 (RFC 4648, '+' '/' and '=' padding).
 */
#ifndef WX_BASE64_H
#define WX_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Bytes decoded from n characters (upper bound; exact with padding). */
size_t base64_decoded_size(const char *s, size_t n);

/* Decode n characters into out; returns bytes written, or -1 on a bad
   character (its position in *bad) or a bad length. Padding optional. */
long base64_decode(const char *s, size_t n, uint8_t *out, size_t *bad);

/* 1 when n characters are valid base64 (as base64_decode accepts them),
   else 0 with the position of the first bad character in *bad (n for a
   bad length). */
int base64_valid(const char *s, size_t n, size_t *bad);

/* Characters needed for n bytes, with padding. */
size_t base64_encoded_size(size_t n);

/* Encode n bytes into out (base64_encoded_size(n) characters, no NUL). */
void base64_encode(const uint8_t *in, size_t n, char *out);

#endif
