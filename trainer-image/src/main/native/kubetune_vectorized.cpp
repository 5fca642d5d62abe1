// See kubetune_vectorized.h. Compiled with -mavx2 -mfma and CPU_CAPABILITY=AVX2, so at::vec's
// Vectorized<float> is 8 lanes wide and its exp is libtorch's own (Sleef's expf8_u10, exported by
// libtorch_cpu); with -fopenmp, at::parallel_for splits rows over libtorch's OpenMP threads (the
// library's libgomp.so.1 reference resolves to the copy libtorch loaded). Each formula is the one
// libtorch's silu, mul and silu_backward kernels use, in the same order, so results match theirs
// to the last bit or two (exp's SIMD width may differ).

#include "kubetune_vectorized.h"

#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace kubetune {
namespace {

using Vec = at::vec::Vectorized<float>;

// Rows per task: a row is 1-20 thousand floats here, so a few rows amortize a task's start.
constexpr int64_t kRowsPerTask = 4;

}  // namespace

namespace {

// Sixteen elements of a float or bf16 array as two float vectors, and back: bf16 widens exactly
// and narrows with round-to-nearest-even, as libtorch's casts do.
inline void load16(const float* p, Vec& lo, Vec& hi) {
  lo = Vec::loadu(p);
  hi = Vec::loadu(p + Vec::size());
}

inline void load16(const c10::BFloat16* p, Vec& lo, Vec& hi) {
  at::vec::load_fp32_from_bf16(p, lo, hi);
}

inline void store16(float* p, const Vec& lo, const Vec& hi) {
  lo.store(p);
  hi.store(p + Vec::size());
}

inline void store16(c10::BFloat16* p, const Vec& lo, const Vec& hi) {
  at::vec::convert_float_bfloat16(lo, hi).store(p);
}

constexpr int64_t kStep = 2 * Vec::size();

template <typename T>
void swigluForward(const T* gate_up, T* act, int64_t rows, int64_t width) {
  at::parallel_for(0, rows, kRowsPerTask, [&](int64_t begin, int64_t end) {
    const Vec one(1.f);
    Vec g[2];
    Vec u[2];
    for (int64_t r = begin; r < end; r++) {
      const T* gate = gate_up + r * 2 * width;
      const T* up = gate + width;
      T* out = act + r * width;
      int64_t j = 0;
      for (; j + kStep <= width; j += kStep) {
        load16(gate + j, g[0], g[1]);
        load16(up + j, u[0], u[1]);
        for (int h = 0; h < 2; h++) {
          Vec silu = g[h] / (one + g[h].neg().exp());
          u[h] = silu * u[h];
        }
        store16(out + j, u[0], u[1]);
      }
      for (; j < width; j++) {
        float gj = static_cast<float>(gate[j]);
        out[j] = static_cast<T>(gj / (1.f + std::exp(-gj)) * static_cast<float>(up[j]));
      }
    }
  });
}

template <typename T>
void swigluBackward(const T* gate_up, const T* grad_act, T* grad, int64_t rows, int64_t width) {
  at::parallel_for(0, rows, kRowsPerTask, [&](int64_t begin, int64_t end) {
    const Vec one(1.f);
    Vec g[2];
    Vec u[2];
    Vec d[2];
    Vec gradGate[2];
    Vec gradUp[2];
    for (int64_t r = begin; r < end; r++) {
      const T* gate = gate_up + r * 2 * width;
      const T* up = gate + width;
      const T* dr = grad_act + r * width;
      T* grad_gate = grad + r * 2 * width;
      T* grad_up = grad_gate + width;
      int64_t j = 0;
      for (; j + kStep <= width; j += kStep) {
        load16(gate + j, g[0], g[1]);
        load16(up + j, u[0], u[1]);
        load16(dr + j, d[0], d[1]);
        for (int h = 0; h < 2; h++) {
          Vec e = one + g[h].neg().exp();
          Vec s = one / e;
          gradGate[h] = d[h] * u[h] * s * (one + g[h] * (one - s));
          gradUp[h] = d[h] * (g[h] / e);
        }
        store16(grad_gate + j, gradGate[0], gradGate[1]);
        store16(grad_up + j, gradUp[0], gradUp[1]);
      }
      for (; j < width; j++) {
        float gj = static_cast<float>(gate[j]);
        float dj = static_cast<float>(dr[j]);
        float e = 1.f + std::exp(-gj);
        float s = 1.f / e;
        grad_gate[j] = static_cast<T>(dj * static_cast<float>(up[j]) * s * (1.f + gj * (1.f - s)));
        grad_up[j] = static_cast<T>(dj * (gj / e));
      }
    }
  });
}

}  // namespace

