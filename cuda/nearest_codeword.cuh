// Fused nearest-codeword score pass: bf16 tensor-core scores and per-lane top-C candidate lists. The certificate
// (a bound on these scores' error proving that the lists hold the k nearest), the exact float64 re-rank and the
// fallback for rows without a proof are torch code: tokenizers_zoo/ops/certified.py.
//
// Two kernels, neither of which writes the N x K score matrix:
//   1. prepare_rows:   rows of X or C -> centred (cosine: unit, then centred) bf16 rows padded to Dp (hi + lo
//                      pairs for D <= 3 and in the precise pass), the code bias in two extra columns when D <= 32
//                      ("augmented": the MMA then yields the score).
//   2. score_topc:     one CTA per tile of BM rows (and per codebook split) sweeps its codes tile by tile with
//                      mma.sync m16n8k16 (fp32 accumulate); each lane keeps the C best scores of each of its rows.
//
// Score of code j for row x:  b_j - 2 (x - m).(c_j - m), m the mean code, b_j = ||c_j - m||^2 (l2); for cosine the
// same on unit vectors with b_j = ||c_j - m||^2 + 1 - ||c_j||^2: centring keeps a common offset out of the bf16 terms.
// Torch-free: compiled by nvcc alone and, through nearest_codeword.cu, by torch's extension tooling.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

namespace tzoo {

constexpr int kThreads = 256;    // 8 warps: 4 along rows x 2 along codes
constexpr int kWarpsM = 4;
constexpr int kWarpsN = 2;
constexpr int kBN = 128;         // codes per tile
constexpr int kWN = kBN / kWarpsN;  // 64 codes per warp
constexpr int kNT = kWN / 8;     // n8 tiles per warp
constexpr int kListsPerCta = kWarpsN * 4;  // candidate lists per row and CTA (4 lanes of a quad x warps along N)
constexpr int kStages = 3;       // cp.async pipeline depth
constexpr int kPad = 8;          // bf16 padding per smem row: conflict-free ldmatrix
constexpr int kMaxPerLane = 8;   // candidate lists per row <= kMaxPerLane * 32 = 256 entries

// ----------------------------------------------------------------------------------- small PTX helpers

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  int bytes = valid ? 16 : 0;  // 0 -> zero fill
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const void* smem) {
  unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

__device__ __forceinline__ void mma_bf16(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// d = a.b + (c0, c1) per column pair: starts a tile's accumulator from the code bias (no clearing, no add later)
__device__ __forceinline__ void mma_bf16_first(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1,
                                               float c0, float c1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%10,%11};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "f"(c0), "f"(c1));
}

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(double v) { return static_cast<float>(v); }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
// ----------------------------------------------------------------------------------- 1. prepare rows

