// FlowNetC's correlation layer on CUDA: forward and backward (both inputs), float32 and float64.
// Semantics as in correlation.cpp and core/flow/correlation.py (correlation_reference is the definition).
//
// Both maps are read as channels-last (B, H, W, C) copies, so the threads of a warp read consecutive channels.
// Forward: one block per output position (n, i, j); each warp takes displacements d = warp, warp + warps, ...; its
// lanes sum over channels (and the k x k taps) and the warp reduces with shuffles, lane 0 writing the value.
// Backward: one block per input position of grad_a (resp. grad_b); thread c owns channel c (and c + blockDim, ...),
// and gathers grad_out over the taps and displacements that touched this position: every value is written by one
// thread, so no atomics and no shared-memory traffic are needed, and the result is deterministic.
// The gradients are written channels-last and returned as (B, C, H, W) views of that memory (channels_last strides).

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "correlation_geometry.h"

namespace {

constexpr int kWarp = 32;
constexpr int kForwardThreads = 128;  // four warps per output position

struct CudaGeometry {
  int64_t B, C, H, W, Ho, Wo;
  int steps, nd, ND, s2, K, s1, dil;
  double inv;
};

// The shared checks and sizes (correlation_geometry.h), narrowed to int where the kernels index small ranges.
CudaGeometry cuda_geometry(const at::Tensor& a, const at::Tensor& b, int64_t max_displacement, int64_t stride2,
                           int64_t kernel_size, int64_t stride1, int64_t dilation) {
  TORCH_CHECK(a.is_cuda() && b.is_cuda(), "correlation: both maps on one CUDA device");
  const brushstream_correlation::Geometry s =
      brushstream_correlation::geometry(a, b, max_displacement, stride2, kernel_size, stride1, dilation);
  return CudaGeometry{s.B, s.C, s.H, s.W, s.Ho, s.Wo,
                      int(s.steps), int(s.nd), int(s.ND), int(s.s2), int(s.K), int(s.s1), int(s.dil), s.inv};
}

// Output index of input coordinate v along an axis (v = o s1), or -1 if none.
__device__ __forceinline__ int64_t output_index(int64_t v, int64_t extent, int s1) {
  return (v < 0 || v >= extent || v % s1 != 0) ? -1 : v / s1;
}

// a, b: (B, H, W, C) contiguous; out: (B, ND, Ho, Wo) contiguous. Grid: B * Ho * Wo blocks of kForwardThreads.
template <typename T>
__global__ void correlation_forward_kernel(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ out,
                                           const CudaGeometry g) {
  const int64_t pos = blockIdx.x;
  const int64_t j = pos % g.Wo;
  const int64_t i = (pos / g.Wo) % g.Ho;
  const int64_t n = pos / (g.Wo * g.Ho);
  const int lane = threadIdx.x % kWarp;
  const int warp = threadIdx.x / kWarp;
  const int warps = blockDim.x / kWarp;
  const int64_t y = i * g.s1, x = j * g.s1;
  const T* an = a + n * g.H * g.W * g.C;
  const T* bn = b + n * g.H * g.W * g.C;
  for (int d = warp; d < g.ND; d += warps) {  // the whole warp takes the same branches: shuffles see all lanes
    const int64_t dy = int64_t(d / g.nd - g.steps) * g.s2;
    const int64_t dx = int64_t(d % g.nd - g.steps) * g.s2;
    T sum = 0;
    for (int ky = -g.K; ky <= g.K; ++ky) {
      const int64_t ya = y + int64_t(ky) * g.dil, yb = ya + dy;
      if (ya < 0 || ya >= g.H || yb < 0 || yb >= g.H) continue;
      for (int kx = -g.K; kx <= g.K; ++kx) {
        const int64_t xa = x + int64_t(kx) * g.dil, xb = xa + dx;
        if (xa < 0 || xa >= g.W || xb < 0 || xb >= g.W) continue;
        const T* ap = an + (ya * g.W + xa) * g.C;
        const T* bp = bn + (yb * g.W + xb) * g.C;
        for (int64_t c = lane; c < g.C; c += kWarp) sum += ap[c] * bp[c];
      }
    }
    for (int offset = kWarp / 2; offset > 0; offset /= 2) sum += __shfl_down_sync(0xffffffffu, sum, offset);
    if (lane == 0) out[((n * g.ND + d) * g.Ho + i) * g.Wo + j] = sum * T(g.inv);
  }
}

// grad_a at (n, ya, xa), channels-last: sum over taps (i s1, j s1) + o = (ya, xa) and displacements d of
// grad_out(n, d, i, j) b(ya + dy, xa + dx). grad_out: (B, ND, Ho, Wo) contiguous. Grid: B * H * W blocks.
template <typename T>
__global__ void correlation_grad_a_kernel(const T* __restrict__ grad_out, const T* __restrict__ b,
                                          T* __restrict__ grad_a, const CudaGeometry g) {
  const int64_t pos = blockIdx.x;
  const int64_t xa = pos % g.W;
  const int64_t ya = (pos / g.W) % g.H;
  const int64_t n = pos / (g.W * g.H);
  const int64_t plane = g.Ho * g.Wo;
  const T* gn = grad_out + n * g.ND * plane;
  const T* bn = b + n * g.H * g.W * g.C;
  for (int64_t c = threadIdx.x; c < g.C; c += blockDim.x) {
    T sum = 0;
    for (int ky = -g.K; ky <= g.K; ++ky) {
      const int64_t i = output_index(ya - int64_t(ky) * g.dil, g.H, g.s1);
      if (i < 0) continue;
      for (int kx = -g.K; kx <= g.K; ++kx) {
        const int64_t j = output_index(xa - int64_t(kx) * g.dil, g.W, g.s1);
        if (j < 0) continue;
        const T* gp = gn + i * g.Wo + j;
        for (int p = 0; p < g.nd; ++p) {
          const int64_t yb = ya + int64_t(p - g.steps) * g.s2;
          if (yb < 0 || yb >= g.H) continue;
          for (int q = 0; q < g.nd; ++q) {
            const int64_t xb = xa + int64_t(q - g.steps) * g.s2;
            if (xb < 0 || xb >= g.W) continue;
            sum += gp[int64_t(p * g.nd + q) * plane] * bn[(yb * g.W + xb) * g.C + c];
          }
        }
      }
    }
    grad_a[((n * g.H + ya) * g.W + xa) * g.C + c] = sum * T(g.inv);
  }
}

// grad_b at (n, yb, xb), channels-last: sum over displacements d and taps with (i s1, j s1) + o = (yb - dy, xb - dx)
// of grad_out(n, d, i, j) a(yb - dy, xb - dx). Grid: B * H * W blocks.
template <typename T>
__global__ void correlation_grad_b_kernel(const T* __restrict__ grad_out, const T* __restrict__ a,
                                          T* __restrict__ grad_b, const CudaGeometry g) {
  const int64_t pos = blockIdx.x;
  const int64_t xb = pos % g.W;
  const int64_t yb = (pos / g.W) % g.H;
  const int64_t n = pos / (g.W * g.H);
  const int64_t plane = g.Ho * g.Wo;
  const T* gn = grad_out + n * g.ND * plane;
  const T* an = a + n * g.H * g.W * g.C;
  for (int64_t c = threadIdx.x; c < g.C; c += blockDim.x) {
    T sum = 0;
    for (int p = 0; p < g.nd; ++p) {
      const int64_t ya = yb - int64_t(p - g.steps) * g.s2;
      if (ya < 0 || ya >= g.H) continue;
      for (int ky = -g.K; ky <= g.K; ++ky) {
        const int64_t i = output_index(ya - int64_t(ky) * g.dil, g.H, g.s1);
        if (i < 0) continue;
        for (int q = 0; q < g.nd; ++q) {
          const int64_t xa = xb - int64_t(q - g.steps) * g.s2;
          if (xa < 0 || xa >= g.W) continue;
          const T av = an[(ya * g.W + xa) * g.C + c];
          const T* gp = gn + int64_t(p * g.nd + q) * plane + i * g.Wo;
          for (int kx = -g.K; kx <= g.K; ++kx) {
            const int64_t j = output_index(xa - int64_t(kx) * g.dil, g.W, g.s1);
            if (j < 0) continue;
            sum += gp[j] * av;
          }
        }
      }
    }
    grad_b[((n * g.H + yb) * g.W + xb) * g.C + c] = sum * T(g.inv);
  }
}

// Threads per backward block: the channels rounded up to whole warps, at most 256.
int backward_threads(int64_t C) {
  const int64_t warps = std::max<int64_t>(1, std::min<int64_t>(8, (C + kWarp - 1) / kWarp));
  return int(warps * kWarp);
}

at::Tensor channels_last_copy(const at::Tensor& t) { return t.permute({0, 2, 3, 1}).contiguous(); }

}  // namespace

