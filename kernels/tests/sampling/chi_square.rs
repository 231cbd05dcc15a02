//! Pearson's chi-square goodness-of-fit test with an exact p-value (regularised upper
//! incomplete gamma), small enough to read and checked below against textbook values.

use std::collections::HashMap;

/// Expected count below which a token's bin is pooled with the other small ones: the chi-square
/// approximation of Pearson's statistic needs about five expected draws per bin.
const MIN_EXPECTED: f64 = 5.0;

#[derive(Debug)]
pub struct Fit {
    pub statistic: f64,
    pub degrees_of_freedom: usize,
    pub p_value: f64,
    /// Draws of tokens the law gives no probability at all.
    pub outside_support: usize,
}

/// Tests `counts` (token → draws) against `law` (token → probability).
pub fn goodness_of_fit(law: &[(u32, f64)], counts: &HashMap<u32, usize>) -> Fit {
    let draws: usize = counts.values().sum();
    let n = draws as f64;
    let in_law: HashMap<u32, f64> = law.iter().copied().collect();
    let outside_support = counts
        .iter()
        .filter(|(id, _)| !in_law.contains_key(id))
        .map(|(_, c)| c)
        .sum();

    // (expected, observed) per bin; small-expectation tokens pooled into one bin.
    let mut bins: Vec<(f64, f64)> = Vec::new();
    let mut pooled = (0.0, 0.0);
    for &(id, p) in law {
        let observed = counts.get(&id).copied().unwrap_or(0) as f64;
        if p * n >= MIN_EXPECTED {
            bins.push((p * n, observed));
        } else {
            pooled.0 += p * n;
            pooled.1 += observed;
        }
    }
    if pooled.0 > 0.0 {
        bins.sort_by(|a, b| a.0.total_cmp(&b.0));
        match bins.first_mut() {
            // A pooled bin still too small is merged into the smallest regular bin.
            Some(smallest) if pooled.0 < MIN_EXPECTED => {
                smallest.0 += pooled.0;
                smallest.1 += pooled.1;
            }
            _ => bins.push(pooled),
        }
    }
    let statistic = bins.iter().map(|(e, o)| (o - e).powi(2) / e).sum();
    let degrees_of_freedom = bins.len().saturating_sub(1);
    let p_value = if degrees_of_freedom == 0 {
        1.0
    } else {
        upper_regularised_gamma(degrees_of_freedom as f64 / 2.0, statistic / 2.0)
    };
    Fit {
        statistic,
        degrees_of_freedom,
        p_value,
        outside_support,
    }
}

/// Q(a, x) = Γ(a, x) / Γ(a): the chi-square survival function is Q(df/2, X/2).
pub fn upper_regularised_gamma(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let log_prefactor = -x + a * x.ln() - ln_gamma(a);
    if x < a + 1.0 {
        // Series for the lower function P, which converges fast here.
        let mut term = 1.0 / a;
        let mut sum = term;
        let mut k = 1.0;
        while term.abs() > sum.abs() * 1e-15 {
            term *= x / (a + k);
            sum += term;
            k += 1.0;
        }
        1.0 - sum * log_prefactor.exp()
    } else {
        // Continued fraction for Q (modified Lentz).
        const TINY: f64 = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < TINY {
                d = TINY;
            }
            c = b + an / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            let step = d * c;
            h *= step;
            if (step - 1.0).abs() < 1e-15 {
                break;
            }
        }
        h * log_prefactor.exp()
    }
}

/// ln Γ(x) for x > 0 by the Lanczos approximation (g = 7, nine terms; ~1e-15 relative).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    let x = x - 1.0;
    let series = COEFFICIENTS[1..]
        .iter()
        .enumerate()
        .fold(COEFFICIENTS[0], |acc, (i, c)| {
            acc + c / (x + i as f64 + 1.0)
        });
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

#[test]
fn chi_square_p_values_match_tables() {
    // (df, statistic, p) from standard chi-square tables.
    for (df, statistic, p) in [
        (1.0, 3.841_459, 0.05),
        (10.0, 18.307_04, 0.05),
        (30.0, 50.892_18, 0.01),
        (100.0, 124.342_1, 0.05),
        (5.0, 0.554_298_1, 0.99),
    ] {
        let q = upper_regularised_gamma(df / 2.0, statistic / 2.0);
        assert!((q - p).abs() < 1e-5, "df {df}: {q} vs {p}");
    }
    // Two degrees of freedom have the closed form exp(-x/2).
    for x in [0.1, 1.0, 7.0, 40.0] {
        let q = upper_regularised_gamma(1.0, x / 2.0);
        assert!((q - (-x / 2.0f64).exp()).abs() < 1e-12);
    }
}
