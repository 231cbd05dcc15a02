//! Specification of the sampling kernels: agreement with a naive reference, the statistical
//! law of seeded draws on real reference logits, batch invariance, errors and the RNG.

mod batch_invariance;
mod chi_square;
mod errors;
mod greedy;
mod law;
mod matches_naive_reference;
mod naive;
mod request_rng;
