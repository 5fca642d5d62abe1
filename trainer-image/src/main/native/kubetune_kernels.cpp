// KubeTune's own libtorch operators, for work that libtorch's ops can only do with a full-size
// intermediate or with several passes over memory where one suffices. Built against the libtorch
// 2.7.1 headers by build.sh and loaded into the trainer's process after DJL has loaded libtorch
// (see NativeKernels.java); registered as
// torch.ops.kubetune.*, with their own backward, so TorchScript calls them and autograd records
// them like any libtorch op.

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/core/PhiloxRNGEngine.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <mutex>
#include <vector>

#include "kubetune_vectorized.h"

namespace {

using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// LoRA dropout applied to the adapters' down-projections of one input x (rows, in), for members
// that each draw their own mask, side by side: member i's block of the (rows, members * r) result
// is dropout_i(x) · A_i^T, unscaled (the caller folds 1/(1-p) into its scaling). Only the rarer
// outcome is drawn: with q = min(p, 1-p), the positions of the dropped elements (kept ones for
// p > 0.5) as running sums of geometric gaps, q · members · rows · in draws instead of one per
// element. Drops rarer: the result is x · A^T minus the dropped elements' contributions
// (x[row, col] · A_i[:, col] off row `row` of block i); keeps rarer: it is the kept elements'
// contributions alone. No masked copy of x is made and autograd keeps 4 bytes per drawn position
// besides x and A. The backward is the dense product's gradient with the same contributions taken
// off (or alone).
//
// x is float32, or bfloat16 when the adapters belong to a bf16 model (see LlamaModel.withAdapters):
// then the dense products take bf16 copies of the A's, as under autocast (fp32 accumulation inside
// the GEMM), the result and A's gradient stay float32 and x's gradient is bf16, like x.
//
// Draws: one 64-bit seed per call from libtorch's default CPU generator (so reseeding it repeats
// the masks, which resume and recomputation rely on), then each block of kBlockRows rows of one
// member draws from its own Philox stream (seed, block index). Blocks are fixed by the shapes,
// not by the threads: the masks are the same for any thread count. Forward and backward run the
// blocks on libtorch's threads; the backward's A gradient is summed over per-thread partials.
constexpr int64_t kBlockRows = 64;

struct DropoutLayout {
  int64_t rows;
  int64_t width;
  int64_t members;
  int64_t rank;
  int64_t rowBlocks;

  DropoutLayout(const Tensor& x, int64_t members, int64_t rank)
      : rows(x.size(0)),
        width(x.size(1)),
        members(members),
        rank(rank),
        rowBlocks((x.size(0) + kBlockRows - 1) / kBlockRows) {}

