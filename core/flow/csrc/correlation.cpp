// FlowNetC's correlation layer on the CPU: forward and backward (both inputs), float32 and float64.
//
// Semantics: core/flow/correlation.py (correlation_reference is the definition). Output position (i, j) sits at
// input (y, x) = (i s1, j s1); displacement (p, q) of the n x n grid (n = 2 steps + 1, steps = D / s2) is
// (dy, dx) = ((p - steps) s2, (q - steps) s2), channel p n + q; a k x k window of taps `dilation` apart is centred
// on (y, x); a term counts only when both a(y + oy, x + ox) and b(y + oy + dy, x + ox + dx) lie inside the maps;
// the sum is divided by C k^2.
//
// Layout: each batch group is copied to channels-last (H, W, C) so every dot product and every axpy runs over
// contiguous channels; that copy (and, in backward, a (Ho, Wo, n^2) copy of grad_out for the group) is the only
// extra memory besides one row buffer per thread. Work is split over the group's (batch, row) pairs on torch's
// intra-op threads (at::parallel_for: OpenMP in PyTorch's builds, hence -fopenmp; honours torch.set_num_threads).
// Backward gathers: every grad_a / grad_b position sums, over taps and displacements, grad_out at the output
// positions that touched it, so each thread writes only its own rows: no atomics, no races, deterministic.
//
// Hot loops are built twice on x86-64 with GCC or Clang: portable (SSE2) and AVX2+FMA; the AVX2 build is chosen at
// run time only where the CPU has it, so the library runs on any x86-64.
//
// Built with -DBRUSHSTREAM_CORRELATION_CUDA together with correlation_cuda.cu, the same Python functions also
// take CUDA tensors.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/utils/pybind.h>  // pybind11 with torch's tensor casters (lighter than torch/extension.h)

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <vector>

#include "correlation_geometry.h"

