//! Money, exactly: a token's value is a decimal (`payout.rate`), amounts are
//! integer minor units of the currency (ISO 4217: cents for USD, yen for JPY),
//! each amount is rounded half-to-even once, and a pool is split so that its
//! lines add up to it exactly.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use super::MilliTokens;

/// A payout factor in parts per million (1.0 = 1,000,000).
pub type FactorPpm = i64;

/// Factor 1: what a vest booked before factors were recorded carries.
pub const FACTOR_ONE: FactorPpm = 1_000_000;

/// A payout factor in parts per million (`0.925` → 925,000).
pub fn factor_ppm(factor: f64) -> FactorPpm {
    (factor * 1_000_000.0).round() as FactorPpm
}

/// Minor units per major unit of an ISO 4217 currency: its exponent, or
/// `None` for a code this table does not know.
pub fn exponent(currency: &str) -> Option<u32> {
    let code = currency.to_ascii_uppercase();
    let zero = [
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
        "VUV", "XAF", "XOF", "XPF",
    ];
    let three = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
    let two = [
        "AED", "ARS", "AUD", "BGN", "BRL", "CAD", "CHF", "CNY", "COP", "CZK", "DKK", "EGP", "EUR",
        "GBP", "HKD", "HUF", "IDR", "ILS", "INR", "MAD", "MXN", "MYR", "NGN", "NOK", "NZD", "PEN",
        "PHP", "PKR", "PLN", "RON", "RSD", "RUB", "SAR", "SEK", "SGD", "THB", "TRY", "TWD", "UAH",
        "USD", "ZAR",
    ];
    if zero.contains(&code.as_str()) {
        Some(0)
    } else if three.contains(&code.as_str()) {
        Some(3)
    } else if two.contains(&code.as_str()) {
        Some(2)
    } else {
        None
    }
}

/// What `value` (milli-tokens × factor ppm, summed) is worth at `rate` per
/// token, in minor units of a currency with `exponent`, rounded half to even.
pub fn value_minor(value: i128, rate: Decimal, exponent: u32) -> i64 {
    // value / (1000 × 1,000,000) tokens × rate × 10^exponent.
    let tokens = Decimal::from_i128_with_scale(value, 9);
    let minor = tokens * rate * Decimal::from(10i64.pow(exponent));
    minor
        .round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven)
        .to_i64()
        .expect("a payout fits in 64 bits")
}

/// `amount` major units in minor units of a currency with `exponent`
/// (rounded half to even).
pub fn major_to_minor(amount: Decimal, exponent: u32) -> i64 {
    (amount * Decimal::from(10i64.pow(exponent)))
        .round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven)
        .to_i64()
        .unwrap_or(i64::MAX)
}

/// A value (milli-tokens × factor ppm) as tokens with 3 decimals (`11.487`),
/// rounded half to even.
pub fn tokens_text(value: i128) -> String {
    Decimal::from_i128_with_scale(value, 9)
        .round_dp_with_strategy(3, RoundingStrategy::MidpointNearestEven)
        .to_string()
}

/// Milli-tokens as tokens with 3 decimals (`12.419`).
pub fn milli_text(milli: MilliTokens) -> String {
    Decimal::new(milli, 3).to_string()
}

/// `amount` minor units as money (`17.05 USD`, `1205 JPY`).
pub fn minor_text(amount: i64, exponent: u32, currency: &str) -> String {
    format!("{} {currency}", Decimal::new(amount, exponent))
}

/// A value in milli-tokens × factor ppm.
pub fn value(tokens: MilliTokens, factor: FactorPpm) -> i128 {
    i128::from(tokens) * i128::from(factor)
}

/// `pool` minor units split in proportion to `values` (largest remainder, ties
/// to the earlier line): the shares add up to `pool` exactly when any value is
/// positive; non-positive values get nothing.
pub fn split_pool(pool: i64, values: &[i128]) -> Vec<i64> {
    let total: i128 = values.iter().filter(|v| **v > 0).sum();
    if total <= 0 || pool <= 0 {
        return vec![0; values.len()];
    }
    let mut shares: Vec<i64> = Vec::with_capacity(values.len());
    let mut remainders: Vec<(i128, usize)> = Vec::new();
    for (i, v) in values.iter().enumerate() {
        if *v <= 0 {
            shares.push(0);
            continue;
        }
        let exact = i128::from(pool) * v;
        shares.push((exact / total) as i64);
        remainders.push((exact % total, i));
    }
    let mut left = pool - shares.iter().sum::<i64>();
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders {
        if left == 0 {
            break;
        }
        shares[i] += 1;
        left -= 1;
    }
    shares
}

/// A decimal from its text (`"0.015"`), or from a TOML float by its shortest
/// round-trip text (so `0.015` is 0.015, not the nearest binary fraction).
pub fn decimal_from_text(text: &str) -> Option<Decimal> {
    text.trim().parse::<Decimal>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        decimal_from_text(text).unwrap()
    }

    #[test]
    fn rates_are_exact_and_rounded_once_half_to_even() {
        // 12.419 tokens at factor 1 and $0.015 a token: 18.6285 cents → 19.
        let v = value(12_419, FACTOR_ONE);
        assert_eq!(value_minor(v, d("0.015"), 2), 19);
        // 1 token at $0.004: 0.4 cents → 0 (not 2 cents for "rounded to a cent a token").
        assert_eq!(value_minor(value(1_000, FACTOR_ONE), d("0.004"), 2), 0);
        // 1,000 tokens at $0.004 = $4.00.
        assert_eq!(
            value_minor(value(1_000_000, FACTOR_ONE), d("0.004"), 2),
            400
        );
        // Half to even: 0.5 → 0, 1.5 → 2, 2.5 → 2 (cents).
        assert_eq!(value_minor(value(5, FACTOR_ONE), d("1"), 2), 0);
        assert_eq!(value_minor(value(15, FACTOR_ONE), d("1"), 2), 2);
        assert_eq!(value_minor(value(25, FACTOR_ONE), d("1"), 2), 2);
        // A factor of 0.925 and yen (no minor unit).
        assert_eq!(
            value_minor(value(5_948, factor_ppm(0.925)), d("100"), 0),
            550
        );
    }

    #[test]
    fn a_pool_is_split_exactly() {
        let shares = split_pool(10_000, &[1, 1, 1]);
        assert_eq!(shares, vec![3_334, 3_333, 3_333]);
        assert_eq!(shares.iter().sum::<i64>(), 10_000);
        assert_eq!(split_pool(100, &[0, -5, 3]), vec![0, 0, 100]);
        assert_eq!(split_pool(100, &[0, 0]), vec![0, 0]);
    }

    #[test]
    fn currencies_know_their_minor_units() {
        assert_eq!(exponent("USD"), Some(2));
        assert_eq!(exponent("jpy"), Some(0));
        assert_eq!(exponent("KWD"), Some(3));
        assert_eq!(exponent("XXX"), None);
    }

    proptest::proptest! {
        #[test]
        fn pool_lines_always_add_up(pool in 0i64..10_000_000, values in proptest::collection::vec(-1_000i128..1_000_000_000, 1..50)) {
            let shares = split_pool(pool, &values);
            let any = values.iter().any(|v| *v > 0);
            let sum: i64 = shares.iter().sum();
            proptest::prop_assert_eq!(sum, if any { pool } else { 0 });
            for (s, v) in shares.iter().zip(&values) {
                proptest::prop_assert!(*s >= 0);
                if *v <= 0 { proptest::prop_assert_eq!(*s, 0); }
            }
        }
    }
}
