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
#include <vector>

namespace kubetune {
namespace {

using Vec = at::vec::Vectorized<float>;

// Rows per task: a row is 1-20 thousand floats here, so a few rows amortize a task's start.
constexpr int64_t kRowsPerTask = 4;

}  // namespace

void swiglu_packed_forward(const float* gate_up, float* act, int64_t rows, int64_t width) {
  at::parallel_for(0, rows, kRowsPerTask, [&](int64_t begin, int64_t end) {
    const Vec one(1.f);
    for (int64_t r = begin; r < end; r++) {
      const float* gate = gate_up + r * 2 * width;
      const float* up = gate + width;
      float* out = act + r * width;
      int64_t j = 0;
      for (; j + Vec::size() <= width; j += Vec::size()) {
        Vec g = Vec::loadu(gate + j);
        Vec silu = g / (one + g.neg().exp());
        (silu * Vec::loadu(up + j)).store(out + j);
      }
      for (; j < width; j++) {
        float g = gate[j];
        out[j] = g / (1.f + std::exp(-g)) * up[j];
      }
    }
  });
}

void swiglu_packed_backward(
    const float* gate_up, const float* grad_act, float* grad, int64_t rows, int64_t width) {
  at::parallel_for(0, rows, kRowsPerTask, [&](int64_t begin, int64_t end) {
    const Vec one(1.f);
    for (int64_t r = begin; r < end; r++) {
      const float* gate = gate_up + r * 2 * width;
      const float* up = gate + width;
      const float* d = grad_act + r * width;
      float* grad_gate = grad + r * 2 * width;
      float* grad_up = grad_gate + width;
      int64_t j = 0;
      for (; j + Vec::size() <= width; j += Vec::size()) {
        Vec g = Vec::loadu(gate + j);
        Vec dv = Vec::loadu(d + j);
        Vec e = one + g.neg().exp();
        Vec s = one / e;
        (dv * Vec::loadu(up + j) * s * (one + g * (one - s))).store(grad_gate + j);
        (dv * (g / e)).store(grad_up + j);
      }
      for (; j < width; j++) {
        float g = gate[j];
        float e = 1.f + std::exp(-g);
        float s = 1.f / e;
        grad_gate[j] = d[j] * up[j] * s * (1.f + g * (1.f - s));
        grad_up[j] = d[j] * (g / e);
      }
    }
  });
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

}  // namespace kubetune