namespace {

using brushstream_correlation::Geometry;
using brushstream_correlation::geometry;

// ---------------------------------------------------------------------------------------------------------------
// Hot loops (correlation_loops.h), included twice: once portable, once compiled for AVX2+FMA.
#define BRUSHSTREAM_VECTOR_BYTES 16
namespace portable {
#include "correlation_loops.h"
}  // namespace portable

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define BRUSHSTREAM_HAS_AVX2_BUILD 1
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
#undef BRUSHSTREAM_VECTOR_BYTES
#define BRUSHSTREAM_VECTOR_BYTES 32
namespace avx2 {
#include "correlation_loops.h"
}  // namespace avx2
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

bool use_avx2() {
#ifdef BRUSHSTREAM_HAS_AVX2_BUILD
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
#else
  return false;
#endif
}

template <typename T>
void dot_list(const T* a, const T* const* ps, const int64_t* idx, int64_t m, int64_t C, T* acc) {
#ifdef BRUSHSTREAM_HAS_AVX2_BUILD
  if (use_avx2()) return avx2::dot_list<T>(a, ps, idx, m, C, acc);
#endif
  portable::dot_list<T>(a, ps, idx, m, C, acc);
}

template <typename T>
void axpy_list(T* out, const T* gs, const T* const* ps, int64_t m, int64_t C) {
#ifdef BRUSHSTREAM_HAS_AVX2_BUILD
  if (use_avx2()) return avx2::axpy_list<T>(out, gs, ps, m, C);
#endif
  portable::axpy_list<T>(out, gs, ps, m, C);
}

// ---------------------------------------------------------------------------------------------------------------
// Index helpers.

// The q (displacement column) range [lo, hi) for which x + (q - steps) s2 lies in [0, W); x in [0, W).
inline void column_range(const Geometry& g, int64_t x, int64_t& lo, int64_t& hi) {
  lo = std::max<int64_t>(0, g.steps - x / g.s2);
  hi = std::min<int64_t>(g.nd, g.steps + (g.W - 1 - x) / g.s2 + 1);
}

// The q range for which x - (q - steps) s2 lies in [0, W) (the source column of a displaced read).
inline void source_column_range(const Geometry& g, int64_t x, int64_t& lo, int64_t& hi) {
  lo = std::max<int64_t>(0, g.steps - (g.W - 1 - x) / g.s2);
  hi = std::min<int64_t>(g.nd, g.steps + x / g.s2 + 1);
}

// Output index of input coordinate v along an axis (v = o s1), or -1 if none.
inline int64_t output_index(int64_t v, int64_t extent, int64_t s1) {
  if (v < 0 || v >= extent || v % s1 != 0) return -1;
  return v / s1;
}

// How many batch elements to copy to channels-last at once: enough rows to keep every thread busy, no more
// (the copies are the kernel's extra memory).
int64_t batch_group(const Geometry& g) {
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  const int64_t rows = std::max<int64_t>(1, g.Ho);
  return std::max<int64_t>(1, std::min<int64_t>(g.B, (4 * threads + rows - 1) / rows));
}

// (nb, C, H, W) slice -> (nb, H, W, C) contiguous (no copy when it already is).
at::Tensor channels_last(const at::Tensor& t, int64_t n0, int64_t nb) {
  return t.narrow(0, n0, nb).permute({0, 2, 3, 1}).contiguous();
}

// Runs body(rows, r) for r in [0, n) on torch's intra-op threads (OpenMP in PyTorch's builds). Rows are handed out
// one at a time from a shared counter rather than in fixed slices, so a thread slowed by other work on its core
// takes fewer rows. make_scratch() builds each thread's scratch once.
template <typename MakeScratch, typename Body>
void parallel_rows(int64_t n, const MakeScratch& make_scratch, const Body& body) {
  std::atomic<int64_t> next{0};
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(n, at::get_num_threads()));
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    auto scratch = make_scratch();
    for (int64_t r; (r = next.fetch_add(1, std::memory_order_relaxed)) < n;) body(scratch, r);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Forward.

// One output row i of batch element nl (of the group): all positions and displacements, then out[n0 + nl][:][i][:].
template <typename T>
struct ForwardScratch {
  std::vector<T> row;           // (Wo, ND): the row's outputs, position-major
  std::vector<const T*> ps;     // the b vectors one tap of one position meets
  std::vector<int64_t> idx;     // their output channels
  explicit ForwardScratch(const Geometry& g) : row(g.Wo * g.ND), ps(g.ND), idx(g.ND) {}
};

template <typename T>
void forward_row(const Geometry& g, const T* A, const T* Bm, T* out, int64_t n0, int64_t nl, int64_t i,
                 ForwardScratch<T>& s) {
  const int64_t C = g.C, H = g.H, W = g.W, y = i * g.s1;
  const T* An = A + nl * H * W * C;
  const T* Bn = Bm + nl * H * W * C;
  std::fill(s.row.begin(), s.row.end(), T(0));
  for (int64_t j = 0; j < g.Wo; ++j) {
    const int64_t x = j * g.s1;
    T* acc = s.row.data() + j * g.ND;
    for (int64_t ky = -g.K; ky <= g.K; ++ky) {
      const int64_t ya = y + ky * g.dil;
      if (ya < 0 || ya >= H) continue;
      for (int64_t kx = -g.K; kx <= g.K; ++kx) {
        const int64_t xa = x + kx * g.dil;
        if (xa < 0 || xa >= W) continue;
        int64_t qlo, qhi, m = 0;
        column_range(g, xa, qlo, qhi);
        for (int64_t p = 0; p < g.nd; ++p) {
          const int64_t yb = ya + (p - g.steps) * g.s2;
          if (yb < 0 || yb >= H) continue;
          const T* brow = Bn + yb * W * C;
          for (int64_t q = qlo; q < qhi; ++q) {
            s.ps[m] = brow + (xa + (q - g.steps) * g.s2) * C;
            s.idx[m++] = p * g.nd + q;
          }
        }
        dot_list<T>(An + (ya * W + xa) * C, s.ps.data(), s.idx.data(), m, C, acc);
      }
    }
  }
  const T inv = T(g.inv);
  T* o = out + (n0 + nl) * g.ND * g.Ho * g.Wo + i * g.Wo;  // out[n][d][i][:]
  for (int64_t d = 0; d < g.ND; ++d) {
    T* od = o + d * g.Ho * g.Wo;
    for (int64_t j = 0; j < g.Wo; ++j) od[j] = s.row[j * g.ND + d] * inv;
  }
}

template <typename T>
void forward_group(const Geometry& g, const T* A, const T* Bm, T* out, int64_t n0, int64_t nb) {
  parallel_rows(
      nb * g.Ho, [&] { return ForwardScratch<T>(g); },
      [&](ForwardScratch<T>& s, int64_t r) { forward_row<T>(g, A, Bm, out, n0, r / g.Ho, r % g.Ho, s); });
}

at::Tensor forward_cpu(const at::Tensor& a, const at::Tensor& b, int64_t max_displacement, int64_t stride2,
                       int64_t kernel_size, int64_t stride1, int64_t dilation) {
  const Geometry g = geometry(a, b, max_displacement, stride2, kernel_size, stride1, dilation);
  TORCH_CHECK(a.device().is_cpu(), "correlation forward_cpu: CPU tensors expected");
  auto out = at::empty({g.B, g.ND, g.Ho, g.Wo}, a.options());
  if (out.numel() == 0) return out;
  const int64_t group = batch_group(g);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "brushstream_correlation_forward", [&] {
    for (int64_t n0 = 0; n0 < g.B; n0 += group) {
      const int64_t nb = std::min(group, g.B - n0);
      const at::Tensor A = channels_last(a, n0, nb), Bm = channels_last(b, n0, nb);
      forward_group<scalar_t>(g, A.data_ptr<scalar_t>(), Bm.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), n0, nb);
    }
  });
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Backward.