void swiglu_packed_forward(const float* gate_up, float* act, int64_t rows, int64_t width) {
  swigluForward(gate_up, act, rows, width);
}

void swiglu_packed_forward(
    const c10::BFloat16* gate_up, c10::BFloat16* act, int64_t rows, int64_t width) {
  swigluForward(gate_up, act, rows, width);
}

void swiglu_packed_backward(
    const float* gate_up, const float* grad_act, float* grad, int64_t rows, int64_t width) {
  swigluBackward(gate_up, grad_act, grad, rows, width);
}

void swiglu_packed_backward(const c10::BFloat16* gate_up, const c10::BFloat16* grad_act,
                            c10::BFloat16* grad, int64_t rows, int64_t width) {
  swigluBackward(gate_up, grad_act, grad, rows, width);
}

namespace {

// Sum of a[0..n) * b[0..n) (b null: of a[i]^2), in eight lanes, then the lanes and the tail.
float dot(const float* a, const float* b, int64_t n) {
  Vec sum(0.f);
  int64_t j = 0;
  for (; j + Vec::size() <= n; j += Vec::size()) {
    Vec va = Vec::loadu(a + j);
    sum = at::vec::fmadd(va, b == nullptr ? va : Vec::loadu(b + j), sum);
  }
  float lanes[Vec::size()];
  sum.store(lanes);
  float total = 0.f;
  for (float lane : lanes) {
    total += lane;
  }
  for (; j < n; j++) {
    total += a[j] * (b == nullptr ? a[j] : b[j]);
  }
  return total;
}

}  // namespace

void rms_norm_forward(const float* x, const float* weight, double eps, float* y, float* rstd,
                      int64_t rows, int64_t width) {
  at::parallel_for(0, rows, kRowsPerTask, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; r++) {
      const float* in = x + r * width;
      float* out = y + r * width;
      // As torch.rsqrt(mean + eps) in fp32: the mean rounded to float, then eps added.
      float mean = dot(in, nullptr, width) / static_cast<float>(width);
      float scale = 1.f / std::sqrt(mean + static_cast<float>(eps));
      rstd[r] = scale;
      const Vec vscale(scale);
      int64_t j = 0;
      for (; j + Vec::size() <= width; j += Vec::size()) {
        (Vec::loadu(in + j) * vscale * Vec::loadu(weight + j)).store(out + j);
      }
      for (; j < width; j++) {
        out[j] = in[j] * scale * weight[j];
      }
    }
  });
}

void rms_norm_backward(const float* x, const float* weight, const float* rstd, const float* dy,
                       float* dx, float* grad_weight, int64_t rows, int64_t width) {
  // grad_weight sums over rows: each task adds into its own row of partials, summed at the end.
  int64_t tasks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), rows));
  std::vector<float> partials(grad_weight == nullptr ? 0 : tasks * width, 0.f);
  int64_t rows_per_task = (rows + tasks - 1) / tasks;
  at::parallel_for(0, tasks, 1, [&](int64_t first_task, int64_t last_task) {
    std::vector<float> e(width);
    for (int64_t task = first_task; task < last_task; task++) {
      float* partial = grad_weight == nullptr ? nullptr : partials.data() + task * width;
      int64_t end = std::min(rows, (task + 1) * rows_per_task);
      for (int64_t r = task * rows_per_task; r < end; r++) {
        const float* in = x + r * width;
        const float* d = dy + r * width;
        float* out = dx + r * width;
        float scale = rstd[r];
        const Vec vscale(scale);
        int64_t j = 0;
        for (; j + Vec::size() <= width; j += Vec::size()) {
          Vec vd = Vec::loadu(d + j);
          (vd * Vec::loadu(weight + j)).store(e.data() + j);
          if (partial != nullptr) {
            at::vec::fmadd(vd, Vec::loadu(in + j) * vscale, Vec::loadu(partial + j))
                .store(partial + j);
          }
        }
        for (; j < width; j++) {
          e[j] = d[j] * weight[j];
          if (partial != nullptr) {
            partial[j] += d[j] * (in[j] * scale);
          }
        }
        // mean(e * h) = rstd * mean(e * x)
        float mean = scale * dot(e.data(), in, width) / static_cast<float>(width);
        const Vec vmean(mean);
        j = 0;
        for (; j + Vec::size() <= width; j += Vec::size()) {
          Vec h = Vec::loadu(in + j) * vscale;
          (vscale * (Vec::loadu(e.data() + j) - h * vmean)).store(out + j);
        }
        for (; j < width; j++) {
          out[j] = scale * (e[j] - in[j] * scale * mean);
        }
      }
    }
  });
  if (grad_weight != nullptr) {
    for (int64_t j = 0; j < width; j++) {
      float sum = 0.f;
      for (int64_t task = 0; task < tasks; task++) {
        sum += partials[task * width + j];
      }
      grad_weight[j] = sum;
    }
  }
}

