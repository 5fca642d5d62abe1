// KubeTune's own libtorch operators, for work that libtorch's ops can only do with a full-size
// intermediate or with several passes over memory where one suffices. Built against the libtorch
// 2.7.1 headers by build.sh and loaded into the trainer's process after DJL has loaded libtorch
// (see NativeKernels.java); registered as
// torch.ops.kubetune.*, with their own backward, so TorchScript calls them and autograd records
// them like any libtorch op.

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include "kubetune_vectorized.h"

namespace {

using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// Where position p = (member * rows + row) * width + col of the members' virtual copies of x
// (rows, width) lands: x's flat index, the offset of the member's r activations in row `row`
// ((rows, members * r) activations), and of its r weights for column `col` ((members, width, r)).
struct Place {
  int64_t within;
  int64_t activations;
  int64_t weights;
};

inline Place place(int64_t p, int64_t rows, int64_t width, int64_t members, int64_t rank) {
  int64_t member = p / (rows * width);
  int64_t within = p - member * rows * width;
  int64_t row = within / width;
  int64_t col = within - row * width;
  return {within, (row * members + member) * rank, (member * width + col) * rank};
}

// What the dropped (or, for p > 0.5, the kept) elements of x contribute to the adapters'
// down-projections, side by side: for each position p = (member * rows + row) * in + col of the
// sorted positions, rare[row, member * r + j] += x[row, col] * a[member * r + j, col], where a is
// the members' stacked A (members * r, in). The caller subtracts it from x · a^T (drops rarer) or
// takes it as the result (keeps rarer). O(positions * r) work, no (rows, in) intermediate; the
// backward is the same loop with the roles swapped.
class RareDownProjections : public torch::autograd::Function<RareDownProjections> {
 public:
  static Tensor forward(
      AutogradContext* ctx, const Tensor& x, const Tensor& a, const Tensor& positions,
      int64_t members) {
    check(x, a, positions, members);
    Tensor xs = x.contiguous();
    // (members, in, r): a member's r weights for one input column lie side by side.
    Tensor columns = a.detach().reshape({members, -1, x.size(1)}).transpose(1, 2).contiguous();
    Tensor sorted = positions.contiguous();
    int64_t rows = xs.size(0);
    int64_t width = xs.size(1);
    int64_t rank = a.size(0) / members;
    Tensor rare = at::zeros({rows, members * rank}, xs.options());
    const float* xp = xs.data_ptr<float>();
    const float* cp = columns.data_ptr<float>();
    const int64_t* pp = sorted.data_ptr<int64_t>();
    float* rp = rare.data_ptr<float>();
    for (int64_t k = 0, n = sorted.numel(); k < n; k++) {
      Place at = place(pp[k], rows, width, members, rank);
      float value = xp[at.within];
      const float* weights = cp + at.weights;
      float* out = rp + at.activations;
      for (int64_t j = 0; j < rank; j++) {
        out[j] += value * weights[j];
      }
    }
    ctx->saved_data["members"] = members;
    ctx->save_for_backward({xs, columns, sorted});
    return rare;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list outputGradients) {
    auto saved = ctx->get_saved_variables();
    const Tensor& x = saved[0];
    const Tensor& columns = saved[1];
    const Tensor& sorted = saved[2];
    int64_t members = ctx->saved_data["members"].toInt();
    int64_t rows = x.size(0);
    int64_t width = x.size(1);
    int64_t rank = columns.size(2);
    Tensor g = outputGradients[0].contiguous();
    bool wantX = ctx->needs_input_grad(0);
    bool wantA = ctx->needs_input_grad(1);
    Tensor gx = wantX ? at::zeros_like(x) : Tensor();
    Tensor gColumns = wantA ? at::zeros_like(columns) : Tensor();
    const float* xp = x.data_ptr<float>();
    const float* cp = columns.data_ptr<float>();
    const float* gp = g.data_ptr<float>();
    const int64_t* pp = sorted.data_ptr<int64_t>();
    float* gxp = wantX ? gx.data_ptr<float>() : nullptr;
    float* gcp = wantA ? gColumns.data_ptr<float>() : nullptr;
    for (int64_t k = 0, n = sorted.numel(); k < n; k++) {
      Place at = place(pp[k], rows, width, members, rank);
      const float* gradient = gp + at.activations;
      int64_t column = at.weights;
      if (wantX) {
        float sum = 0.f;
        for (int64_t j = 0; j < rank; j++) {
          sum += gradient[j] * cp[column + j];
        }
        gxp[at.within] += sum;
      }
      if (wantA) {
        float value = xp[at.within];
        for (int64_t j = 0; j < rank; j++) {
          gcp[column + j] += value * gradient[j];
        }
      }
    }
    Tensor ga = wantA ? gColumns.transpose(1, 2).reshape({members * rank, width}) : Tensor();
    return {gx, ga, Tensor(), Tensor()};
  }

