/*
 * simd.h: the only file that includes wasm_simd128.h. Kernels use these
 * names inside #ifdef __wasm_simd128__ and keep a scalar twin outside.
 */
#ifndef WX_SIMD_H
#define WX_SIMD_H

#ifdef __wasm_simd128__
#include <wasm_simd128.h>

#define f32x4_splat wasm_f32x4_splat
#define f32x4_add wasm_f32x4_add
#define f32x4_mul wasm_f32x4_mul
#define f32x4_max wasm_f32x4_max
#define v128_load wasm_v128_load
#define v128_store wasm_v128_store

/* Broadcast lane i of v to all four lanes. */
#define lane_splat(v, i) wasm_i32x4_shuffle((v), (v), (i), (i), (i), (i))

/* Lanes 0, 2 of a then 0, 2 of b: every other float of a[0..3], b[0..3]. */
#define f32x4_even(a, b) wasm_i32x4_shuffle((a), (b), 0, 2, 4, 6)
/* Lanes 1, 3 of a then 1, 3 of b: the floats f32x4_even leaves out. */
#define f32x4_odd(a, b) wasm_i32x4_shuffle((a), (b), 1, 3, 5, 7)
/* a0 b0 a1 b1 and a2 b2 a3 b3: two vectors interleaved. */
#define f32x4_zip_lo(a, b) wasm_i32x4_shuffle((a), (b), 0, 4, 1, 5)
#define f32x4_zip_hi(a, b) wasm_i32x4_shuffle((a), (b), 2, 6, 3, 7)

/* A vector of four floats. */
#define f32x4_make wasm_f32x4_make

/* More lane-wise float ops (exp_f32x4 in ops_reduce.c, norms). */
#define f32x4_sub wasm_f32x4_sub
#define f32x4_div wasm_f32x4_div
#define f32x4_lt wasm_f32x4_lt
#define f32x4_nearest wasm_f32x4_nearest
#define f32x4_hsum(v) (wasm_f32x4_extract_lane((v), 0) + \
    wasm_f32x4_extract_lane((v), 1) + wasm_f32x4_extract_lane((v), 2) + \
    wasm_f32x4_extract_lane((v), 3))
#define i32x4_from_f32x4 wasm_i32x4_trunc_sat_f32x4
#define i32x4_add wasm_i32x4_add
#define i32x4_shl wasm_i32x4_shl
#define i32x4_splat wasm_i32x4_splat
#define v128_andnot wasm_v128_andnot

/* Four copies of the float at p. */
#define f32x4_load_splat(p) wasm_v128_load32_splat(p)

/* pmax(a, b) = a < b ? b : a; pmin(a, b) = b < a ? b : a (NaN in a kept). */
#define f32x4_pmax wasm_f32x4_pmax
#define f32x4_pmin wasm_f32x4_pmin

/* Bytes: 16 lanes of u8. */
#define u8x16_splat wasm_i8x16_splat
#define u8x16_eq wasm_i8x16_eq
#define u8x16_lt wasm_u8x16_lt
#define v128_or wasm_v128_or
#define v128_any_true wasm_v128_any_true

/* Floats src[0], src[sx], src[2 sx], src[3 sx]. SX is sx as a constant
   after inlining (1: one load; 2: two loads, the even lanes, reading one
   float past the last), or 0 for any other stride (four scalar loads). */
static inline __attribute__((always_inline)) v128_t
f32x4_load_strided(const float *src, const int SX, long long sx)
{
    if (SX == 1)
        return v128_load(src);
    if (SX == 2)
        return f32x4_even(v128_load(src), v128_load(src + 4));
    return f32x4_make(src[0], src[sx], src[2 * sx], src[3 * sx]);
}

/* a * b + c: fused (one rounding) in the relaxed-SIMD build, else a
   multiply and an add. Cranelift's x86-64 fused form overwrites a, so it
   suits chains where a dies (Horner steps), not accumulators, which it
   would move to a new register every time (see gemm.c). */
#ifdef __wasm_relaxed_simd__
#define f32x4_madd(a, b, c) wasm_f32x4_relaxed_madd((a), (b), (c))
#else
#define f32x4_madd(a, b, c) wasm_f32x4_add(wasm_f32x4_mul((a), (b)), (c))
#endif
#endif

#endif