namespace {

template <typename T>
void weightedSoftmaxRows(T* logits, const float* w, float* lse, int64_t rows, int64_t vocab) {
  at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
    // The row's exponentials in float, between the pass that sums them and the one that scales
    // them: a row (vocab floats) stays in cache, and each is rounded once.
    std::vector<float> exps(vocab);
    Vec lo;
    Vec hi;
    for (int64_t r = begin; r < end; r++) {
      T* row = logits + r * vocab;
      Vec maxLo(-std::numeric_limits<float>::infinity());
      Vec maxHi = maxLo;
      int64_t j = 0;
      for (; j + kStep <= vocab; j += kStep) {
        load16(row + j, lo, hi);
        maxLo = at::vec::maximum(maxLo, lo);
        maxHi = at::vec::maximum(maxHi, hi);
      }
      float lanes[Vec::size()];
      at::vec::maximum(maxLo, maxHi).store(lanes);
      float m = -std::numeric_limits<float>::infinity();
      for (float lane : lanes) {
        m = std::isnan(lane) || lane > m ? lane : m;
      }
      for (; j < vocab; j++) {
        float value = static_cast<float>(row[j]);
        m = std::isnan(value) || value > m ? value : m;
      }
      const Vec vm(m);
      Vec sumLo(0.f);
      Vec sumHi(0.f);
      j = 0;
      for (; j + kStep <= vocab; j += kStep) {
        load16(row + j, lo, hi);
        lo = (lo - vm).exp();
        hi = (hi - vm).exp();
        store16(exps.data() + j, lo, hi);
        sumLo = sumLo + lo;
        sumHi = sumHi + hi;
      }
      (sumLo + sumHi).store(lanes);
      float sum = 0.f;
      for (float lane : lanes) {
        sum += lane;
      }
      for (; j < vocab; j++) {
        exps[j] = std::exp(static_cast<float>(row[j]) - m);
        sum += exps[j];
      }
      lse[r] = m + std::log(sum);
      const Vec scale(w[r] / sum);
      j = 0;
      for (; j + kStep <= vocab; j += kStep) {
        load16(exps.data() + j, lo, hi);
        store16(row + j, lo * scale, hi * scale);
      }
      for (; j < vocab; j++) {
        row[j] = static_cast<T>(exps[j] * (w[r] / sum));
      }
    }
  });
}

}  // namespace

void weighted_softmax_rows(float* logits, const float* w, float* lse, int64_t rows, int64_t vocab) {
  weightedSoftmaxRows(logits, w, lse, rows, vocab);
}

void weighted_softmax_rows(
    c10::BFloat16* logits, const float* w, float* lse, int64_t rows, int64_t vocab) {
  weightedSoftmaxRows(logits, w, lse, rows, vocab);
}

void rotary(const float* x, int64_t sb, int64_t sh, int64_t ss, const float* cos,
            const float* sin, float* y, int64_t batch, int64_t heads, int64_t seq, int64_t dim,
            bool transpose) {
  int64_t half = dim / 2;
  at::parallel_for(0, batch * heads * seq, 16, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; row++) {
      int64_t b = row / (heads * seq);
      int64_t h = (row / seq) % heads;
      int64_t t = row % seq;
      const float* in = x + b * sb + h * sh + t * ss;
      const float* c = cos + t * dim;
      const float* s = sin + t * dim;
      float* out = y + row * dim;
      if (transpose) {
        for (int64_t j = 0; j < half; j++) {
          out[j] = in[j] * c[j] + in[j + half] * s[j + half];
          out[j + half] = in[j + half] * c[j + half] - in[j] * s[j];
        }
      } else {
        for (int64_t j = 0; j < half; j++) {
          out[j] = in[j] * c[j] - in[j + half] * s[j];
          out[j + half] = in[j + half] * c[j + half] + in[j] * s[j + half];
        }
      }
    }
  });
}

}  // namespace kubetune