 private:
  static void check(const Tensor& x, const Tensor& a, const Tensor& positions, int64_t members) {
    TORCH_CHECK(x.device().is_cpu() && a.device().is_cpu() && positions.device().is_cpu(),
                "kubetune::rare_down_projections runs on the CPU only");
    TORCH_CHECK(x.scalar_type() == at::kFloat && a.scalar_type() == at::kFloat,
                "kubetune::rare_down_projections takes float32 x and a");
    TORCH_CHECK(positions.scalar_type() == at::kLong, "positions must be int64");
    TORCH_CHECK(x.dim() == 2 && a.dim() == 2 && a.size(1) == x.size(1),
                "x must be (rows, in) and a (members * r, in)");
    TORCH_CHECK(members > 0 && a.size(0) % members == 0, "a's rows must split into members");
    // Sorted ascending by the caller: the first and last bound them all.
    int64_t n = positions.numel();
    TORCH_CHECK(positions.dim() == 1, "positions must be 1-D");
    TORCH_CHECK(n == 0 || (positions[0].item<int64_t>() >= 0 &&
                           positions[n - 1].item<int64_t>() < members * x.numel()),
                "positions out of range");
  }
};

Tensor rare_down_projections(
    const Tensor& x, const Tensor& a, const Tensor& positions, int64_t members) {
  return RareDownProjections::apply(x, a, positions, members);
}

// The MLP's gated activation on the fused gate/up projection's output, packed (..., 2 * width)
// with gate first: silu(gate) * up, (..., width). libtorch's ops need the two halves as views,
// silu and a product forward, and backward two products, silu_backward and a concatenation of the
// halves' gradients into the packed one: five full-width passes. Here forward and backward are
// one pass each, the backward writing the packed gradient directly. On a CPU without AVX2 and FMA
// the same formulas run as libtorch's ops.
class SwigluPacked : public torch::autograd::Function<SwigluPacked> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& gate_up) {
    TORCH_CHECK(gate_up.device().is_cpu() && gate_up.scalar_type() == at::kFloat,
                "kubetune::swiglu_packed takes a float32 CPU tensor");
    TORCH_CHECK(gate_up.dim() >= 1 && gate_up.size(-1) > 0 && gate_up.size(-1) % 2 == 0,
                "kubetune::swiglu_packed needs a non-empty, even last axis (gate, then up)");
    Tensor packed = gate_up.contiguous();
    ctx->save_for_backward({packed});
    int64_t width = packed.size(-1) / 2;
    std::vector<int64_t> shape = packed.sizes().vec();
    shape.back() = width;
    if (!kubetune::vectorized_kernels_supported()) {
      auto halves = packed.chunk(2, -1);
      return at::mul(at::silu(halves[0]), halves[1]);
    }
    Tensor act = at::empty(shape, packed.options());
    kubetune::swiglu_packed_forward(
        packed.data_ptr<float>(), act.data_ptr<float>(), packed.numel() / (2 * width), width);
    return act;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list outputGradients) {
    Tensor packed = ctx->get_saved_variables()[0];
    Tensor d = outputGradients[0].contiguous();
    int64_t width = packed.size(-1) / 2;
    if (!kubetune::vectorized_kernels_supported()) {
      auto halves = packed.chunk(2, -1);
      return {at::cat({at::silu_backward(at::mul(d, halves[1]), halves[0]),
                       at::mul(d, at::silu(halves[0]))},
                      -1)};
    }
    Tensor grad = at::empty_like(packed);
    kubetune::swiglu_packed_backward(packed.data_ptr<float>(), d.data_ptr<float>(),
                                     grad.data_ptr<float>(), packed.numel() / (2 * width), width);
    return {grad};
  }
};