// grad_a row ya of batch element nl: for each (ya, xa), sum over taps and displacements of
// grad_out(i, j, d) b(ya + dy, xa + dx), where (i s1, j s1) + tap = (ya, xa).
template <typename T>
void grad_a_row(const Geometry& g, const T* Bn, const T* Gn, int64_t ya, T* row, const T** ps, T* gs) {
  const int64_t C = g.C, H = g.H, W = g.W;
  for (int64_t xa = 0; xa < W; ++xa) {
    int64_t qlo, qhi, m = 0;
    column_range(g, xa, qlo, qhi);
    for (int64_t ky = -g.K; ky <= g.K; ++ky) {
      const int64_t i = output_index(ya - ky * g.dil, H, g.s1);
      if (i < 0) continue;
      for (int64_t kx = -g.K; kx <= g.K; ++kx) {
        const int64_t j = output_index(xa - kx * g.dil, W, g.s1);
        if (j < 0) continue;
        const T* gp = Gn + (i * g.Wo + j) * g.ND;
        for (int64_t p = 0; p < g.nd; ++p) {
          const int64_t yb = ya + (p - g.steps) * g.s2;
          if (yb < 0 || yb >= H) continue;
          const T* brow = Bn + yb * W * C;
          for (int64_t q = qlo; q < qhi; ++q) {
            gs[m] = gp[p * g.nd + q];
            ps[m++] = brow + (xa + (q - g.steps) * g.s2) * C;
          }
        }
      }
    }
    axpy_list<T>(row + xa * C, gs, ps, m, C);
  }
}

