// The time loops of rlcore/models/recurrence.py, compiled: each step is one ATen matmul
// (MKL) and one pass of plain loops over the gates. From Python, every step cost some
// ten operator calls, each a few microseconds whatever its size, which at the sizes
// recurrent PPO trains (a few sequences of a few hundred units) was as much as the
// matmuls. Equations, gate order and saved tensors are those of the Python loops, which
// stay as the fallback and as the reference the tests compare against.

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>

namespace {

using at::Tensor;

// exp(x) for float in straight-line arithmetic (Cephes' expf, within 2 ulp), so that the
// compiler vectorises the gate loops; glibc's expf is a call per element.
inline float exp_approx(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float k = std::floor(x * 1.44269504088896341f + 0.5f);
  float r = x - k * 0.693359375f;
  r = r + k * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

inline float sigmoid(float x) { return 1.0f / (1.0f + exp_approx(-x)); }
inline float tanh_(float x) { return 1.0f - 2.0f / (1.0f + exp_approx(2.0f * x)); }
// float64 is what the tests compare in: the library's own functions, exact to the last bits.
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
inline double tanh_(double x) { return std::tanh(x); }

// The state a step starts from: the previous one, or zero in rows where an episode starts.
template <typename scalar_t>
void state_in(const scalar_t* previous, const bool* starts, scalar_t* into, int64_t batch, int64_t hidden) {
  for (int64_t b = 0; b < batch; ++b) {
    if (starts[b]) {
      std::fill_n(into + b * hidden, hidden, scalar_t(0));
    } else {
      std::copy_n(previous + b * hidden, hidden, into + b * hidden);
    }
  }
}

// One row of a step, the gate arithmetic of one sequence: plain loops over `hidden` that
// the compiler vectorises (the pointers never alias: each is its own tensor or gate).
// g holds h W_hh^T on entry; b is b_hh (its bias is added here, not by the matmul, which
// would first copy it into every row).
template <typename T>
void gru_row(const T* __restrict x_g, T* __restrict g, const T* __restrict b, const T* __restrict h,
             T* __restrict n, T* __restrict o, int64_t hidden) {
  T* __restrict g_z = g + hidden;
  T* __restrict g_n = g + 2 * hidden;
  const T* __restrict x_z = x_g + hidden;
  const T* __restrict x_n = x_g + 2 * hidden;
  const T* __restrict b_z = b + hidden;
  const T* __restrict b_n = b + 2 * hidden;
  for (int64_t j = 0; j < hidden; ++j) {
    const T r = sigmoid(x_g[j] + (g[j] + b[j]));
    const T z = sigmoid(x_z[j] + (g_z[j] + b_z[j]));
    const T gh_n = g_n[j] + b_n[j];
    const T candidate = tanh_(x_n[j] + r * gh_n);
    g[j] = r;
    g_z[j] = z;
    g_n[j] = gh_n;
    n[j] = candidate;
    o[j] = candidate + z * (h[j] - candidate);
  }
}

template <typename T>
void gru_row_backward(const T* __restrict d, const T* __restrict g, const T* __restrict h,
                      const T* __restrict n, T* __restrict dgi, T* __restrict dgh, T* __restrict into,
                      int64_t hidden) {
  const T* __restrict g_z = g + hidden;
  const T* __restrict g_n = g + 2 * hidden;
  for (int64_t j = 0; j < hidden; ++j) {
    const T r = g[j], z = g_z[j], candidate = n[j];
    const T dn = d[j] * (1 - z) * (1 - candidate * candidate);
    const T dr = dn * g_n[j] * r * (1 - r);
    const T dz = d[j] * (h[j] - candidate) * z * (1 - z);
    dgi[j] = dr;
    dgh[j] = dr;
    dgi[hidden + j] = dz;
    dgh[hidden + j] = dz;
    dgi[2 * hidden + j] = dn;
    dgh[2 * hidden + j] = dn * r;
    into[j] = d[j] * z;
  }
}

// g holds h W_hh^T on entry; x_g is the row of gi, added here (not copied in for the matmul).
template <typename T>
void lstm_row(const T* __restrict x_g, T* __restrict g, const T* __restrict c, T* __restrict c_new,
              T* __restrict tc, T* __restrict o, int64_t hidden) {
  T* __restrict g_f = g + hidden;
  T* __restrict g_g = g + 2 * hidden;
  T* __restrict g_o = g + 3 * hidden;
  const T* __restrict x_f = x_g + hidden;
  const T* __restrict x_c = x_g + 2 * hidden;
  const T* __restrict x_o = x_g + 3 * hidden;
  for (int64_t j = 0; j < hidden; ++j) {
    const T i = sigmoid(x_g[j] + g[j]), f = sigmoid(x_f[j] + g_f[j]);
    const T cand = tanh_(x_c[j] + g_g[j]), out_gate = sigmoid(x_o[j] + g_o[j]);
    g[j] = i;
    g_f[j] = f;
    g_g[j] = cand;
    g_o[j] = out_gate;
    const T cell = f * c[j] + i * cand;
    const T tanh_cell = tanh_(cell);
    c_new[j] = cell;
    tc[j] = tanh_cell;
    o[j] = out_gate * tanh_cell;
  }
}

template <typename T>
void lstm_row_backward(const T* __restrict dout, const T* __restrict g, const T* __restrict c,
                       const T* __restrict tc, T* __restrict dg, const T* __restrict dh,
                       T* __restrict dc, int64_t hidden) {
  const T* __restrict g_f = g + hidden;
  const T* __restrict g_g = g + 2 * hidden;
  const T* __restrict g_o = g + 3 * hidden;
  for (int64_t j = 0; j < hidden; ++j) {
    const T i = g[j], f = g_f[j], cand = g_g[j], o = g_o[j];
    const T d_h = dh[j] + dout[j];
    const T d_c = dc[j] + d_h * o * (1 - tc[j] * tc[j]);
    dg[j] = d_c * cand * i * (1 - i);
    dg[hidden + j] = d_c * c[j] * f * (1 - f);
    dg[2 * hidden + j] = d_c * i * (1 - cand * cand);
    dg[3 * hidden + j] = d_h * tc[j] * o * (1 - o);
    dc[j] = d_c * f;
  }
}

// GRU. gi (T, B, 3H) = x W_ih^T + b_ih; w_hh_t = W_hh^T (H, 3H), contiguous.
// Returns the outputs, the state each step starts from, the gates (r and z after their
// sigmoid, then gh_n = h W_hn^T + b_hn) and the candidate n, all (T, B, .).
std::tuple<Tensor, Tensor, Tensor, Tensor> gru_forward(
    const Tensor& gi, const Tensor& h0, const Tensor& starts, const Tensor& w_hh_t, const Tensor& b_hh) {
  const int64_t steps = gi.size(0), batch = gi.size(1), hidden = h0.size(1), rows = batch * hidden;
  const Tensor gi_c = gi.contiguous(), starts_c = starts.contiguous(), h0_c = h0.contiguous();
  const Tensor b_hh_c = b_hh.contiguous();
  Tensor out = at::empty({steps, batch, hidden}, gi.options());
  Tensor h_in = at::empty_like(out), n = at::empty_like(out);
  Tensor gates = at::empty({steps, batch, 3 * hidden}, gi.options());
  AT_DISPATCH_FLOATING_TYPES(gi.scalar_type(), "gru_forward", [&] {
    const scalar_t* x_g = gi_c.data_ptr<scalar_t>();
    const scalar_t* bias = b_hh_c.data_ptr<scalar_t>();
    scalar_t* g = gates.data_ptr<scalar_t>();
    scalar_t* h = h_in.data_ptr<scalar_t>();
    scalar_t* n_t = n.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    const bool* start = starts_c.data_ptr<bool>();
    for (int64_t t = 0; t < steps; ++t) {
      state_in(t == 0 ? h0_c.data_ptr<scalar_t>() : o - rows, start, h, batch, hidden);
      Tensor gh = gates[t];
      at::mm_out(gh, h_in[t], w_hh_t);
      for (int64_t b = 0; b < batch; ++b) {
        gru_row(x_g, g, bias, h, n_t, o, hidden);
        x_g += 3 * hidden, g += 3 * hidden, h += hidden, n_t += hidden, o += hidden;
      }
      start += batch;
    }
  });
  return {out, h_in, gates, n};
}

// GRU backward through time. dh (T, B, H): the gradient of each step's output, summed in
// place with what flows back from the later steps. Returns d gi (T, B, 3H), d gh and d h0.
std::tuple<Tensor, Tensor, Tensor> gru_backward(
    Tensor dh, const Tensor& starts, const Tensor& w_hh, const Tensor& h_in, const Tensor& gates,
    const Tensor& n) {
  TORCH_CHECK(dh.is_contiguous(), "gru_backward writes into dh: it must be contiguous");
  const int64_t steps = dh.size(0), batch = dh.size(1), hidden = dh.size(2), rows = batch * hidden;
  const Tensor starts_c = starts.contiguous();
  Tensor d_gi = at::empty_like(gates), d_gh = at::empty_like(gates);
  Tensor d_h0 = at::zeros_like(h_in[0]), into = at::empty_like(h_in[0]);
  AT_DISPATCH_FLOATING_TYPES(dh.scalar_type(), "gru_backward", [&] {
    scalar_t* flow = into.data_ptr<scalar_t>();
    for (int64_t t = steps - 1; t >= 0; --t) {
      const scalar_t* d = dh.data_ptr<scalar_t>() + t * rows;
      const scalar_t* g = gates.data_ptr<scalar_t>() + t * 3 * rows;
      const scalar_t* h = h_in.data_ptr<scalar_t>() + t * rows;
      const scalar_t* n_t = n.data_ptr<scalar_t>() + t * rows;
      scalar_t* dgi = d_gi.data_ptr<scalar_t>() + t * 3 * rows;
      scalar_t* dgh = d_gh.data_ptr<scalar_t>() + t * 3 * rows;
      scalar_t* d_into = flow;
      for (int64_t b = 0; b < batch; ++b) {
        gru_row_backward(d, g, h, n_t, dgi, dgh, d_into, hidden);
        d += hidden, g += 3 * hidden, h += hidden, n_t += hidden, dgi += 3 * hidden, dgh += 3 * hidden;
        d_into += hidden;
      }
      into.addmm_(d_gh[t], w_hh);
      // What flows into the state before step t reaches the previous output (h0 at t = 0),
      // except in rows that start an episode there: their state was zero, not that output.
      scalar_t* previous = t == 0 ? d_h0.data_ptr<scalar_t>() : dh.data_ptr<scalar_t>() + (t - 1) * rows;
      const bool* start = starts_c.data_ptr<bool>() + t * batch;
      for (int64_t b = 0; b < batch; ++b) {
        if (start[b]) continue;
        for (int64_t j = 0; j < hidden; ++j) previous[b * hidden + j] += flow[b * hidden + j];
      }
    }
  });
  return {d_gi, d_gh, d_h0};
}

// LSTM. gi (T, B, 4H) = x W_ih^T + b_ih + b_hh, gate order i, f, g, o; w_hh_t = W_hh^T.
// Returns the outputs, the states each step starts from (h and c), the gates after their
// activations, the cell states and their tanh, all (T, B, .).
std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> lstm_forward(
    const Tensor& gi, const Tensor& h0, const Tensor& c0, const Tensor& starts, const Tensor& w_hh_t) {
  const int64_t steps = gi.size(0), batch = gi.size(1), hidden = h0.size(1), rows = batch * hidden;
  const Tensor gi_c = gi.contiguous(), starts_c = starts.contiguous();
  const Tensor h0_c = h0.contiguous(), c0_c = c0.contiguous();
  Tensor out = at::empty({steps, batch, hidden}, gi.options());
  Tensor h_in = at::empty_like(out), c_in = at::empty_like(out), c_out = at::empty_like(out);
  Tensor tanh_c = at::empty_like(out);
  Tensor gates = at::empty({steps, batch, 4 * hidden}, gi.options());
  AT_DISPATCH_FLOATING_TYPES(gi.scalar_type(), "lstm_forward", [&] {
    const scalar_t* x_g = gi_c.data_ptr<scalar_t>();
    scalar_t* g = gates.data_ptr<scalar_t>();
    scalar_t* h = h_in.data_ptr<scalar_t>();
    scalar_t* c = c_in.data_ptr<scalar_t>();
    scalar_t* c_new = c_out.data_ptr<scalar_t>();
    scalar_t* tc = tanh_c.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    const bool* start = starts_c.data_ptr<bool>();
    for (int64_t t = 0; t < steps; ++t) {
      state_in(t == 0 ? h0_c.data_ptr<scalar_t>() : o - rows, start, h, batch, hidden);
      state_in(t == 0 ? c0_c.data_ptr<scalar_t>() : c_new - rows, start, c, batch, hidden);
      Tensor g_t = gates[t];
      at::mm_out(g_t, h_in[t], w_hh_t);
      for (int64_t b = 0; b < batch; ++b) {
        lstm_row(x_g, g, c, c_new, tc, o, hidden);
        x_g += 4 * hidden, g += 4 * hidden, h += hidden, c += hidden, c_new += hidden, tc += hidden, o += hidden;
      }
      start += batch;
    }
  });
  return {out, h_in, c_in, gates, c_out, tanh_c};
}

// LSTM backward through time from d_out (T, B, H) and the gradients of the last h and c
// (dh and dc, updated in place to those of h0 and c0). Returns d gates (T, B, 4H).
Tensor lstm_backward(
    const Tensor& d_out, Tensor dh, Tensor dc, const Tensor& starts, const Tensor& w_hh, const Tensor& c_in,
    const Tensor& gates, const Tensor& tanh_c) {
  TORCH_CHECK(dh.is_contiguous() && dc.is_contiguous(), "lstm_backward writes into dh and dc: contiguous");
  const int64_t steps = d_out.size(0), batch = d_out.size(1), hidden = d_out.size(2), rows = batch * hidden;
  const Tensor starts_c = starts.contiguous(), d_out_c = d_out.contiguous();
  Tensor d_gates = at::empty_like(gates);
  AT_DISPATCH_FLOATING_TYPES(d_out.scalar_type(), "lstm_backward", [&] {
    scalar_t* dh_p = dh.data_ptr<scalar_t>();
    scalar_t* dc_p = dc.data_ptr<scalar_t>();
    for (int64_t t = steps - 1; t >= 0; --t) {
      const scalar_t* dout = d_out_c.data_ptr<scalar_t>() + t * rows;
      const scalar_t* g = gates.data_ptr<scalar_t>() + t * 4 * rows;
      const scalar_t* c = c_in.data_ptr<scalar_t>() + t * rows;
      const scalar_t* tc = tanh_c.data_ptr<scalar_t>() + t * rows;
      scalar_t* dg = d_gates.data_ptr<scalar_t>() + t * 4 * rows;
      scalar_t* dh_b = dh_p;
      scalar_t* dc_b = dc_p;
      for (int64_t b = 0; b < batch; ++b) {
        lstm_row_backward(dout, g, c, tc, dg, dh_b, dc_b, hidden);
        dout += hidden, g += 4 * hidden, c += hidden, tc += hidden, dg += 4 * hidden;
        dh_b += hidden, dc_b += hidden;
      }
      at::mm_out(dh, d_gates[t], w_hh);
      // Rows that start an episode at step t started from zero: nothing flows further back.
      const bool* start = starts_c.data_ptr<bool>() + t * batch;
      for (int64_t b = 0; b < batch; ++b) {
        if (!start[b]) continue;
        std::fill_n(dh_p + b * hidden, hidden, scalar_t(0));
        std::fill_n(dc_p + b * hidden, hidden, scalar_t(0));
      }
    }
  });
  return d_gates;
}

}  // namespace

TORCH_LIBRARY(rlcore_recurrence, m) {
  m.def("gru_forward", &gru_forward);
  m.def("gru_backward", &gru_backward);
  m.def("lstm_forward", &lstm_forward);
  m.def("lstm_backward", &lstm_backward);
}