Tensor swiglu_packed(const Tensor& gate_up) {
  return SwigluPacked::apply(gate_up);
}

// RMSNorm over the last axis, x * rsqrt(mean(x^2) + eps) * weight, as transformers' LlamaRMSNorm
// writes it. libtorch's ops take six full-width passes forward (square, mean, two products, ...)
// and keep the normalized x for the backward; here forward and backward are one pass each (two
// reads of a row that stays in cache), and autograd keeps x and one float per row. On a CPU
// without AVX2 and FMA the same formulas run as libtorch's ops.
class RmsNorm : public torch::autograd::Function<RmsNorm> {
 public:
  static Tensor forward(
      AutogradContext* ctx, const Tensor& x, const Tensor& weight, const Tensor& eps) {
    TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat &&
                    weight.scalar_type() == at::kFloat,
                "kubetune::rms_norm takes float32 CPU tensors");
    TORCH_CHECK(weight.dim() == 1 && x.dim() >= 1 && x.size(-1) == weight.size(0),
                "kubetune::rms_norm needs a weight as wide as x's last axis");
    Tensor xs = x.contiguous();
    Tensor w = weight.detach().contiguous();
    int64_t width = xs.size(-1);
    int64_t rows = width == 0 ? 0 : xs.numel() / width;
    double epsilon = eps.item<double>();
    Tensor y;
    Tensor rstd;
    if (kubetune::vectorized_kernels_supported()) {
      y = at::empty_like(xs);
      rstd = at::empty({rows}, xs.options());
      kubetune::rms_norm_forward(xs.data_ptr<float>(), w.data_ptr<float>(), epsilon,
                                 y.data_ptr<float>(), rstd.data_ptr<float>(), rows, width);
    } else {
      Tensor flat = xs.reshape({rows, width});
      rstd = at::rsqrt(at::add(at::mean(at::pow(flat, 2), {-1}), epsilon));
      y = at::mul(at::mul(flat, rstd.unsqueeze(1)), w).view(xs.sizes());
    }
    ctx->save_for_backward({xs, w, rstd});
    return y;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list outputGradients) {
    auto saved = ctx->get_saved_variables();
    const Tensor& xs = saved[0];
    const Tensor& w = saved[1];
    const Tensor& rstd = saved[2];
    Tensor dy = outputGradients[0].contiguous();
    int64_t width = xs.size(-1);
    int64_t rows = width == 0 ? 0 : xs.numel() / width;
    bool wantWeight = ctx->needs_input_grad(1);
    Tensor dx;
    Tensor gw;
    if (kubetune::vectorized_kernels_supported()) {
      dx = at::empty_like(xs);
      gw = wantWeight ? at::empty({width}, xs.options()) : Tensor();
      kubetune::rms_norm_backward(xs.data_ptr<float>(), w.data_ptr<float>(),
                                  rstd.data_ptr<float>(), dy.data_ptr<float>(),
                                  dx.data_ptr<float>(), wantWeight ? gw.data_ptr<float>() : nullptr,
                                  rows, width);
    } else {
      Tensor scale = rstd.unsqueeze(1);
      Tensor h = at::mul(xs.reshape({rows, width}), scale);
      Tensor d = dy.reshape({rows, width});
      Tensor e = at::mul(d, w);
      Tensor mean = at::mean(at::mul(e, h), {-1}, true);
      dx = at::mul(scale, at::sub(e, at::mul(h, mean))).view(xs.sizes());
      gw = wantWeight ? at::sum(at::mul(d, h), {0}) : Tensor();
    }
    return {dx, gw, Tensor()};
  }
};

Tensor rms_norm(const Tensor& x, const Tensor& weight, const Tensor& eps) {
  return RmsNorm::apply(x, weight, eps);
}

}  // namespace

bool kubetune::vectorized_kernels_supported() {
  static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return supported;
}

TORCH_LIBRARY(kubetune, m) {
  m.def(
      "rare_down_projections(Tensor x, Tensor a, Tensor positions, int members) -> Tensor",
      &rare_down_projections);
  m.def("swiglu_packed(Tensor gate_up) -> Tensor", &swiglu_packed);
  m.def("rms_norm(Tensor x, Tensor weight, Tensor eps) -> Tensor", &rms_norm);
}