// One warp per row: v = src - center, or src / max(||src||, eps) - center (normalize), times `scale`, written as
// bf16 into dst[row, 0:D]. hi_lo: v as bf16 hi + lo in four blocks of D columns, [hi, hi, lo, lo] for X against
// [hi, lo, hi, lo] for C (`codes`), so the MMA sums all four products. augment: then two columns, 1, 1 for X and
// hi, lo of code_bias[row] for C; zeros up to Dp. Explicit _rn operations: no contraction into FMAs, so the
// rounding is the emulation's (tokenizers_zoo/ops/certified.py).
template <typename T>
__global__ void prepare_rows(const T* __restrict__ src, int64_t rows, int dim, int64_t stride_row,
                             int64_t stride_col, const float* __restrict__ center, bool normalize, bool hi_lo,
                             bool codes, bool augment, float scale, const float* __restrict__ code_bias,
                             __nv_bfloat16* __restrict__ dst, int padded_dim) {
  const int lane = threadIdx.x & 31;
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  if (row >= rows) return;
  const T* in = src + row * stride_row;
  float inverse_norm = 1.f;
  if (normalize) {
    float sq = 0.f;
    for (int d = lane; d < dim; d += 32) {
      const float v = to_float(in[d * stride_col]);
      sq = __fadd_rn(sq, __fmul_rn(v, v));
    }
    inverse_norm = 1.f / fmaxf(sqrtf(warp_sum(sq)), 1e-12f);
  }
  const int value_columns = hi_lo ? 4 * dim : dim;
  __nv_bfloat16* out = dst + row * padded_dim;
  for (int d = lane; d < padded_dim; d += 32) {
    float v = 0.f;
    if (d < value_columns) {
      const float raw = to_float(in[(d % dim) * stride_col]);
      v = __fmul_rn(__fsub_rn(normalize ? __fmul_rn(raw, inverse_norm) : raw, center[d % dim]), scale);
      if (hi_lo) {
        const float hi = __bfloat162float(__float2bfloat16(v));
        const int block = d / dim;
        const bool low = codes ? (block & 1) != 0 : block >= 2;
        v = low ? __fsub_rn(v, hi) : hi;
      }
    } else if (augment && !codes && d < value_columns + 2) {
      v = 1.f;
    } else if (augment && codes && d == value_columns) {
      v = __bfloat162float(__float2bfloat16(code_bias[row]));
    } else if (augment && codes && d == value_columns + 1) {
      v = __fsub_rn(code_bias[row], __bfloat162float(__float2bfloat16(code_bias[row])));
    }
    out[d] = __float2bfloat16(v);
  }
}

// ----------------------------------------------------------------------------------- 2. fused score + top-C

template <int C>
struct TopList {
  float v[C];
  int i[C];
  __device__ __forceinline__ void reset() {
#pragma unroll
    for (int c = 0; c < C; ++c) { v[c] = __int_as_float(0x7f800000); i[c] = -1; }
  }
  // Insert keeping ascending order; equal scores stay behind earlier (lower-index) entries.
  __device__ __forceinline__ void insert(float s, int idx) {
    if (!(s < v[C - 1])) return;
#pragma unroll
    for (int c = C - 1; c > 0; --c) {
      bool shift = s < v[c - 1];
      bool place = !shift && s < v[c];
      if (shift) { v[c] = v[c - 1]; i[c] = i[c - 1]; }
      if (place) { v[c] = s; i[c] = idx; }
    }
    if (s < v[0]) { v[0] = s; i[0] = idx; }
  }
};

// cp.async of rows [first, first + ROWS) x columns [kc * BK, (kc + 1) * BK) of a [rows, padded_dim] bf16 matrix
// into a smem tile with a padded row pitch; rows at or past `end` are zero-filled (read address clamped below
// `rows`).
template <int ROWS, int BK>
__device__ __forceinline__ void load_tile(__nv_bfloat16* dst, const __nv_bfloat16* src, int first, int end, int rows,
                                          int padded_dim, int kc) {
  constexpr int kVecs = ROWS * BK / 8;
#pragma unroll
  for (int v = threadIdx.x; v < kVecs; v += kThreads) {
    const int r = v / (BK / 8), c8 = v % (BK / 8), row = first + r;
    const __nv_bfloat16* from = src + static_cast<int64_t>(min(row, rows - 1)) * padded_dim + kc * BK + c8 * 8;
    cp_async16(dst + r * (BK + kPad) + c8 * 8, from, row < end);
  }
}

