// Host side of the fused score pass: plans the launch, prepares the bf16 operands, runs the two kernels of
// nearest_codeword.cuh on the current stream (no host synchronisation: CUDA-graph safe) and returns the candidate
// lists; the certificate, the exact re-rank and the fallback are torch code (tokenizers_zoo/ops/certified.py).
// Only c10's CUDA headers: ATen/cuda/CUDAContext.h would pull in cuBLAS/cuSPARSE headers that a bare toolkit lacks.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/extension.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "nearest_codeword.cuh"

namespace {

struct Plan {
  int padded_dim;   // Dp: D (x 4 for hi + lo, +2 augmented columns) rounded up to the reduction chunk
  int bk;           // reduction chunk
  bool augment;     // code bias folded into the MMA (D <= 32)
  bool hi_lo;       // operands as bf16 hi + lo, four products per value (D <= 3, where 4 D + 2 <= 16; or precise)
  bool resident;    // Dp == bk: row tile kept in registers
  int mt, lists_c;  // m16 tiles per warp (BM = 64 * mt), candidates per lane list
  int splits;
};

int round_up(int v, int m) { return (v + m - 1) / m * m; }

template <int BK, int MT, int C, bool RESIDENT>
void launch_score(const Plan& plan, const at::Tensor& xp, const at::Tensor& cp, const at::Tensor& bias, int n,
                  int k_codes, at::Tensor& cand_val, at::Tensor& cand_idx, cudaStream_t stream) {
  auto kernel = tzoo::score_topc<BK, MT, C, RESIDENT>;
  const size_t smem = tzoo::score_topc_smem<BK, MT, RESIDENT>();
  C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const int bm = tzoo::kWarpsM * 16 * MT;
  const int code_tiles = (k_codes + tzoo::kBN - 1) / tzoo::kBN;
  const int codes_per_split = (code_tiles + plan.splits - 1) / plan.splits * tzoo::kBN;
  dim3 grid((n + bm - 1) / bm, plan.splits);
  kernel<<<grid, tzoo::kThreads, smem, stream>>>(
      reinterpret_cast<const __nv_bfloat16*>(xp.data_ptr<at::BFloat16>()),
      reinterpret_cast<const __nv_bfloat16*>(cp.data_ptr<at::BFloat16>()),
      bias.defined() ? bias.data_ptr<float>() : nullptr, n, k_codes, plan.padded_dim, codes_per_split,
      cand_val.data_ptr<float>(), cand_idx.data_ptr<int>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <int MT, int C>
void dispatch_chunk(const Plan& p, const at::Tensor& xp, const at::Tensor& cp, const at::Tensor& bias, int n,
                    int k_codes, at::Tensor& val, at::Tensor& idx, cudaStream_t s) {
  if (p.resident) {
    switch (p.bk) {
      case 16: return launch_score<16, MT, C, true>(p, xp, cp, bias, n, k_codes, val, idx, s);
      case 32: return launch_score<32, MT, C, true>(p, xp, cp, bias, n, k_codes, val, idx, s);
      case 48: return launch_score<48, MT, C, true>(p, xp, cp, bias, n, k_codes, val, idx, s);
      case 64: return launch_score<64, MT, C, true>(p, xp, cp, bias, n, k_codes, val, idx, s);
    }
  } else {
    switch (p.bk) {
      case 32: return launch_score<32, MT, C, false>(p, xp, cp, bias, n, k_codes, val, idx, s);
      case 64: return launch_score<64, MT, C, false>(p, xp, cp, bias, n, k_codes, val, idx, s);
    }
  }
  TORCH_CHECK(false, "nearest_codeword: no kernel for reduction chunk ", p.bk);
}

// Codebook splits that minimise the waves of the score kernel (each split adds candidates to re-rank).
int choose_splits(int row_tiles, int code_tiles, int slots, int max_splits) {
  int best = 1;
  double best_cost = 1e30;
  for (int s = 1; s <= std::min(max_splits, code_tiles); ++s) {
    const double waves = static_cast<double>((row_tiles * s + slots - 1) / slots);
    const double cost = waves / s * (1.0 + 0.02 * s);
    if (cost < best_cost - 1e-9) { best_cost = cost; best = s; }
  }
  return best;
}

Plan make_plan(int n, int k_codes, int dim, int k, bool precise, int sm_count) {
  Plan p{};
  p.augment = dim <= 32;
  p.hi_lo = precise || dim <= 3;
  const int columns = (p.hi_lo ? 4 * dim : dim) + (p.augment ? 2 : 0);
  if (columns <= 64) {  // resident: the row tile stays in registers
    p.padded_dim = round_up(columns, 16);
    p.bk = p.padded_dim;
  } else {
    p.padded_dim = round_up(columns, 32);
    p.bk = p.padded_dim % 64 == 0 ? 64 : 32;
  }
  p.resident = p.padded_dim == p.bk;
  p.lists_c = k <= 4 ? 4 : 16;
  p.mt = k <= 4 ? 2 : 1;
  const int bm = tzoo::kWarpsM * 16 * p.mt;
  const int max_splits = tzoo::kMaxPerLane * 32 / (tzoo::kListsPerCta * p.lists_c);
  const int code_tiles = (k_codes + tzoo::kBN - 1) / tzoo::kBN;
  const int splits = choose_splits((n + bm - 1) / bm, code_tiles, sm_count, max_splits);
  const int tiles_per_split = (code_tiles + splits - 1) / splits;
  p.splits = (code_tiles + tiles_per_split - 1) / tiles_per_split;  // no empty split
  return p;
}

template <typename T>
void prepare(const at::Tensor& src, const at::Tensor& center, bool normalize, const Plan& plan, bool codes, float scale,
             const float* code_bias, at::Tensor& dst, cudaStream_t stream) {
  const int64_t rows = src.size(0);
  const int threads = 256;
  const int64_t blocks = (rows * 32 + threads - 1) / threads;
  tzoo::prepare_rows<T><<<blocks, threads, 0, stream>>>(
      reinterpret_cast<const T*>(src.data_ptr()), rows, static_cast<int>(src.size(1)), src.stride(0), src.stride(1),
      center.data_ptr<float>(), normalize, plan.hi_lo, codes, plan.augment, scale, code_bias,
      reinterpret_cast<__nv_bfloat16*>(dst.data_ptr<at::BFloat16>()), static_cast<int>(dst.size(1)));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// The centre m (the mean code; of the unit codes for cosine) and the code bias b (float64, rounded once to float32):
// ||c - m||^2, plus 1 - ||c_hat||^2 for cosine (0 unless the code is shorter than eps), as certified.center_and_bias
// computes them.
std::pair<at::Tensor, at::Tensor> center_and_bias(const at::Tensor& codebook, bool cosine) {
  at::Tensor codes = codebook.to(at::kDouble);
  if (cosine) codes = codes * (1.0 / codes.square().sum(1, true).sqrt().clamp_min(1e-12));
  at::Tensor center = codes.mean(0).to(at::kFloat).contiguous();
  at::Tensor bias = (codes - center.to(at::kDouble)).square().sum(1);
  if (cosine) bias = bias + (1.0 - codes.square().sum(1));
  return {center, bias.to(at::kFloat).contiguous()};
}

// The score pass only: fills the candidate lists and returns the bf16 operands it used (for the certificate).
template <typename T>
std::vector<at::Tensor> run(const at::Tensor& x, const at::Tensor& cb, int64_t k, bool cosine, bool precise) {
  const int n = static_cast<int>(x.size(0)), k_codes = static_cast<int>(cb.size(0)), dim = static_cast<int>(x.size(1));
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  int sms = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, x.get_device()));
  const Plan plan = make_plan(n, k_codes, dim, static_cast<int>(k), precise, sms);

  auto bf16 = x.options().dtype(at::kBFloat16);
  auto f32 = x.options().dtype(at::kFloat);
  at::Tensor xp = at::empty({n, plan.padded_dim}, bf16);
  at::Tensor cp = at::empty({k_codes, plan.padded_dim}, bf16);
  auto [center, bias] = center_and_bias(cb, cosine);
  prepare<T>(x, center, cosine, plan, false, -2.f, nullptr, xp, stream);
  prepare<T>(cb, center, cosine, plan, true, 1.f, bias.data_ptr<float>(), cp, stream);
  if (plan.augment) bias = at::empty({0}, f32);  // folded into cp: the score kernel adds no bias

  const int lists = plan.splits * tzoo::kListsPerCta * plan.lists_c;
  at::Tensor cand_val = at::empty({n, lists}, f32);
  at::Tensor cand_idx = at::empty({n, lists}, x.options().dtype(at::kInt));
  if (plan.lists_c == 4) {
    dispatch_chunk<2, 4>(plan, xp, cp, bias, n, k_codes, cand_val, cand_idx, stream);
  } else {
    dispatch_chunk<1, 16>(plan, xp, cp, bias, n, k_codes, cand_val, cand_idx, stream);
  }
  return {cand_val, cand_idx, xp, cp, bias, center};
}

}  // namespace

// Candidate lists of the fused score pass, for the certified search in Python (tokenizers_zoo/ops/cuda.py):
// [cand_val [N, L] float32 (+inf: empty), cand_idx [N, L] int32 (-1: empty), xp [N, Dp] and cp [K, Dp] bf16
// operands (xp = -2 (x - m), cp = c - m, on unit vectors for cosine, as hi + lo blocks for D <= 3 or `precise`;
// then 1, 1 and hi, lo of the bias when augmented), code bias [K] float32 (empty when augmented: D <= 32), centre m
// [D] float32].
// Each list holds the `depth` best scores of its share of the codebook, ascending (depth 4 for k <= 4, else 16).
std::vector<at::Tensor> nearest_codeword_candidates(const at::Tensor& x, const at::Tensor& codebook, int64_t k,
                                                    const std::string& metric, bool precise) {
  TORCH_CHECK(x.is_cuda() && codebook.is_cuda(), "nearest_codeword_candidates: tensors must be on a CUDA device");
  TORCH_CHECK(x.device() == codebook.device(), "nearest_codeword_candidates: x and codebook on different devices");
  TORCH_CHECK(x.dim() == 2 && codebook.dim() == 2 && x.size(1) == codebook.size(1),
              "nearest_codeword_candidates: expected x [N, D] and codebook [K, D]");
  TORCH_CHECK(x.scalar_type() == codebook.scalar_type(), "nearest_codeword_candidates: x and codebook dtypes differ");
  TORCH_CHECK(metric == "l2" || metric == "cosine", "nearest_codeword_candidates: unknown metric ", metric);
  TORCH_CHECK(k >= 1 && k <= 16 && k <= codebook.size(0), "nearest_codeword_candidates: need 1 <= k <= min(16, K)");
  TORCH_CHECK(x.size(0) >= 1, "nearest_codeword_candidates: needs at least one row");
  TORCH_CHECK(codebook.size(0) < (int64_t{1} << 31) && x.size(0) < (int64_t{1} << 31),
              "nearest_codeword_candidates: N and K must be below 2^31");
  const c10::cuda::CUDAGuard guard(x.device());
  const bool cosine = metric == "cosine";
  std::vector<at::Tensor> out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "nearest_codeword_candidates", [&] {
    using T = std::conditional_t<std::is_same_v<scalar_t, at::Half>, __half,
                                 std::conditional_t<std::is_same_v<scalar_t, at::BFloat16>, __nv_bfloat16, scalar_t>>;
    out = run<T>(x, codebook, k, cosine, precise);
  });
  return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("candidates", &nearest_codeword_candidates, "candidate lists of the fused bf16 score pass (to be certified)",
        py::arg("x"), py::arg("codebook"), py::arg("k"), py::arg("metric"),
        py::arg("precise") = false);
}
