// Element-wise kernels of KubeTune's operators that are worth SIMD code and threads: declared
// here, defined in kubetune_vectorized.cpp, which build.sh compiles for AVX2 + FMA with OpenMP
// (libtorch's at::vec and at::parallel_for). kubetune_kernels.cpp calls them only on a CPU that
// has AVX2 and FMA (vectorized_kernels_supported()) and runs libtorch's ops elsewhere.
#pragma once

#include <c10/util/BFloat16.h>

#include <cstdint>

namespace kubetune {

// Whether this CPU runs the kernels below (AVX2 and FMA).
bool vectorized_kernels_supported();

// act[r, j] = silu(gate_up[r, j]) * gate_up[r, width + j] for rows r of the packed (rows, 2 * width)
// gate/up projection; act is (rows, width). In bf16 the arithmetic is float, each result rounded
// once (to nearest even), as the float kernel followed by a cast would give.
void swiglu_packed_forward(const float* gate_up, float* act, int64_t rows, int64_t width);
void swiglu_packed_forward(
    const c10::BFloat16* gate_up, c10::BFloat16* act, int64_t rows, int64_t width);

// The gradient of swiglu_packed_forward, written packed like its input: for g = gate_up[r, j],
// u = gate_up[r, width + j], s = sigmoid(g) and d = grad_act[r, j],
// grad[r, j] = d * u * s * (1 + g * (1 - s)) and grad[r, width + j] = d * silu(g).
void swiglu_packed_backward(
    const float* gate_up, const float* grad_act, float* grad, int64_t rows, int64_t width);
void swiglu_packed_backward(const c10::BFloat16* gate_up, const c10::BFloat16* grad_act,
                            c10::BFloat16* grad, int64_t rows, int64_t width);

// RMSNorm of rows r of x (rows, width): rstd[r] = 1 / sqrt(mean(x[r]^2) + eps) and
// y[r, j] = x[r, j] * rstd[r] * weight[j].
void rms_norm_forward(const float* x, const float* weight, double eps, float* y, float* rstd,
                      int64_t rows, int64_t width);

// Its gradient: for h = x * rstd and e = dy * weight, dx[r, j] = rstd[r] * (e[r, j] - h[r, j] *
// mean(e[r] * h[r])); with grad_weight not null, grad_weight[j] = sum over r of dy[r, j] * h[r, j].
void rms_norm_backward(const float* x, const float* weight, const float* rstd, const float* dy,
                       float* dx, float* grad_weight, int64_t rows, int64_t width);

// Rotary position embedding of x (batch, heads, seq, dim), read through strides (sb, sh, ss; the
// last axis contiguous) and written contiguous to y, with tables cos and sin (seq, dim): for
// half = dim / 2 and j < half, y[j] = x[j] cos[j] - x[j + half] sin[j] and y[j + half] =
// x[j + half] cos[j + half] + x[j] sin[j + half] (transformers' x cos + rotate_half(x) sin). With
// transpose, the transposed map, which is its gradient: y[j] = x[j] cos[j] + x[j + half]
// sin[j + half] and y[j + half] = x[j + half] cos[j + half] - x[j] sin[j].
void rotary(const float* x, int64_t sb, int64_t sh, int64_t ss, const float* cos,
            const float* sin, float* y, int64_t batch, int64_t heads, int64_t seq, int64_t dim,
            bool transpose);

// Softmax of each row of logits (rows, vocab), scaled by the row's weight, written over the logits:
// for m_r = max_v logits[r, v] and s_r = sum_v exp(logits[r, v] - m_r),
// logits[r, v] = w[r] * exp(logits[r, v] - m_r) / s_r. Each row's log-sum-exp m_r + log(s_r) goes
// to lse[r]. In float (bf16 widened exactly, each result rounded once); a NaN anywhere in a row
// makes its lse NaN.
void weighted_softmax_rows(float* logits, const float* w, float* lse, int64_t rows, int64_t vocab);
void weighted_softmax_rows(
    c10::BFloat16* logits, const float* w, float* lse, int64_t rows, int64_t vocab);

}  // namespace kubetune
