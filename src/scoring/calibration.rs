//! Per-kind calibration: kinds whose work holds up more often than average earn
//! more, those that are reverted or fixed more often earn less.
//! `rate_k = (good_k + prior_good) / (n_k + prior_n)`,
//! `c_k = clamp(rate_k / rate_all, min, max)` over the trailing window.

use std::collections::BTreeMap;

use super::rules::Rules;

/// A vested (or reverted/fixed) AI commit of the trailing window.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub kind: String,
    /// Vested without a revert or a follow-up fix.
    pub good: bool,
}

/// Kind → calibration factor; kinds never observed get 1.0 from [`factor`].
pub fn calibrate(observed: &[Observed], rules: &Rules) -> BTreeMap<String, f64> {
    let c = &rules.calibration;
    let rate = |good: usize, n: usize| (good as f64 + c.prior_good) / (n as f64 + c.prior_n);
    let all_good = observed.iter().filter(|o| o.good).count();
    let rate_all = rate(all_good, observed.len());
    let mut per_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for o in observed {
        let entry = per_kind.entry(o.kind.clone()).or_default();
        entry.1 += 1;
        if o.good {
            entry.0 += 1;
        }
    }
    per_kind
        .into_iter()
        .map(|(kind, (good, n))| (kind, (rate(good, n) / rate_all).clamp(c.min, c.max)))
        .collect()
}

/// The factor of `kind` (1.0 when it was not observed).
pub fn factor(calibration: &BTreeMap<String, f64>, kind: &str) -> f64 {
    calibration.get(kind).copied().unwrap_or(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(kind: &str, good: usize, bad: usize) -> Vec<Observed> {
        (0..good)
            .map(|_| Observed {
                kind: kind.into(),
                good: true,
            })
            .chain((0..bad).map(|_| Observed {
                kind: kind.into(),
                good: false,
            }))
            .collect()
    }

    #[test]
    fn worked_calibration() {
        let r = Rules::default();
        // fix: 8 good of 10; feature: 2 good of 10.
        // rate_all = (10 + 2) / (20 + 4) = 0.5
        // rate_fix = (8 + 2) / (10 + 4) = 0.714286 → c = 1.428571
        // rate_feature = (2 + 2) / (10 + 4) = 0.285714 → c = 0.571429
        let mut all = obs("fix", 8, 2);
        all.extend(obs("feature", 2, 8));
        let c = calibrate(&all, &r);
        assert!((c["fix"] - 1.428571).abs() < 1e-6);
        assert!((c["feature"] - 0.571429).abs() < 1e-6);
        assert_eq!(factor(&c, "docs"), 1.0);
        // Extremes are clamped: fix 20/20, chore 0/20.
        // rate_all = (20+2)/(40+4) = 0.5; fix (22/24)/0.5 = 1.8333 → 1.5; chore (2/24)/0.5 = 0.1667 → 0.5
        let mut all = obs("fix", 20, 0);
        all.extend(obs("chore", 0, 20));
        let c = calibrate(&all, &r);
        assert_eq!((c["fix"], c["chore"]), (1.5, 0.5));
        // Nothing observed: nothing to calibrate.
        assert!(calibrate(&[], &r).is_empty());
    }
}