  // Elements of x in row block rb (the last one may be short).
  int64_t blockElements(int64_t rb) const {
    return (std::min(rows, (rb + 1) * kBlockRows) - rb * kBlockRows) * width;
  }
};

// The sorted offsets, within block `block` of `count` elements, of the rare outcome: gaps
// 1 + floor(log(u) / log(1 - q)) for u uniform in (0, 1] with 53 random bits, which is
// geometric: P(gap > k) = (1 - q)^k.
void drawBlock(uint64_t seed, int64_t block, int64_t count, double logNotRare,
               std::vector<int32_t>& offsets) {
  at::Philox4_32 engine(seed, static_cast<uint64_t>(block), 0);
  int64_t position = -1;
  while (true) {
    uint64_t high = engine();
    uint64_t low = engine();
    double u = static_cast<double>((((high << 32) | low) >> 11) + 1) * 0x1.0p-53;
    double gap = std::floor(std::log(u) / logNotRare) + 1;
    if (gap > static_cast<double>(count - position - 1)) {
      return;
    }
    position += static_cast<int64_t>(gap);
    offsets.push_back(static_cast<int32_t>(position));
  }
}

uint64_t drawSeed() {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return at::check_generator<at::CPUGeneratorImpl>(generator)->random64();
}

class DropoutDownProjections : public torch::autograd::Function<DropoutDownProjections> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& a, int64_t members,
                        double rare, bool dropsAreRarer) {
    check(x, a, members, rare);
    Tensor xs = x.contiguous();
    Tensor as = a.detach().contiguous();
    DropoutLayout layout(xs, members, as.size(0) / members);
    // (members, in, r): a member's r weights for one input column lie side by side. With a bf16 x
    // they are the bf16 values the dense products use, so a correction takes off exactly what the
    // product put in.
    Tensor used = xs.scalar_type() == at::kBFloat16 ? as.to(at::kBFloat16).to(at::kFloat) : as;
    Tensor columns = used.reshape({members, -1, layout.width}).transpose(1, 2).contiguous();
    int64_t blocks = members * layout.rowBlocks;

    uint64_t seed = drawSeed();
    double logNotRare = std::log1p(-rare);
    std::vector<std::vector<int32_t>> drawn(blocks);
    at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; b++) {
        drawBlock(seed, b, layout.blockElements(b % layout.rowBlocks), logNotRare, drawn[b]);
      }
    });
    Tensor starts = at::empty({blocks + 1}, xs.options().dtype(at::kLong));
    int64_t* sp = starts.data_ptr<int64_t>();
    sp[0] = 0;
    for (int64_t b = 0; b < blocks; b++) {
      sp[b + 1] = sp[b] + static_cast<int64_t>(drawn[b].size());
    }
    Tensor offsets = at::empty({sp[blocks]}, xs.options().dtype(at::kInt));
    int32_t* op = offsets.data_ptr<int32_t>();

    // A bf16 x meets bf16 copies of the A's in the dense product, as under autocast (fp32
    // accumulation inside the GEMM); the result and the corrections stay fp32.
    Tensor result = dropsAreRarer
                        ? at::mm(xs, as.to(xs.scalar_type()).t()).to(at::kFloat)
                        : at::zeros({layout.rows, members * layout.rank}, as.options());
    float sign = dropsAreRarer ? -1.f : 1.f;
    if (xs.scalar_type() == at::kBFloat16) {
      takeRare<c10::BFloat16>(xs, columns, result, layout, drawn, op, sp, sign);
    } else {
      takeRare<float>(xs, columns, result, layout, drawn, op, sp, sign);
    }
    ctx->saved_data["members"] = members;
    ctx->saved_data["drops_are_rarer"] = dropsAreRarer;
    ctx->save_for_backward({xs, as, columns, offsets, starts});
    return result;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list outputGradients) {
    auto saved = ctx->get_saved_variables();
    const Tensor& x = saved[0];
    const Tensor& a = saved[1];
    const Tensor& columns = saved[2];
    const Tensor& offsets = saved[3];
    const Tensor& starts = saved[4];
    int64_t members = ctx->saved_data["members"].toInt();
    bool dropsAreRarer = ctx->saved_data["drops_are_rarer"].toBool();
    DropoutLayout layout(x, members, columns.size(2));
    Tensor g = outputGradients[0].contiguous();
    bool wantX = ctx->needs_input_grad(0);
    bool wantA = ctx->needs_input_grad(1);
    Tensor gx;
    if (wantX) {
      gx = dropsAreRarer ? at::mm(g.to(x.scalar_type()), a.to(x.scalar_type())) : at::zeros_like(x);
    }
    // The A gradient's sparse part, per thread: (threads, members, in, r).
    int threads = at::get_num_threads();
    Tensor partials = wantA ? at::zeros({threads, members, layout.width, layout.rank}, a.options())
                            : Tensor();
    float sign = dropsAreRarer ? -1.f : 1.f;
    float* pp = wantA ? partials.data_ptr<float>() : nullptr;
    if (x.scalar_type() == at::kBFloat16) {
      giveBackRare<c10::BFloat16>(x, columns, g, offsets, starts, layout, sign,
                                  wantX ? gx.data_ptr<c10::BFloat16>() : nullptr, pp);
    } else {
      giveBackRare<float>(x, columns, g, offsets, starts, layout, sign,
                          wantX ? gx.data_ptr<float>() : nullptr, pp);
    }
    Tensor ga;
    if (wantA) {
      Tensor sparse = partials.sum(0).transpose(1, 2).reshape({layout.members * layout.rank,
                                                               layout.width});
      ga = dropsAreRarer
               ? at::mm(g.t().to(x.scalar_type()), x).to(at::kFloat).add_(sparse)
               : sparse;
    }
    return {gx, ga, Tensor(), Tensor(), Tensor()};
  }

 private:
  // Forward: adds sign · x[row, col] · A_i[:, col] into row `row` of member i's block of the result
  // for every drawn position, and stores the positions. By blocks on libtorch's threads.
  template <typename T>
  static void takeRare(const Tensor& x, const Tensor& columns, Tensor& result,
                       const DropoutLayout& layout, const std::vector<std::vector<int32_t>>& drawn,
                       int32_t* op, const int64_t* sp, float sign) {
    const T* xp = x.data_ptr<T>();
    const float* cp = columns.data_ptr<float>();
    float* rp = result.data_ptr<float>();
    int64_t members = layout.members;
    int64_t rank = layout.rank;
    int64_t width = layout.width;
    at::parallel_for(0, members * layout.rowBlocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; b++) {
        int64_t member = b / layout.rowBlocks;
        int64_t firstRow = (b % layout.rowBlocks) * kBlockRows;
        std::copy(drawn[b].begin(), drawn[b].end(), op + sp[b]);
        for (int32_t offset : drawn[b]) {
          int64_t row = firstRow + offset / width;
          int64_t col = offset % width;
          float value = sign * static_cast<float>(xp[row * width + col]);
          const float* weights = cp + (member * width + col) * rank;
          float* out = rp + (row * members + member) * rank;
          for (int64_t j = 0; j < rank; j++) {
            out[j] += value * weights[j];
          }
        }
      }
    });
  }

  // Backward: the same contributions' gradients, into x's gradient (gxp, x's dtype; null when not
  // wanted) and into per-thread partials of A's (pp, fp32; null when not wanted).
  template <typename T>
  static void giveBackRare(const Tensor& x, const Tensor& columns, const Tensor& g,
                           const Tensor& offsets, const Tensor& starts,
                           const DropoutLayout& layout, float sign, T* gxp, float* pp) {
    const T* xp = x.data_ptr<T>();
    const float* cp = columns.data_ptr<float>();
    const float* gp = g.data_ptr<float>();
    const int32_t* op = offsets.data_ptr<int32_t>();
    const int64_t* sp = starts.data_ptr<int64_t>();
    int64_t members = layout.members;
    int64_t rank = layout.rank;
    int64_t width = layout.width;
    int64_t partialSize = members * width * rank;
    // By row blocks, all members of a row block in one task: x's gradient rows are written by one
    // thread only.
    at::parallel_for(0, layout.rowBlocks, 1, [&](int64_t begin, int64_t end) {
      float* part = pp ? pp + at::get_thread_num() * partialSize : nullptr;
      for (int64_t rb = begin; rb < end; rb++) {
        for (int64_t member = 0; member < members; member++) {
          int64_t b = member * layout.rowBlocks + rb;
          for (int64_t k = sp[b]; k < sp[b + 1]; k++) {
            int64_t row = rb * kBlockRows + op[k] / width;
            int64_t col = op[k] % width;
            const float* gradient = gp + (row * members + member) * rank;
            const float* weights = cp + (member * width + col) * rank;
            if (gxp) {
              float sum = 0.f;
              for (int64_t j = 0; j < rank; j++) {
                sum += gradient[j] * weights[j];
              }
              T& target = gxp[row * width + col];
              target = static_cast<T>(static_cast<float>(target) + sign * sum);
            }
            if (part) {
              float value = sign * static_cast<float>(xp[row * width + col]);
              float* accumulated = part + (member * width + col) * rank;
              for (int64_t j = 0; j < rank; j++) {
                accumulated[j] += value * gradient[j];
              }
            }
          }
        }
      }
    });
  }

  static void check(const Tensor& x, const Tensor& a, int64_t members, double rare) {
    TORCH_CHECK(x.device().is_cpu() && a.device().is_cpu(),
                "kubetune::dropout_down_projections runs on the CPU only");
    TORCH_CHECK((x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16) &&
                    a.scalar_type() == at::kFloat,
                "kubetune::dropout_down_projections takes float32 or bfloat16 x and float32 a");
    TORCH_CHECK(x.dim() == 2 && a.dim() == 2 && a.size(1) == x.size(1),
                "x must be (rows, in) and a (members * r, in)");
    TORCH_CHECK(members > 0 && a.size(0) % members == 0, "a's rows must split into members");
    TORCH_CHECK(rare > 0 && rare <= 0.5, "the rarer outcome's probability must be in (0, 0.5]");
    TORCH_CHECK(kBlockRows * x.size(1) <= std::numeric_limits<int32_t>::max(),
                "x is too wide for 32-bit offsets within a block");
  }
};

