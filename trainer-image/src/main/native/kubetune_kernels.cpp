// KubeTune's own libtorch operators, for work that libtorch's ops can only do with a full-size
// intermediate. Built against the libtorch 2.7.1 headers by build.sh and loaded into the trainer's
// process after DJL has loaded libtorch (see NativeKernels.java); registered as
// torch.ops.kubetune.*, with their own backward, so TorchScript calls them and autograd records
// them like any libtorch op.

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

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

}  // namespace

TORCH_LIBRARY(kubetune, m) {
  m.def(
      "rare_down_projections(Tensor x, Tensor a, Tensor positions, int members) -> Tensor",
      &rare_down_projections);
}
