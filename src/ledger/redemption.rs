//! Redemptions: tokens a person takes out of their available balance as a
//! bonus, PTO or equity. The API and `tokentally redeem` build the entry here
//! and book it through the same store call, under the same idempotency key rules.

use serde_json::json;

use super::read::rfc3339;
use crate::store::ledger::NewEntry;

/// A redemption entry, or the field that is wrong and why.
pub fn entry(
    person: &str,
    amount_tokens: f64,
    kind: &str,
    key: &str,
    by: &str,
    rules_version: &str,
    now: i64,
) -> Result<NewEntry, (&'static str, String)> {
    if person.trim().is_empty() || person.chars().any(char::is_control) {
        return Err(("person", "expected a person's key".into()));
    }
    let milli = (amount_tokens * 1000.0).round();
    if !amount_tokens.is_finite()
        || amount_tokens <= 0.0
        || (amount_tokens * 1000.0 - milli).abs() > 1e-6
    {
        return Err((
            "tokens",
            format!("{amount_tokens} is not a positive number of tokens with at most 3 decimals"),
        ));
    }
    if milli > 1e12 {
        return Err(("tokens", "too many tokens".into()));
    }
    if !matches!(kind, "bonus" | "pto" | "equity") {
        return Err(("kind", format!("{kind:?} is not one of bonus, pto, equity")));
    }
    if key.is_empty() || key.len() > 300 || key.chars().any(char::is_control) {
        return Err((
            "key",
            "expected an idempotency key of up to 200 characters".into(),
        ));
    }
    Ok(NewEntry {
        person: person.to_string(),
        kind: crate::scoring::balance::EntryKind::Redemption,
        repository_id: None,
        commit_id: None,
        sha: None,
        amount: -(milli as i64),
        rules_version: rules_version.to_string(),
        at: now,
        landed_at: None,
        idempotency_key: key.to_string(),
        corrects: None,
        payout_factor_ppm: None,
        money_minor: None,
        explanation: json!({
            "reason": "redemption",
            "amount_milli": -(milli as i64),
            "redeemed_as": kind,
            "by": by,
            "at": rfc3339(now),
        })
        .to_string(),
    })
}
