// The correlation's argument checks and sizes, shared by the CPU kernel (correlation.cpp) and the CUDA kernel
// (correlation_cuda.cu) so that both refuse the same calls with the same messages.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace brushstream_correlation {

struct Geometry {
  int64_t B, C, H, W, Ho, Wo;
  int64_t steps, nd, ND;  // displacements per axis: nd = 2 steps + 1; channels ND = nd^2
  int64_t s2, K, s1, dil;  // K = kernel_size / 2
  double inv;              // 1 / (C k^2)
};

inline Geometry geometry(const at::Tensor& a, const at::Tensor& b, int64_t max_displacement, int64_t stride2,
                         int64_t kernel_size, int64_t stride1, int64_t dilation) {
  TORCH_CHECK(a.dim() == 4 && a.sizes() == b.sizes(), "correlation needs two (B, C, H, W) maps of one shape, got ",
              a.sizes(), " and ", b.sizes());
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), "correlation: both maps must have one dtype");
  TORCH_CHECK(a.device() == b.device(), "correlation: both maps must be on one device");
  TORCH_CHECK(kernel_size >= 1 && kernel_size % 2 == 1, "correlation: kernel_size must be odd and positive");
  TORCH_CHECK(max_displacement >= 0 && stride2 >= 1 && stride1 >= 1 && dilation >= 1,
              "correlation needs max_displacement >= 0 and strides and dilation >= 1");
  Geometry g;
  g.B = a.size(0);
  g.C = a.size(1);
  g.H = a.size(2);
  g.W = a.size(3);
  g.Ho = (g.H + stride1 - 1) / stride1;
  g.Wo = (g.W + stride1 - 1) / stride1;
  g.steps = max_displacement / stride2;
  g.nd = 2 * g.steps + 1;
  g.ND = g.nd * g.nd;
  g.s2 = stride2;
  g.K = kernel_size / 2;
  g.s1 = stride1;
  g.dil = dilation;
  g.inv = 1.0 / (double(g.C) * double(kernel_size * kernel_size));
  return g;
}

}  // namespace brushstream_correlation