Tensor dropout_down_projections(const Tensor& x, const Tensor& a, int64_t members, double rare,
                                bool dropsAreRarer) {
  return DropoutDownProjections::apply(x, a, members, rare, dropsAreRarer);
}

// The MLP's gated activation on the fused gate/up projection's output, packed (..., 2 * width)
// with gate first: silu(gate) * up, (..., width). libtorch's ops need the two halves as views,
// silu and a product forward, and backward two products, silu_backward and a concatenation of the
// halves' gradients into the packed one: five full-width passes. Here forward and backward are
// one pass each, the backward writing the packed gradient directly. float32 or bfloat16 (a bf16
// model's MLP: the gate/up product's bf16 output in, the down product's bf16 input out, each
// computed in float and rounded once). On a CPU without AVX2 and FMA the same formulas run as
// libtorch's ops, in float.
class SwigluPacked : public torch::autograd::Function<SwigluPacked> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& gate_up) {
    TORCH_CHECK(gate_up.device().is_cpu() && (gate_up.scalar_type() == at::kFloat ||
                                              gate_up.scalar_type() == at::kBFloat16),
                "kubetune::swiglu_packed takes a float32 or bfloat16 CPU tensor");
    TORCH_CHECK(gate_up.dim() >= 1 && gate_up.size(-1) > 0 && gate_up.size(-1) % 2 == 0,
                "kubetune::swiglu_packed needs a non-empty, even last axis (gate, then up)");
    Tensor packed = gate_up.contiguous();
    ctx->save_for_backward({packed});
    int64_t width = packed.size(-1) / 2;
    std::vector<int64_t> shape = packed.sizes().vec();
    shape.back() = width;
    if (!kubetune::vectorized_kernels_supported()) {
      // In float, rounded once to the input's type, as the vectorized kernels do.
      auto halves = packed.to(at::kFloat).chunk(2, -1);
      return at::mul(at::silu(halves[0]), halves[1]).to(packed.scalar_type());
    }
    Tensor act = at::empty(shape, packed.options());
    int64_t rows = packed.numel() / (2 * width);
    if (packed.scalar_type() == at::kBFloat16) {
      kubetune::swiglu_packed_forward(packed.data_ptr<c10::BFloat16>(),
                                      act.data_ptr<c10::BFloat16>(), rows, width);
    } else {
      kubetune::swiglu_packed_forward(packed.data_ptr<float>(), act.data_ptr<float>(), rows, width);
    }
    return act;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list outputGradients) {
    Tensor packed = ctx->get_saved_variables()[0];
    Tensor d = outputGradients[0].to(packed.scalar_type()).contiguous();
    int64_t width = packed.size(-1) / 2;
    if (!kubetune::vectorized_kernels_supported()) {
      auto halves = packed.to(at::kFloat).chunk(2, -1);
      Tensor wide = d.to(at::kFloat);
      return {at::cat({at::silu_backward(at::mul(wide, halves[1]), halves[0]),
                       at::mul(wide, at::silu(halves[0]))},
                      -1)
                  .to(packed.scalar_type())};
    }
    Tensor grad = at::empty_like(packed);
    int64_t rows = packed.numel() / (2 * width);
    if (packed.scalar_type() == at::kBFloat16) {
      kubetune::swiglu_packed_backward(packed.data_ptr<c10::BFloat16>(),
                                       d.data_ptr<c10::BFloat16>(),
                                       grad.data_ptr<c10::BFloat16>(), rows, width);
    } else {
      kubetune::swiglu_packed_backward(packed.data_ptr<float>(), d.data_ptr<float>(),
                                       grad.data_ptr<float>(), rows, width);
    }
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

// Rotary position embedding of q or k (batch, heads, seq, dim) with tables cos and sin (seq, dim,
// any leading ones): x cos + rotate_half(x) sin, rotate_half(x) = cat(-x2, x1), as transformers
// writes it. libtorch's ops take five full-size results forward (neg, cat, two products, a sum)
// and as many backward; here one pass each way, reading x through its strides (the projection's
// output seen per head) and writing the contiguous result attention wants. On a CPU without AVX2
// and FMA the same formula runs as libtorch's ops.
class Rotary : public torch::autograd::Function<Rotary> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& cos,
                        const Tensor& sin) {
    TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat &&
                    cos.scalar_type() == at::kFloat && sin.scalar_type() == at::kFloat,
                "kubetune::rotary takes float32 CPU tensors");
    TORCH_CHECK(x.dim() == 4 && x.size(3) % 2 == 0,
                "kubetune::rotary takes x of shape (batch, heads, seq, dim) with an even dim");
    int64_t seq = x.size(2);
    int64_t dim = x.size(3);
    TORCH_CHECK(cos.numel() == seq * dim && sin.numel() == seq * dim,
                "kubetune::rotary needs cos and sin tables of (seq, dim)");
    Tensor c = cos.detach().reshape({seq, dim}).contiguous();
    Tensor s = sin.detach().reshape({seq, dim}).contiguous();
    ctx->save_for_backward({c, s});
    return rotate(x, c, s, false);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list outputGradients) {
    auto saved = ctx->get_saved_variables();
    return {rotate(outputGradients[0], saved[0], saved[1], true), Tensor(), Tensor()};
  }

 private:
  static Tensor rotate(const Tensor& input, const Tensor& c, const Tensor& s, bool transpose) {
    if (!kubetune::vectorized_kernels_supported()) {
      int64_t half = input.size(3) / 2;
      Tensor x1 = input.narrow(3, 0, half);
      Tensor x2 = input.narrow(3, half, half);
      // The transposed map of x cos + rotate_half(x) sin: x cos + rotate_half^T(x sin).
      if (transpose) {
        Tensor xs = at::mul(input, s);
        return at::add(at::mul(input, c),
                       at::cat({xs.narrow(3, half, half), at::neg(xs.narrow(3, 0, half))}, 3));
      }
      return at::add(at::mul(input, c), at::mul(at::cat({at::neg(x2), x1}, 3), s));
    }
    Tensor x = input.stride(3) == 1 ? input : input.contiguous();
    Tensor y = at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
    kubetune::rotary(x.data_ptr<float>(), x.stride(0), x.stride(1), x.stride(2),
                     c.data_ptr<float>(), s.data_ptr<float>(), y.data_ptr<float>(), x.size(0),
                     x.size(1), x.size(2), x.size(3), transpose);
    return y;
  }
};

