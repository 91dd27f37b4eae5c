// The correlation kernel's hot loops (see correlation.cpp). No include guard on purpose: correlation.cpp includes
// this file twice, inside namespace portable (16-byte vectors: SSE2, which every x86-64 has) and inside namespace
// avx2 (32-byte vectors, compiled for AVX2+FMA), with BRUSHSTREAM_VECTOR_BYTES set to match, and picks one at run
// time. With GCC/Clang the loops use the compilers' vector extension so the register blocking is explicit; other
// compilers get plain loops.

#if defined(__GNUC__) || defined(__clang__)

template <typename T>
struct Vec {
  typedef T type __attribute__((vector_size(BRUSHSTREAM_VECTOR_BYTES)));
  static constexpr int64_t lanes = BRUSHSTREAM_VECTOR_BYTES / sizeof(T);
  static inline type load(const T* p) {
    type v;
    __builtin_memcpy(&v, p, sizeof(v));
    return v;
  }
  static inline void store(T* p, type v) { __builtin_memcpy(p, &v, sizeof(v)); }
  static inline type splat(T x) { return type{} + x; }
  static inline T sum(type v) {
    T s = 0;
    for (int64_t l = 0; l < lanes; ++l) s += v[l];
    return s;
  }
};

// acc[idx[t]] += <a, ps[t]> over C channels. Eight products per pass: each load of a feeds eight FMAs, and the
// eight independent accumulators hide the FMA latency.
template <typename T>
void dot_list(const T* __restrict a, const T* const* ps, const int64_t* idx, int64_t m, int64_t C, T* acc) {
  typedef Vec<T> V;
  typedef typename V::type v_t;
  constexpr int64_t L = V::lanes;
  const int64_t Cv = C - C % L;
  int64_t t = 0;
  for (; t + 8 <= m; t += 8) {
    const T* const* b = ps + t;
    v_t s0{}, s1{}, s2{}, s3{}, s4{}, s5{}, s6{}, s7{};
    for (int64_t c = 0; c < Cv; c += L) {
      const v_t va = V::load(a + c);
      s0 += va * V::load(b[0] + c);
      s1 += va * V::load(b[1] + c);
      s2 += va * V::load(b[2] + c);
      s3 += va * V::load(b[3] + c);
      s4 += va * V::load(b[4] + c);
      s5 += va * V::load(b[5] + c);
      s6 += va * V::load(b[6] + c);
      s7 += va * V::load(b[7] + c);
    }
    T r[8] = {V::sum(s0), V::sum(s1), V::sum(s2), V::sum(s3), V::sum(s4), V::sum(s5), V::sum(s6), V::sum(s7)};
    for (int64_t c = Cv; c < C; ++c)
      for (int k = 0; k < 8; ++k) r[k] += a[c] * b[k][c];
    for (int k = 0; k < 8; ++k) acc[idx[t + k]] += r[k];
  }
  for (; t < m; ++t) {
    const T* __restrict b = ps[t];
    v_t s0{}, s1{};
    int64_t c = 0;
    for (; c + 2 * L <= Cv; c += 2 * L) {
      s0 += V::load(a + c) * V::load(b + c);
      s1 += V::load(a + c + L) * V::load(b + c + L);
    }
    if (c < Cv) s0 += V::load(a + c) * V::load(b + c);
    T r = V::sum(s0 + s1);
    for (c = Cv; c < C; ++c) r += a[c] * b[c];
    acc[idx[t]] += r;
  }
}

// out[c] = sum_t gs[t] ps[t][c]. Eight vectors of channels stay in registers across the whole list (one broadcast
// of gs[t] feeds eight FMAs), then single vectors, then the last C % lanes channels one by one.
template <typename T>
void axpy_list(T* __restrict out, const T* gs, const T* const* ps, int64_t m, int64_t C) {
  typedef Vec<T> V;
  typedef typename V::type v_t;
  constexpr int64_t L = V::lanes;
  int64_t c0 = 0;
  for (; c0 + 8 * L <= C; c0 += 8 * L) {
    v_t s0{}, s1{}, s2{}, s3{}, s4{}, s5{}, s6{}, s7{};
    for (int64_t t = 0; t < m; ++t) {
      const v_t g = V::splat(gs[t]);
      const T* p = ps[t] + c0;
      s0 += g * V::load(p);
      s1 += g * V::load(p + L);
      s2 += g * V::load(p + 2 * L);
      s3 += g * V::load(p + 3 * L);
      s4 += g * V::load(p + 4 * L);
      s5 += g * V::load(p + 5 * L);
      s6 += g * V::load(p + 6 * L);
      s7 += g * V::load(p + 7 * L);
    }
    T* o = out + c0;
    V::store(o, s0);
    V::store(o + L, s1);
    V::store(o + 2 * L, s2);
    V::store(o + 3 * L, s3);
    V::store(o + 4 * L, s4);
    V::store(o + 5 * L, s5);
    V::store(o + 6 * L, s6);
    V::store(o + 7 * L, s7);
  }
  for (; c0 + L <= C; c0 += L) {
    v_t s0{}, s1{};
    int64_t t = 0;
    for (; t + 2 <= m; t += 2) {
      s0 += V::splat(gs[t]) * V::load(ps[t] + c0);
      s1 += V::splat(gs[t + 1]) * V::load(ps[t + 1] + c0);
    }
    if (t < m) s0 += V::splat(gs[t]) * V::load(ps[t] + c0);
    V::store(out + c0, s0 + s1);
  }
  for (; c0 < C; ++c0) {
    T s = 0;
    for (int64_t t = 0; t < m; ++t) s += gs[t] * ps[t][c0];
    out[c0] = s;
  }
}

#else  // plain loops for other compilers

template <typename T>
void dot_list(const T* a, const T* const* ps, const int64_t* idx, int64_t m, int64_t C, T* acc) {
  for (int64_t t = 0; t < m; ++t) {
    const T* b = ps[t];
    T s = 0;
    for (int64_t c = 0; c < C; ++c) s += a[c] * b[c];
    acc[idx[t]] += s;
  }
}

template <typename T>
void axpy_list(T* out, const T* gs, const T* const* ps, int64_t m, int64_t C) {
  for (int64_t c = 0; c < C; ++c) out[c] = 0;
  for (int64_t t = 0; t < m; ++t) {
    const T g = gs[t];
    const T* p = ps[t];
    for (int64_t c = 0; c < C; ++c) out[c] += g * p[c];
  }
}

#endif
