/* Branch-free exp, tanh and sigmoid that compilers vectorize, for float and double: the one
 * elementwise math of every kernel (training and sampling, every CPU level).
 *
 * glibc's scalar expf/tanhf cost ~10-20 ns each and block vectorization of the gate loops; its
 * vector variants (libmvec) are only declared under -ffast-math, which also gives up NaN and
 * infinity semantics. These versions are plain C: Cody-Waite range reduction, the Cephes
 * polynomials (float) and Pade approximants (double), and the power of two built from exponent
 * bits, with selects instead of branches so that GCC and Clang vectorize loops that call them
 * at any -march (SSE2 at least).
 *
 * Accuracy (tests/test_fastmath.py checks it over the whole range): exp and tanh within 2 ulp
 * of the correctly rounded result in float, 4 in double; sigmoid two ulp more. Special values:
 * exp(NaN) = NaN, exp(+inf) = +inf, exp(-inf) = 0, overflow to +inf; below BK_EXPF_MIN and
 * BK_EXP_MIN, where e^x leaves the normal numbers, exp gives 0 (subnormal arithmetic costs x86
 * cores about a hundred cycles per instruction and means nothing for a probability);
 * tanh(NaN) = NaN, tanh(+-inf) = +-1, tanh(-0) = -0; sigmoid(NaN) = NaN, sigmoid(+inf) = 1, sigmoid(-inf) = 0.
 */
#ifndef BLEKOTA_FASTMATH_H
#define BLEKOTA_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* The natural logarithms of the smallest normal numbers: exp is 0 below them. */
#define BK_EXPF_MIN -87.3365478515625f
#define BK_EXP_MIN -708.39641853226408

static inline float bk_bits_to_float(int32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline int32_t bk_float_to_bits(float f) {
    int32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

static inline double bk_bits_to_double(int64_t bits) {
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static inline int64_t bk_double_to_bits(double d) {
    int64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return bits;
}

/* e^x in float. */
static inline float bk_expf(float x)
{
    float xc = x != x ? 0.0f : x;           /* NaN takes the finite path, restored at the end */
    xc = xc > 89.0f ? 89.0f : xc;           /* beyond: +inf through the scaling below */
    xc = xc < BK_EXPF_MIN ? BK_EXPF_MIN : xc; /* beyond: 0, selected at the end */
    /* rintf of the rounded product, not of a fused one: the result is then the same at every
       CPU level with FMA (compilers inline it as a vector round at any level) */
    float k = rintf(xc * 1.44269504088896341f);
    int32_t n = (int32_t)k;
    float r = xc - k * 0.693359375f;
    r = r + k * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + (r + 1.0f);
    /* 2^n as two powers of two, so that n = 128 (a finite result near FLT_MAX) and beyond
       (+inf) scale correctly */
    int32_t n1 = n / 2;
    int32_t n2 = n - n1;
    p = p * bk_bits_to_float((n1 + 127) << 23) * bk_bits_to_float((n2 + 127) << 23);
    p = x < BK_EXPF_MIN ? 0.0f : p;
    return x != x ? x : p;
}

/* e^x in double. */
static inline double bk_exp(double x) {
    const double magic = 6755399441055744.0; /* 1.5 * 2^52 */
    double xc = x != x ? 0.0 : x;
    xc = xc > 710.0 ? 710.0 : xc;
    xc = xc < BK_EXP_MIN ? BK_EXP_MIN : xc;
    double k = xc * 1.4426950408889634074 + magic;
    k -= magic;
    /* n = k1 + k2 with both halves integers whose powers of two are normal doubles; the
       integers are read from the low bits of (value + magic), which needs no 64-bit shift right */
    double k1 = k * 0.5 + magic;
    int64_t n1 = bk_double_to_bits(k1) - bk_double_to_bits(magic);
    int64_t n2 = bk_double_to_bits(k - (k1 - magic) + magic) - bk_double_to_bits(magic);
    double r = xc - k * 6.93145751953125e-1;
    r = r - k * 1.42860682030941723212e-6;
    double rr = r * r;
    double px = 1.26177193074810590878e-4;
    px = px * rr + 3.02994407707441961300e-2;
    px = (px * rr + 9.99999999999999999910e-1) * r;
    double qx = 3.00198505138664455042e-6;
    qx = qx * rr + 2.52448340349684104192e-3;
    qx = qx * rr + 2.27265548208155028766e-1;
    qx = qx * rr + 2.00000000000000000009e0;
    double p = 1.0 + 2.0 * (px / (qx - px));
    p = p * bk_bits_to_double((n1 + 1023) << 52) * bk_bits_to_double((n2 + 1023) << 52);
    p = x < BK_EXP_MIN ? 0.0 : p;
    return x != x ? x : p;
}

static inline float bk_copysignf(float magnitude, float sign) {
    int32_t bits = (bk_float_to_bits(magnitude) & 0x7fffffff) | (bk_float_to_bits(sign) & INT32_MIN);
    return bk_bits_to_float(bits);
}

static inline double bk_copysign(double magnitude, double sign) {
    int64_t bits = (bk_double_to_bits(magnitude) & INT64_C(0x7fffffffffffffff))
                   | (bk_double_to_bits(sign) & INT64_MIN);
    return bk_bits_to_double(bits);
}

/* tanh(x) in float: an odd polynomial below |x| = 0.625, 1 - 2 / (e^2|x| + 1) above. */
static inline float bk_tanhf(float x) {
    float a = x < 0.0f ? -x : x;
    float z = x * x;
    float small = -5.70498872745e-3f;
    small = small * z + 2.06390887954e-2f;
    small = small * z - 5.37397155531e-2f;
    small = small * z + 1.33314422036e-1f;
    small = small * z - 3.33332819422e-1f;
    small = small * z * x + x;
    float large = 1.0f - 2.0f / (bk_expf(2.0f * a) + 1.0f);
    return bk_copysignf(a < 0.625f ? small : large, x);
}

/* tanh(x) in double: a rational function below |x| = 0.625, 1 - 2 / (e^2|x| + 1) above. */
static inline double bk_tanh(double x) {
    double a = x < 0.0 ? -x : x;
    double s = x * x;
    double p = -9.64399179425052238628e-1;
    p = p * s - 9.92877231001918586564e1;
    p = p * s - 1.61468768441708447952e3;
    double q = s + 1.12811678491632931402e2;
    q = q * s + 2.23548839060100448583e3;
    q = q * s + 4.84406305325125486048e3;
    double small = x + x * s * (p / q);
    double large = 1.0 - 2.0 / (bk_exp(2.0 * a) + 1.0);
    return bk_copysign(a < 0.625 ? small : large, x);
}

/* The logistic function 1 / (1 + e^-x). */
static inline float bk_sigmoidf(float x) {
    return 1.0f / (1.0f + bk_expf(-x));
}

static inline double bk_sigmoid(double x) {
    return 1.0 / (1.0 + bk_exp(-x));
}

#endif
