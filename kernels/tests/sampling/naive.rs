//! The obviously-correct reference: full sort, plain f64 softmax over the whole vocabulary,
//! Hugging Face's warpers applied one after the other.

use kernels::SamplingParams;

/// The law of one row as (token, probability), in ascending token id (the inverse-CDF walk
/// order).
pub fn naive_distribution(logits: &[f32], params: &SamplingParams) -> Vec<(u32, f64)> {
    let mut ranked: Vec<u32> = (0..logits.len() as u32).collect();
    ranked.sort_by(|&a, &b| {
        logits[b as usize]
            .total_cmp(&logits[a as usize])
            .then(a.cmp(&b))
    });
    if params.temperature == 0.0 {
        return vec![(ranked[0], 1.0)];
    }
    let t = f64::from(params.temperature);
    let max = f64::from(logits[ranked[0] as usize]) / t;
    let mut law: Vec<(u32, f64)> = ranked
        .iter()
        .map(|&id| (id, (f64::from(logits[id as usize]) / t - max).exp()))
        .collect();
    normalise(&mut law);
    if params.top_k > 0 && params.top_k < logits.len() {
        law.truncate(params.top_k);
        normalise(&mut law);
    }
    if params.top_p < 1.0 {
        let mut above = 0.0;
        let keep = law
            .iter()
            .take_while(|(_, p)| {
                let stays = above < f64::from(params.top_p);
                above += p;
                stays
            })
            .count()
            .max(1);
        law.truncate(keep);
        normalise(&mut law);
    }
    law.sort_by_key(|(id, _)| *id);
    law
}

/// The token an inverse-CDF walk of `law` picks for `uniform`, and the distance from
/// `uniform` to the nearest CDF step (draws that close to a step may legitimately differ
/// between f32 and f64 arithmetic).
pub fn naive_draw(law: &[(u32, f64)], uniform: f32) -> (u32, f64) {
    let u = f64::from(uniform);
    let mut cumulative = 0.0;
    let mut nearest_step = f64::INFINITY;
    let mut picked = None;
    for &(id, p) in law {
        nearest_step = nearest_step.min((cumulative - u).abs());
        cumulative += p;
        if picked.is_none() && cumulative > u {
            picked = Some(id);
        }
    }
    nearest_step = nearest_step.min((cumulative - u).abs());
    let fallback = law.last().map(|(id, _)| *id).unwrap_or(0);
    (picked.unwrap_or(fallback), nearest_step)
}

fn normalise(law: &mut [(u32, f64)]) {
    let total: f64 = law.iter().map(|(_, p)| p).sum();
    for (_, p) in law.iter_mut() {
        *p /= total;
    }
}
