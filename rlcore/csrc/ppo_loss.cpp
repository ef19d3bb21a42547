// The PPO loss of rlcore/algos/ppo.py (`ppo_loss`) for a categorical policy, compiled: one
// pass over the minibatch that gives the loss, its statistics and its gradient with respect
// to the logits and values in closed form. From Python the loss and its backward are some
// eighty operator calls of a few microseconds each on a few hundred elements, a fifth of a
// minibatch at the sizes recurrent PPO trains on CartPole; here they are a few microseconds
// in all. The Python loss stays as the fallback and as the reference the tests compare against.

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <tuple>

namespace {

using at::Tensor;

// What the statistics tensor holds, in this order (fused_ppo_loss.py names them).
enum Stat { kPolicyLoss, kValueLoss, kEntropy, kApproxKl, kClipFraction, kStats };

template <typename scalar_t>
void ppo_loss_rows(const scalar_t* logits, const scalar_t* values, const int64_t* actions,
                   const scalar_t* old_logprobs, const scalar_t* advantages, const scalar_t* returns,
                   const scalar_t* mask, int64_t rows, int64_t n_actions, double clip, double vf_coef,
                   double ent_coef, bool normalize, scalar_t* loss, scalar_t* stats, scalar_t* logprobs,
                   scalar_t* grad_logits, scalar_t* grad_values) {
  // Sums in double: a minibatch holds up to a million steps.
  double steps = 0.0;
  for (int64_t i = 0; i < rows; ++i) steps += mask[i];
  const double denom = std::max(steps, 1.0);

  // Advantages normalised over the masked steps: zero mean, unit variance (+1e-8).
  double adv_mean = 0.0, adv_scale = 1.0;
  if (normalize) {
    double sum = 0.0;
    for (int64_t i = 0; i < rows; ++i) sum += advantages[i] * mask[i];
    adv_mean = sum / denom;
    double squares = 0.0;
    for (int64_t i = 0; i < rows; ++i) {
      const double d = advantages[i] - adv_mean;
      squares += d * d * mask[i];
    }
    adv_scale = 1.0 / (std::sqrt(squares / denom) + 1e-8);
  }

  const double lo = 1.0 - clip, hi = 1.0 + clip;
  double policy_sum = 0.0, value_sum = 0.0, entropy_sum = 0.0, kl_sum = 0.0, clipped_sum = 0.0;
  for (int64_t i = 0; i < rows; ++i) {
    const scalar_t* z = logits + i * n_actions;
    scalar_t* dz = grad_logits + i * n_actions;
    const double w = mask[i] / denom;  // this step's weight in every masked mean

    // log-softmax, its probabilities and entropy H = -sum p log p. The row of the gradient
    // holds exp(z_j - max z) until the end, so that each exp is taken once.
    double top = z[0];
    for (int64_t j = 1; j < n_actions; ++j) top = std::max(top, double(z[j]));
    double total = 0.0;
    for (int64_t j = 0; j < n_actions; ++j) {
      const double e = std::exp(z[j] - top);
      dz[j] = scalar_t(e);
      total += e;
    }
    const double log_total = top + std::log(total);
    double entropy = 0.0;
    for (int64_t j = 0; j < n_actions; ++j) entropy -= dz[j] / total * (z[j] - log_total);
    TORCH_CHECK(0 <= actions[i] && actions[i] < n_actions, "ppo_loss: an action outside the logits");
    const double log_p = z[actions[i]] - log_total;
    logprobs[i] = scalar_t(log_p);

    // The clipped surrogate: max(-A r, -A clip(r, 1-eps, 1+eps)).
    const double adv = normalize ? (advantages[i] - adv_mean) * adv_scale : double(advantages[i]);
    const double log_ratio = log_p - old_logprobs[i];
    const double ratio = std::exp(log_ratio);
    const double unclipped = -adv * ratio, clipped = -adv * std::min(std::max(ratio, lo), hi);
    // d/dr of the max, as autograd takes it: the larger branch's, half each on a tie; the
    // clipped branch passes a gradient only where r is inside [1-eps, 1+eps].
    const bool inside = lo <= ratio && ratio <= hi;
    double d_ratio;
    if (unclipped > clipped) {
      d_ratio = -adv;
    } else if (unclipped < clipped) {
      d_ratio = inside ? -adv : 0.0;
    } else {
      d_ratio = -adv / 2 + (inside ? -adv / 2 : 0.0);
    }

    policy_sum += std::max(unclipped, clipped) * mask[i];
    const double value_error = double(values[i]) - returns[i];
    value_sum += value_error * value_error * mask[i];
    entropy_sum += entropy * mask[i];
    kl_sum += ((ratio - 1.0) - log_ratio) * mask[i];
    clipped_sum += (std::abs(ratio - 1.0) > clip ? 1.0 : 0.0) * mask[i];

    // d log p_a / dz_j = [j == a] - p_j;  dH/dz_j = -p_j (log p_j + H).
    const double d_log_p = w * d_ratio * ratio;
    for (int64_t j = 0; j < n_actions; ++j) {
      const double p_j = dz[j] / total, log_p_j = z[j] - log_total;
      const double from_policy = d_log_p * ((j == actions[i] ? 1.0 : 0.0) - p_j);
      dz[j] = scalar_t(from_policy + w * ent_coef * p_j * (log_p_j + entropy));
    }
    grad_values[i] = scalar_t(w * vf_coef * value_error);
  }

  const double policy_loss = policy_sum / denom, value_loss = 0.5 * value_sum / denom;
  const double mean_entropy = entropy_sum / denom;
  *loss = scalar_t(policy_loss + vf_coef * value_loss - ent_coef * mean_entropy);
  stats[kPolicyLoss] = scalar_t(policy_loss);
  stats[kValueLoss] = scalar_t(value_loss);
  stats[kEntropy] = scalar_t(mean_entropy);
  stats[kApproxKl] = scalar_t(kl_sum / denom);
  stats[kClipFraction] = scalar_t(clipped_sum / denom);
}

// Rows of logits (rows, n_actions) and per-row values, actions, acting log-probs, advantages,
// returns and mask, all contiguous; the advantages are normalised here when `normalize`.
// Returns the loss, its statistics (policy loss, value loss, entropy, approx KL, clip fraction),
// the replayed log-probs, and the gradients of the loss with respect to logits and values.
std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> categorical_ppo_loss(
    const Tensor& logits, const Tensor& values, const Tensor& actions, const Tensor& old_logprobs,
    const Tensor& advantages, const Tensor& returns, const Tensor& mask, double clip, double vf_coef,
    double ent_coef, bool normalize) {
  const int64_t rows = logits.size(0), n_actions = logits.size(1);
  for (const Tensor* t : {&values, &old_logprobs, &advantages, &returns, &mask}) {
    TORCH_CHECK(t->scalar_type() == logits.scalar_type() && t->numel() == rows && t->is_contiguous(),
                "ppo_loss: every per-step tensor must be contiguous, of the logits' dtype, one per row");
  }
  TORCH_CHECK(logits.is_contiguous() && actions.scalar_type() == at::kLong && actions.numel() == rows,
              "ppo_loss: contiguous logits (rows, actions) and one int64 action per row");
  Tensor loss = at::empty({}, logits.options());
  Tensor stats = at::empty({kStats}, logits.options());
  Tensor logprobs = at::empty({rows}, logits.options());
  Tensor grad_logits = at::empty_like(logits);
  Tensor grad_values = at::empty_like(values);
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "categorical_ppo_loss", [&] {
    ppo_loss_rows<scalar_t>(logits.data_ptr<scalar_t>(), values.data_ptr<scalar_t>(),
                            actions.data_ptr<int64_t>(), old_logprobs.data_ptr<scalar_t>(),
                            advantages.data_ptr<scalar_t>(), returns.data_ptr<scalar_t>(),
                            mask.data_ptr<scalar_t>(), rows, n_actions, clip, vf_coef, ent_coef, normalize,
                            loss.data_ptr<scalar_t>(), stats.data_ptr<scalar_t>(), logprobs.data_ptr<scalar_t>(),
                            grad_logits.data_ptr<scalar_t>(), grad_values.data_ptr<scalar_t>());
  });
  return {loss, stats, logprobs, grad_logits, grad_values};
}

}  // namespace

TORCH_LIBRARY(rlcore_losses, m) { m.def("categorical_ppo_loss", &categorical_ppo_loss); }