// Grid: (ceil(N / BM), splits). BM = 64 * MT. BK: reduction chunk (multiple of 16). RESIDENT: Dp == BK, the
// row tile's A fragments stay in registers for the whole sweep and only codebook tiles are streamed.
template <int BK, int MT, int C, bool RESIDENT>
__global__ void __launch_bounds__(kThreads, 1)
score_topc(const __nv_bfloat16* __restrict__ X, const __nv_bfloat16* __restrict__ CB,
           const float* __restrict__ code_bias, int n_rows, int n_codes, int padded_dim, int codes_per_split,
           float* __restrict__ cand_val, int* __restrict__ cand_idx) {
  constexpr int BM = kWarpsM * 16 * MT;
  constexpr int LD = BK + kPad;
  constexpr int KS = BK / 16;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __nv_bfloat16* smem = reinterpret_cast<__nv_bfloat16*>(smem_raw);
  __nv_bfloat16* a_smem = smem;                          // [stages or 1][BM][LD]
  __nv_bfloat16* b_smem = smem + (RESIDENT ? 1 : kStages) * BM * LD;  // [stages][BN][LD]
  float* bias_smem = reinterpret_cast<float*>(b_smem + kStages * kBN * LD);  // [stages][BN]

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int warp_m = warp / kWarpsN, warp_n = warp % kWarpsN;
  const int g = lane >> 2, t4 = lane & 3;
  const int row0 = blockIdx.x * BM;
  const int split = blockIdx.y, n_splits = gridDim.y;
  const int code_begin = split * codes_per_split;
  const int code_end = min(n_codes, code_begin + codes_per_split);
  const int n_tiles = (code_end - code_begin + kBN - 1) / kBN;
  const int nkc = padded_dim / BK;
  const int total = n_tiles * nkc;

  auto load_a = [&](__nv_bfloat16* dst, int kc) { load_tile<BM, BK>(dst, X, row0, n_rows, n_rows, padded_dim, kc); };
  auto load_b = [&](__nv_bfloat16* dst, int tile, int kc) {
    load_tile<kBN, BK>(dst, CB, code_begin + tile * kBN, code_end, n_codes, padded_dim, kc);
  };
  auto load_bias = [&](float* dst, int tile) {  // 32 threads x 4 codes; zeros past the split or without a bias
    const int code = code_begin + tile * kBN + tid * 4;
    const bool valid = code_bias != nullptr && code < code_end;
    if (tid >= kBN / 4) return;
    if (!valid || code + 3 < code_end) {
      cp_async16(dst + tid * 4, valid ? code_bias + code : reinterpret_cast<const float*>(CB), valid);
    } else {  // ragged end of the split: plain loads (visible after the barrier two iterations later)
      for (int j = 0; j < 4; ++j) dst[tid * 4 + j] = code + j < code_end ? code_bias[code + j] : 0.f;
    }
  };
  auto load_stage = [&](int it) {
    const int stage = it % kStages;
    if constexpr (!RESIDENT) load_a(a_smem + stage * BM * LD, it % nkc);
    load_b(b_smem + stage * kBN * LD, it / nkc, it % nkc);
    if (it % nkc == 0) load_bias(bias_smem + stage * kBN, it / nkc);
  };

  TopList<C> lists[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) { lists[mt][0].reset(); lists[mt][1].reset(); }
  float acc[MT][kNT][4];  // written from zero by the first chunk of every tile

  unsigned a_res[RESIDENT ? MT : 1][RESIDENT ? KS : 1][4];
  if constexpr (RESIDENT) {
    load_a(a_smem, 0);
    cp_async_commit();
  }
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < total) load_stage(s);
    cp_async_commit();
  }
  if constexpr (RESIDENT) {
    cp_async_wait<kStages - 1>();  // the A group (committed first) has landed
    __syncthreads();
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int ks = 0; ks < KS; ++ks)
        ldmatrix_x4(a_res[mt][ks], a_smem + (warp_m * 16 * MT + mt * 16 + (lane & 15)) * LD + ks * 16 + (lane >> 4) * 8);
  }

  for (int it = 0; it < total; ++it) {
    cp_async_wait<kStages - 2>();
    __syncthreads();
    if (it + kStages - 1 < total) load_stage(it + kStages - 1);
    cp_async_commit();

    const int stage = it % kStages;
    const bool first_chunk = it % nkc == 0;
    const __nv_bfloat16* bs = b_smem + stage * kBN * LD;
    const float* bias = bias_smem + stage * kBN + warp_n * kWN + 2 * t4;
#pragma unroll
    for (int ks = 0; ks < KS; ++ks) {
      unsigned a[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        if constexpr (RESIDENT) {
#pragma unroll
          for (int e = 0; e < 4; ++e) a[mt][e] = a_res[mt][ks][e];
        } else {
          const __nv_bfloat16* as = a_smem + stage * BM * LD;
          ldmatrix_x4(a[mt], as + (warp_m * 16 * MT + mt * 16 + (lane & 15)) * LD + ks * 16 + (lane >> 4) * 8);
        }
      }
#pragma unroll
      for (int np = 0; np < kNT / 2; ++np) {
        unsigned b[4];
        const int quad = lane >> 3;
        ldmatrix_x4(b, bs + (warp_n * kWN + np * 16 + (quad >> 1) * 8 + (lane & 7)) * LD + ks * 16 + (quad & 1) * 8);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          if (ks == 0 && (RESIDENT || first_chunk)) {
            const float2 lo = *reinterpret_cast<const float2*>(bias + np * 16);
            const float2 hi = *reinterpret_cast<const float2*>(bias + np * 16 + 8);
            mma_bf16_first(acc[mt][2 * np], a[mt], b[0], b[1], lo.x, lo.y);
            mma_bf16_first(acc[mt][2 * np + 1], a[mt], b[2], b[3], hi.x, hi.y);
          } else {
            mma_bf16(acc[mt][2 * np], a[mt], b[0], b[1]);
            mma_bf16(acc[mt][2 * np + 1], a[mt], b[2], b[3]);
          }
        }
      }
    }

    if (it % nkc == nkc - 1) {  // the tile's scores are complete: update the lists
      const int code0 = code_begin + (it / nkc) * kBN + warp_n * kWN + 2 * t4;
      const bool full = code_begin + (it / nkc + 1) * kBN <= code_end;
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          float s[2 * kNT];
#pragma unroll
          for (int nt = 0; nt < kNT; ++nt) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              const float v = acc[mt][nt][2 * h + e];
              s[2 * nt + e] = (full || code0 + nt * 8 + e < code_end) ? v : __int_as_float(0x7f800000);
            }
          }
          static_assert(kNT == 8, "the min tree below assumes 16 scores per row and tile");
          float m[8];  // pairwise tree: 4 levels instead of a 15-long dependency chain