// grad_b row yb of batch element nl: for each (yb, xb), sum over taps and displacements of
// grad_out(i, j, d) a(yb - dy, xb - dx), where (i s1, j s1) + tap = (yb - dy, xb - dx).
template <typename T>
void grad_b_row(const Geometry& g, const T* An, const T* Gn, int64_t yb, T* row, const T** ps, T* gs) {
  const int64_t C = g.C, H = g.H, W = g.W;
  for (int64_t xb = 0; xb < W; ++xb) {
    int64_t qlo, qhi, m = 0;
    source_column_range(g, xb, qlo, qhi);
    for (int64_t p = 0; p < g.nd; ++p) {
      const int64_t ya = yb - (p - g.steps) * g.s2;
      if (ya < 0 || ya >= H) continue;
      const T* arow = An + ya * W * C;
      for (int64_t ky = -g.K; ky <= g.K; ++ky) {
        const int64_t i = output_index(ya - ky * g.dil, H, g.s1);
        if (i < 0) continue;
        const T* grow = Gn + i * g.Wo * g.ND;
        for (int64_t kx = -g.K; kx <= g.K; ++kx) {
          for (int64_t q = qlo; q < qhi; ++q) {
            const int64_t xa = xb - (q - g.steps) * g.s2;
            const int64_t j = output_index(xa - kx * g.dil, W, g.s1);
            if (j < 0) continue;
            gs[m] = grow[j * g.ND + p * g.nd + q];
            ps[m++] = arow + xa * C;
          }
        }
      }
    }
    axpy_list<T>(row + xb * C, gs, ps, m, C);
  }
}

// row (W, C) * inv -> dst[c][x] (one row of a (C, H, W) map).
template <typename T>
void store_row(const Geometry& g, const T* row, T* dst) {
  const T inv = T(g.inv);
  for (int64_t c = 0; c < g.C; ++c) {
    T* dc = dst + c * g.H * g.W;
    for (int64_t x = 0; x < g.W; ++x) dc[x] = row[x * g.C + c] * inv;
  }
}

template <typename T>
struct BackwardScratch {
  std::vector<T> row;           // (W, C): one gradient row, channels-last
  std::vector<T> gs;            // the grad_out values one position gathers ...
  std::vector<const T*> ps;     // ... and the vectors they multiply
  explicit BackwardScratch(const Geometry& g)
      : row(g.W * g.C), gs((2 * g.K + 1) * (2 * g.K + 1) * g.ND), ps(gs.size()) {}
};

// Rows [0, nb H) are grad_a's rows (if wanted), the next nb H grad_b's (if wanted).
template <typename T>
void backward_group(const Geometry& g, const T* A, const T* Bm, const T* G, T* ga, T* gb, int64_t n0, int64_t nb) {
  const int64_t C = g.C, H = g.H, W = g.W;
  const int64_t rows_a = ga ? nb * H : 0, rows_b = gb ? nb * H : 0;
  parallel_rows(
      rows_a + rows_b, [&] { return BackwardScratch<T>(g); },
      [&](BackwardScratch<T>& s, int64_t r) {
        const bool for_a = r < rows_a;
        const int64_t rr = for_a ? r : r - rows_a, nl = rr / H, y = rr % H;
        const T* Gn = G + nl * g.Ho * g.Wo * g.ND;
        if (for_a) {
          grad_a_row<T>(g, Bm + nl * H * W * C, Gn, y, s.row.data(), s.ps.data(), s.gs.data());
          store_row<T>(g, s.row.data(), ga + (n0 + nl) * C * H * W + y * W);
        } else {
          grad_b_row<T>(g, A + nl * H * W * C, Gn, y, s.row.data(), s.ps.data(), s.gs.data());
          store_row<T>(g, s.row.data(), gb + (n0 + nl) * C * H * W + y * W);
        }
      });
}

