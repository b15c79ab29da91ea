/*
 * decimal.h: JSON number text to double and to float, correctly rounded,
 * without strtod / strtof for the common cases.
 */
#ifndef WX_DECIMAL_H
#define WX_DECIMAL_H

/* Powers of ten exact in a double: 1e0 .. 1e22 (also response.c's). */
extern const double EXACT_POW10[23];

/* text: a whole, validated JSON number token (NUL-terminated). */
double decimal_to_double(const char *text);
float decimal_to_float(const char *text);

#endif