at::Tensor correlation_forward_cuda(const at::Tensor& a, const at::Tensor& b, int64_t max_displacement,
                                    int64_t stride2, int64_t kernel_size, int64_t stride1, int64_t dilation) {
  const CudaGeometry g = cuda_geometry(a, b, max_displacement, stride2, kernel_size, stride1, dilation);
  const c10::cuda::CUDAGuard guard(a.device());
  auto out = at::empty({g.B, g.ND, g.Ho, g.Wo}, a.options());
  if (out.numel() == 0) return out;
  const at::Tensor A = channels_last_copy(a), Bm = channels_last_copy(b);
  const int64_t blocks = g.B * g.Ho * g.Wo;
  TORCH_CHECK(blocks < (int64_t(1) << 31), "correlation: too many output positions for one launch");
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "brushstream_correlation_forward_cuda", [&] {
    correlation_forward_kernel<scalar_t><<<unsigned(blocks), kForwardThreads, 0, stream>>>(
        A.data_ptr<scalar_t>(), Bm.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), g);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

std::vector<at::Tensor> correlation_backward_cuda(const at::Tensor& grad_out, const at::Tensor& a,
                                                  const at::Tensor& b, int64_t max_displacement, int64_t stride2,
                                                  int64_t kernel_size, int64_t stride1, int64_t dilation,
                                                  bool need_a, bool need_b) {
  const CudaGeometry g = cuda_geometry(a, b, max_displacement, stride2, kernel_size, stride1, dilation);
  TORCH_CHECK(grad_out.device() == a.device(), "correlation backward: grad_out on another device");
  TORCH_CHECK(grad_out.sizes() == at::IntArrayRef({g.B, g.ND, g.Ho, g.Wo}),
              "correlation backward: grad_out has shape ", grad_out.sizes());
  const c10::cuda::CUDAGuard guard(a.device());
  const at::Tensor go = grad_out.to(a.scalar_type()).contiguous();
  // (B, H, W, C) buffers, handed back as (B, C, H, W) views with channels_last strides.
  at::Tensor ga_cl, gb_cl;
  if (need_a) ga_cl = at::empty({g.B, g.H, g.W, g.C}, a.options());
  if (need_b) gb_cl = at::empty({g.B, g.H, g.W, g.C}, b.options());
  const int64_t blocks = g.B * g.H * g.W;
  if (blocks > 0 && g.C > 0) {
    TORCH_CHECK(blocks < (int64_t(1) << 31), "correlation: too many input positions for one launch");
    const int threads = backward_threads(g.C);
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "brushstream_correlation_backward_cuda", [&] {
      if (need_a) {
        const at::Tensor Bm = channels_last_copy(b);
        correlation_grad_a_kernel<scalar_t><<<unsigned(blocks), threads, 0, stream>>>(
            go.data_ptr<scalar_t>(), Bm.data_ptr<scalar_t>(), ga_cl.data_ptr<scalar_t>(), g);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }
      if (need_b) {
        const at::Tensor A = channels_last_copy(a);
        correlation_grad_b_kernel<scalar_t><<<unsigned(blocks), threads, 0, stream>>>(
            go.data_ptr<scalar_t>(), A.data_ptr<scalar_t>(), gb_cl.data_ptr<scalar_t>(), g);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }
    });
  }
  at::Tensor ga, gb;
  if (need_a) ga = ga_cl.permute({0, 3, 1, 2});
  if (need_b) gb = gb_cl.permute({0, 3, 1, 2});
  return {ga, gb};
}