std::vector<at::Tensor> backward_cpu(const at::Tensor& grad_out, const at::Tensor& a, const at::Tensor& b,
                                     int64_t max_displacement, int64_t stride2, int64_t kernel_size, int64_t stride1,
                                     int64_t dilation, bool need_a, bool need_b) {
  const Geometry g = geometry(a, b, max_displacement, stride2, kernel_size, stride1, dilation);
  TORCH_CHECK(a.device().is_cpu() && grad_out.device().is_cpu(), "correlation backward_cpu: CPU tensors expected");
  TORCH_CHECK(grad_out.sizes() == at::IntArrayRef({g.B, g.ND, g.Ho, g.Wo}),
              "correlation backward: grad_out has shape ", grad_out.sizes());
  const at::Tensor go = grad_out.to(a.scalar_type());
  at::Tensor ga, gb;
  if (need_a) ga = at::empty_like(a, at::MemoryFormat::Contiguous);
  if (need_b) gb = at::empty_like(b, at::MemoryFormat::Contiguous);
  if (a.numel() == 0 || (!need_a && !need_b)) {
    if (need_a) ga.zero_();
    if (need_b) gb.zero_();
    return {ga, gb};
  }
  const int64_t group = batch_group(g);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "brushstream_correlation_backward", [&] {
    for (int64_t n0 = 0; n0 < g.B; n0 += group) {
      const int64_t nb = std::min(group, g.B - n0);
      // a is read for grad_b, b for grad_a; the unneeded one is not copied.
      const at::Tensor A = need_b ? channels_last(a, n0, nb) : at::Tensor();
      const at::Tensor Bm = need_a ? channels_last(b, n0, nb) : at::Tensor();
      const at::Tensor G = channels_last(go, n0, nb);  // (nb, Ho, Wo, ND)
      backward_group<scalar_t>(g, need_b ? A.data_ptr<scalar_t>() : nullptr,
                               need_a ? Bm.data_ptr<scalar_t>() : nullptr, G.data_ptr<scalar_t>(),
                               need_a ? ga.data_ptr<scalar_t>() : nullptr, need_b ? gb.data_ptr<scalar_t>() : nullptr,
                               n0, nb);
    }
  });
  return {ga, gb};
}

}  // namespace

#ifdef BRUSHSTREAM_CORRELATION_CUDA
at::Tensor correlation_forward_cuda(const at::Tensor& a, const at::Tensor& b, int64_t max_displacement,
                                    int64_t stride2, int64_t kernel_size, int64_t stride1, int64_t dilation);
std::vector<at::Tensor> correlation_backward_cuda(const at::Tensor& grad_out, const at::Tensor& a,
                                                  const at::Tensor& b, int64_t max_displacement, int64_t stride2,
                                                  int64_t kernel_size, int64_t stride1, int64_t dilation,
                                                  bool need_a, bool need_b);
#endif

at::Tensor correlation_forward(const at::Tensor& a, const at::Tensor& b, int64_t max_displacement, int64_t stride2,
                               int64_t kernel_size, int64_t stride1, int64_t dilation) {
#ifdef BRUSHSTREAM_CORRELATION_CUDA
  if (a.is_cuda()) return correlation_forward_cuda(a, b, max_displacement, stride2, kernel_size, stride1, dilation);
#endif
  return forward_cpu(a, b, max_displacement, stride2, kernel_size, stride1, dilation);
}

std::vector<at::Tensor> correlation_backward(const at::Tensor& grad_out, const at::Tensor& a, const at::Tensor& b,
                                             int64_t max_displacement, int64_t stride2, int64_t kernel_size,
                                             int64_t stride1, int64_t dilation, bool need_a, bool need_b) {
#ifdef BRUSHSTREAM_CORRELATION_CUDA
  if (a.is_cuda())
    return correlation_backward_cuda(grad_out, a, b, max_displacement, stride2, kernel_size, stride1, dilation,
                                     need_a, need_b);
#endif
  return backward_cpu(grad_out, a, b, max_displacement, stride2, kernel_size, stride1, dilation, need_a, need_b);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "Brushstream: FlowNetC correlation (forward, backward), semantics of core/flow/correlation.py";
  m.def("forward", &correlation_forward, "correlation forward: (a, b, max_displacement, stride2, kernel_size, "
        "stride1, dilation) -> (B, n^2, Ho, Wo)");
  m.def("backward", &correlation_backward, "correlation backward: (grad_out, a, b, max_displacement, stride2, "
        "kernel_size, stride1, dilation, need_a, need_b) -> [grad_a or None, grad_b or None]");
  m.def("avx2", &use_avx2, "whether the AVX2+FMA build of the hot loops is in use");
}