Tensor rotary(const Tensor& x, const Tensor& cos, const Tensor& sin) {
  return Rotary::apply(x, cos, sin);
}

// The cross-entropy's softmax over a chunk of logits (rows, vocab), in place: each row becomes
// w[row] * softmax(row), what the backward multiplies by the head; returns sum_row w[row] *
// logsumexp(row) (float32, summed in row order, so the same on any thread count). libtorch's ops
// take five passes over the chunk (max, subtract, exp, sum, scale), a bf16 chunk two more to widen
// and narrow it; here three passes over each row while it stays in cache, in float (bf16 widened
// exactly, each result rounded once). Called on arrays outside autograd (ChunkedCrossEntropy). On
// a CPU without AVX2 and FMA the same formulas run as libtorch's ops.
Tensor weighted_softmax_(Tensor& logits, const Tensor& w) {
  TORCH_CHECK(logits.device().is_cpu() && w.device().is_cpu(),
              "kubetune::weighted_softmax_ runs on the CPU only");
  TORCH_CHECK(logits.scalar_type() == at::kFloat || logits.scalar_type() == at::kBFloat16,
              "kubetune::weighted_softmax_ takes float32 or bfloat16 logits");
  TORCH_CHECK(logits.dim() == 2 && logits.is_contiguous(),
              "kubetune::weighted_softmax_ takes contiguous (rows, vocab) logits");
  TORCH_CHECK(w.scalar_type() == at::kFloat && w.numel() == logits.size(0),
              "kubetune::weighted_softmax_ takes one float32 weight per row");
  Tensor weights = w.reshape({-1}).contiguous();
  int64_t rows = logits.size(0);
  int64_t vocab = logits.size(1);
  Tensor lse = at::empty({rows}, weights.options());
  if (!kubetune::vectorized_kernels_supported()) {
    Tensor wide = logits.to(at::kFloat);
    Tensor maxes = at::amax(wide, {1}, true);
    Tensor exps = at::exp(at::sub(wide, maxes));
    Tensor sums = at::sum(exps, {1}, true);
    lse.copy_(at::add(at::log(sums), maxes).reshape({-1}));
    logits.copy_(at::mul(exps, at::div(weights.unsqueeze(1), sums)));
  } else if (logits.scalar_type() == at::kBFloat16) {
    kubetune::weighted_softmax_rows(logits.data_ptr<c10::BFloat16>(), weights.data_ptr<float>(),
                                    lse.data_ptr<float>(), rows, vocab);
  } else {
    kubetune::weighted_softmax_rows(logits.data_ptr<float>(), weights.data_ptr<float>(),
                                    lse.data_ptr<float>(), rows, vocab);
  }
  const float* lp = lse.data_ptr<float>();
  const float* wp = weights.data_ptr<float>();
  double total = 0;
  for (int64_t r = 0; r < rows; r++) {
    total += static_cast<double>(wp[r]) * lp[r];
  }
  return at::scalar_tensor(total, weights.options());
}

}  // namespace