#pragma unroll
          for (int j = 0; j < 8; ++j) m[j] = fminf(s[j], s[j + 8]);
#pragma unroll
          for (int j = 0; j < 4; ++j) m[j] = fminf(m[j], m[j + 4]);
          const float best = fminf(fminf(m[0], m[2]), fminf(m[1], m[3]));
          if (best < lists[mt][h].v[C - 1]) {
#pragma unroll
            for (int j = 0; j < 2 * kNT; ++j) lists[mt][h].insert(s[j], code0 + (j >> 1) * 8 + (j & 1));
          }
        }
      }
    }
  }
  cp_async_wait<0>();

  const int lists_per_row = n_splits * kListsPerCta;
  const int list = split * kListsPerCta + warp_n * 4 + t4;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = row0 + warp_m * 16 * MT + mt * 16 + h * 8 + g;
      if (row >= n_rows) continue;
      const int64_t base = (static_cast<int64_t>(row) * lists_per_row + list) * C;
#pragma unroll
      for (int c = 0; c < C; ++c) {
        cand_val[base + c] = lists[mt][h].v[c];
        cand_idx[base + c] = lists[mt][h].i[c];
      }
    }
  }
}

template <int BK, int MT, bool RESIDENT>
constexpr size_t score_topc_smem() {
  return sizeof(__nv_bfloat16) * (BK + kPad) * ((RESIDENT ? 1 : kStages) * kWarpsM * 16 * MT + kStages * kBN) +
         sizeof(float) * kStages * kBN;
}

}  // namespace tzoo
