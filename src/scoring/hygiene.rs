//! A person's hygiene per ISO week, 0–100, and the payout factor it gives.
//! `100 − 15 × reverted − 10 × fixed_later − 5 × red_never_green − 3 × duplicates
//! − 2 × noise`, floored at 0; payout factor `floor + (1 − floor) × h / 100`.

use super::rules::Rules;

/// What counts against a person's hygiene in a week.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HygieneEvents {
    pub reverted: u32,
    /// Follow-up fixes, each counted by the share of the commit's added lines
    /// it touched (a commit's shares capped at 1).
    pub fixed_later: f64,
    pub red_never_green: u32,
    pub duplicates: u32,
    pub noise: u32,
    /// Weeks of wasted usage (0 or 1): counts only when `hygiene.waste` > 0.
    pub waste: u32,
}

pub fn hygiene(events: &HygieneEvents, rules: &Rules) -> u32 {
    let h = &rules.hygiene;
    let whole = events.reverted * h.reverted
        + events.red_never_green * h.red_never_green
        + events.duplicates * h.duplicate
        + events.noise * h.noise
        + events.waste * h.waste;
    // `fixed_later × share`, rounded to a whole point once.
    let partial = (events.fixed_later * f64::from(h.fixed_later)).round() as u32;
    100u32.saturating_sub(whole.saturating_add(partial))
}

pub fn payout_factor(hygiene: u32, rules: &Rules) -> f64 {
    let floor = rules.hygiene.payout_floor;
    floor + (1.0 - floor) * f64::from(hygiene.min(100)) / 100.0
}

/// An AI commit under `noise_lines` changed lines, or one that changed only
/// whitespace or re-wrapped lines (formatting only), is noise.
pub fn is_noise(changed_lines: u64, formatting_only: bool, rules: &Rules) -> bool {
    formatting_only || changed_lines < rules.hygiene.noise_lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_hygiene_and_payout() {
        let r = Rules::default();
        assert_eq!(hygiene(&HygieneEvents::default(), &r), 100);
        // One revert: 100 − 15 = 85; payout 0.5 + 0.5 × 0.85 = 0.925
        let one_revert = HygieneEvents {
            reverted: 1,
            ..HygieneEvents::default()
        };
        assert_eq!(hygiene(&one_revert, &r), 85);
        assert!((payout_factor(85, &r) - 0.925).abs() < 1e-12);
        // 1 fix-later, 2 red, 1 duplicate, 3 noise: 100 − 10 − 10 − 3 − 6 = 71
        let mixed = HygieneEvents {
            reverted: 0,
            fixed_later: 1.0,
            red_never_green: 2,
            duplicates: 1,
            noise: 3,
            waste: 1,
        };
        // Waste deducts nothing by default…
        assert_eq!(hygiene(&mixed, &r), 71);
        // …and `hygiene.waste` points when set: 71 − 4 = 67.
        let mut strict = Rules::default();
        strict.hygiene.waste = 4;
        assert_eq!(hygiene(&mixed, &strict), 67);
        // A follow-up fix that touched a quarter of the lines: 10 × 0.25 = 2.5
        // points, rounded once (half away from zero) to 3: 100 − 3 = 97.
        let quarter = HygieneEvents {
            fixed_later: 0.25,
            ..HygieneEvents::default()
        };
        assert_eq!(hygiene(&quarter, &r), 97);
        // Seven reverts: 100 − 105 → floored at 0; payout the floor 0.5.
        let awful = HygieneEvents {
            reverted: 7,
            ..HygieneEvents::default()
        };
        assert_eq!(hygiene(&awful, &r), 0);
        assert_eq!(payout_factor(0, &r), 0.5);
        assert_eq!(payout_factor(100, &r), 1.0);
        assert!(is_noise(2, false, &r) && !is_noise(3, false, &r));
        // A 200-line re-indent is noise too.
        assert!(is_noise(200, true, &r));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn hygiene_and_payout_stay_in_range(
            reverted in 0u32..50, fixed_later in 0u32..50, red in 0u32..50,
            duplicates in 0u32..50, noise in 0u32..50,
        ) {
            let r = Rules::default();
            let events = HygieneEvents { reverted, fixed_later: f64::from(fixed_later) / 4.0, red_never_green: red, duplicates, noise, waste: 0 };
            let h = hygiene(&events, &r);
            prop_assert!(h <= 100);
            let p = payout_factor(h, &r);
            prop_assert!((0.5..=1.0).contains(&p));
            // One more revert never raises hygiene.
            let worse = HygieneEvents { reverted: reverted + 1, ..events };
            prop_assert!(hygiene(&worse, &r) <= h);
        }
    }
}