namespace {
// Cleared by use_vectorized_kernels(false): the operators then run their fallbacks.
std::atomic<bool> vectorizedKernelsWanted{true};
}  // namespace

bool kubetune::vectorized_kernels_supported() {
  static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return supported && vectorizedKernelsWanted.load(std::memory_order_relaxed);
}

// For tests: with false the operators run the fallbacks a CPU without AVX2 and FMA runs, so those
// are tested on the machines that have them; true restores the vectorized kernels where the CPU
// has them. Returns whether they are used now. Not for use while operators run.
bool use_vectorized_kernels(bool on) {
  vectorizedKernelsWanted.store(on, std::memory_order_relaxed);
  return kubetune::vectorized_kernels_supported();
}

// Whether the operators run their vectorized kernels on this CPU (else libtorch's ops inside them);
// reported by NativeKernels.status().
bool vectorized_kernels() {
  return kubetune::vectorized_kernels_supported();
}

// Returns the heap's free memory to the operating system (glibc's malloc_trim): what earlier work
// in the process freed but the allocator kept then no longer counts in the resident set. The
// benchmark calls it before each run, so a run's peak RSS is its own, as in a fresh process.
bool release_free_memory() {
  return malloc_trim(0) == 1;
}

TORCH_LIBRARY(kubetune, m) {
  m.def("vectorized_kernels() -> bool", &vectorized_kernels);
  m.def("release_free_memory() -> bool", &release_free_memory);
  m.def("use_vectorized_kernels(bool on) -> bool", &use_vectorized_kernels);
  m.def(
      "dropout_down_projections(Tensor x, Tensor a, int members, float rare, bool drops_are_rarer)"
      " -> Tensor",
      &dropout_down_projections);
  m.def("swiglu_packed(Tensor gate_up) -> Tensor", &swiglu_packed);
  m.def("rms_norm(Tensor x, Tensor weight, Tensor eps) -> Tensor", &rms_norm);
  m.def("weighted_softmax_(Tensor(a!) logits, Tensor w) -> Tensor", &weighted_softmax_);
  m.def("rotary(Tensor x, Tensor cos, Tensor sin) -> Tensor", &rotary);
}
