//! Converting vested value into money: `rate` (currency per token) or `pool`
//! (a fixed weekly budget split pro rata — "zero additional budget"). Cents are
//! integers; in pool mode they add up to the pool exactly (largest remainder).

use super::MilliTokens;

/// Cents for `milli_tokens` at `cents_per_token` (rounded half away from zero).
pub fn rate_cents(milli_tokens: MilliTokens, cents_per_token: i64) -> i64 {
    let exact = milli_tokens as i128 * cents_per_token as i128;
    let rounded = (exact.abs() + 500) / 1000;
    (rounded as i64) * exact.signum() as i64
}

/// Splits `pool_cents` over the shares (each person's value in milli-tokens;
/// negative shares count as 0) in proportion, by the largest remainder method:
/// everyone gets the floor of their exact share, and the cents left go one each
/// to the largest remainders (ties to the earlier share). With no positive
/// share, nobody gets anything.
pub fn pool_cents(pool_cents: i64, shares: &[MilliTokens]) -> Vec<i64> {
    let shares: Vec<i128> = shares.iter().map(|s| (*s).max(0) as i128).collect();
    let total: i128 = shares.iter().sum();
    if total == 0 || pool_cents <= 0 {
        return vec![0; shares.len()];
    }
    let pool = pool_cents as i128;
    let mut out: Vec<i64> = Vec::with_capacity(shares.len());
    let mut remainders: Vec<(i128, usize)> = Vec::with_capacity(shares.len());
    for (i, share) in shares.iter().enumerate() {
        let exact = pool * share;
        out.push((exact / total) as i64);
        remainders.push((exact % total, i));
    }
    let left = pool_cents - out.iter().sum::<i64>();
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders.into_iter().take(left as usize) {
        out[i] += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn worked_payouts() {
        // 412.6 tokens at $2.00/token = $825.20
        assert_eq!(rate_cents(412_600, 200), 82_520);
        // 0.0025 tokens at 200 ¢ = 0.5 ¢ → rounds to 1 ¢; a clawback rounds the same way.
        assert_eq!(rate_cents(2, 250), 1);
        assert_eq!(rate_cents(-2, 250), -1);
        // $100.00 over 1 : 1 : 1 → 3334, 3333, 3333 (the first remainder wins the tie).
        assert_eq!(
            pool_cents(10_000, &[1_000, 1_000, 1_000]),
            [3_334, 3_333, 3_333]
        );
        // $10.00 over 88.0, 74.5, 52.0 tokens (sum 214.5): 1000 × 88.0 / 214.5 = 410.256
        // → 410; × 74.5 → 347.319 → 347; × 52.0 → 242.424 → 242; 999 given, the cent
        // left goes to the largest remainder (0.424, the third).
        assert_eq!(
            pool_cents(1_000, &[88_000, 74_500, 52_000]),
            [410, 347, 243]
        );
        assert_eq!(pool_cents(1_000, &[0, -5]), [0, 0], "no value, no payout");
    }

    proptest! {
        /// In pool mode the cents add up to the pool exactly, and nobody gets
        /// more than a cent above their exact share.
        #[test]
        fn pool_cents_add_up(pool in 0i64..10_000_000, shares in prop::collection::vec(-1_000i64..5_000_000, 1..40)) {
            let cents = pool_cents(pool, &shares);
            let positive: i128 = shares.iter().map(|s| (*s).max(0) as i128).sum();
            if positive > 0 {
                prop_assert_eq!(cents.iter().sum::<i64>(), pool);
            }
            for (c, s) in cents.iter().zip(&shares) {
                prop_assert!(*c >= 0);
                if positive > 0 {
                    let exact = pool as f64 * (*s).max(0) as f64 / positive as f64;
                    prop_assert!((*c as f64) <= exact.floor() + 1.0);
                }
            }
        }
    }
}
