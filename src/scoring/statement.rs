//! A person's money view of the ledger: the available balance as lots of
//! vested tokens (each at the payout factor of its vest), and the statement of
//! a closed week.
//!
//! Only vests, clawbacks of vested tokens, payouts and redemptions move the
//! available balance; accruals, adjustments and cancellations are pending.
//! A clawback takes back its commit's own lot; what was already paid or
//! redeemed of it is owed (a lot below zero at its vest's factor). A payout
//! takes every lot (owed ones net against the rest); a redemption takes the
//! oldest lots first.

use std::collections::BTreeMap;

use serde::Serialize;

use super::MilliTokens;
use super::balance::EntryKind;
use super::money::{FACTOR_ONE, FactorPpm, value};

/// An entry as the money view reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoneyFact {
    pub id: i64,
    pub kind: EntryKind,
    pub commit_id: Option<i64>,
    pub amount: MilliTokens,
    /// Set on a vest (and on a clawback, from its vest); none on entries made
    /// before factors were recorded (factor 1).
    pub factor_ppm: Option<FactorPpm>,
    /// The closed week it corrects, if any.
    pub corrects: Option<String>,
    /// A payout's money, in minor units.
    pub money_minor: Option<i64>,
}

/// Vested tokens of one commit at one factor (below zero: owed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lot {
    pub commit_id: Option<i64>,
    pub tokens: MilliTokens,
    pub factor_ppm: FactorPpm,
}

/// The available balance, lot by lot, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lots(pub Vec<Lot>);

impl Lots {
    /// Tokens available (below zero: owed).
    pub fn tokens(&self) -> MilliTokens {
        self.0.iter().map(|l| l.tokens).sum()
    }

    /// Their value: milli-tokens × factor ppm.
    pub fn value(&self) -> i128 {
        self.0.iter().map(|l| value(l.tokens, l.factor_ppm)).sum()
    }

    /// Applies one entry.
    pub fn apply(&mut self, e: &MoneyFact) {
        let factor = e.factor_ppm.unwrap_or(FACTOR_ONE);
        match e.kind {
            EntryKind::Vest if e.amount >= 0 => self.0.push(Lot {
                commit_id: e.commit_id,
                tokens: e.amount,
                factor_ppm: factor,
            }),
            // A vest reversed, or vested tokens clawed back: from the commit's own lots.
            EntryKind::Vest | EntryKind::Clawback => {
                self.take_from_commit(e.commit_id, -e.amount, factor)
            }
            EntryKind::Payout => self.0.clear(),
            EntryKind::Redemption => self.take_oldest(-e.amount),
            EntryKind::Accrual | EntryKind::Adjustment | EntryKind::Cancel => {}
        }
        self.0.retain(|l| l.tokens != 0);
    }

    fn take_from_commit(
        &mut self,
        commit: Option<i64>,
        mut tokens: MilliTokens,
        factor: FactorPpm,
    ) {
        for lot in self
            .0
            .iter_mut()
            .filter(|l| l.commit_id == commit && l.tokens > 0)
        {
            let taken = lot.tokens.min(tokens);
            lot.tokens -= taken;
            tokens -= taken;
            if tokens == 0 {
                return;
            }
        }
        // Already paid or redeemed: owed, at the factor it was valued at.
        self.0.push(Lot {
            commit_id: commit,
            tokens: -tokens,
            factor_ppm: factor,
        });
    }

    fn take_oldest(&mut self, mut tokens: MilliTokens) {
        for lot in self.0.iter_mut().filter(|l| l.tokens > 0) {
            let taken = lot.tokens.min(tokens);
            lot.tokens -= taken;
            tokens -= taken;
            if tokens == 0 {
                return;
            }
        }
        if tokens > 0 {
            self.0.push(Lot {
                commit_id: None,
                tokens: -tokens,
                factor_ppm: FACTOR_ONE,
            });
        }
    }
}

/// The lots after `entries` (in ledger order).
pub fn lots<'a>(entries: impl IntoIterator<Item = &'a MoneyFact>) -> Lots {
    let mut lots = Lots::default();
    for e in entries {
        lots.apply(e);
    }
    lots
}

/// The entries behind each number of a statement line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LineEntries {
    pub vested: Vec<i64>,
    pub clawed_back: Vec<i64>,
    pub corrections: Vec<i64>,
    pub redeemed: Vec<i64>,
    pub paid: Vec<i64>,
}

/// One person's statement of one week (milli-tokens; money in minor units).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementLine {
    pub person: String,
    pub opening: MilliTokens,
    pub vested: MilliTokens,
    pub clawed_back: MilliTokens,
    pub corrections: MilliTokens,
    pub redeemed: MilliTokens,
    pub paid: MilliTokens,
    pub closing: MilliTokens,
    pub amount_minor: i64,
    pub entries: LineEntries,
}

/// The statement line of `person` for the week whose entries are `week`,
/// after `opening` tokens available: what moved the available balance, by
/// kind; entries that correct a closed week count as corrections.
pub fn statement_line(person: &str, opening: MilliTokens, week: &[MoneyFact]) -> StatementLine {
    let mut line = StatementLine {
        person: person.to_string(),
        opening,
        vested: 0,
        clawed_back: 0,
        corrections: 0,
        redeemed: 0,
        paid: 0,
        closing: opening,
        amount_minor: 0,
        entries: LineEntries::default(),
    };
    for e in week {
        let moves = matches!(
            e.kind,
            EntryKind::Vest | EntryKind::Clawback | EntryKind::Payout | EntryKind::Redemption
        );
        if !moves {
            continue;
        }
        line.closing += e.amount;
        match e.kind {
            EntryKind::Vest | EntryKind::Clawback if e.corrects.is_some() => {
                line.corrections += e.amount;
                line.entries.corrections.push(e.id);
            }
            EntryKind::Vest if e.amount >= 0 => {
                line.vested += e.amount;
                line.entries.vested.push(e.id);
            }
            // A vest taken back (it was wrong on the facts) is clawed back.
            EntryKind::Vest | EntryKind::Clawback => {
                line.clawed_back -= e.amount;
                line.entries.clawed_back.push(e.id);
            }
            EntryKind::Redemption => {
                line.redeemed -= e.amount;
                line.entries.redeemed.push(e.id);
            }
            EntryKind::Payout => {
                line.paid -= e.amount;
                line.amount_minor += e.money_minor.unwrap_or(0);
                line.entries.paid.push(e.id);
            }
            _ => {}
        }
    }
    line
}

impl StatementLine {
    /// The line adds up: opening + vested − clawed back + corrections −
    /// redeemed − paid = closing.
    pub fn adds_up(&self) -> bool {
        self.opening + self.vested - self.clawed_back + self.corrections - self.redeemed - self.paid
            == self.closing
    }
}

/// One person's week: the line of the entries dated in it (none when nothing
/// moved their available balance) and their lots at its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonWeek {
    pub line: Option<StatementLine>,
    pub lots: Lots,
}

/// Per person, the week `[start, end)` from every entry effective before
/// `end` — (person, effective time, entry), in time order, ties by id: the
/// opening balance is what the entries before `start` leave available.
pub fn week_statements<'a>(
    facts: impl IntoIterator<Item = (&'a str, i64, &'a MoneyFact)>,
    start: i64,
    end: i64,
) -> BTreeMap<String, PersonWeek> {
    let mut opening: BTreeMap<String, Lots> = BTreeMap::new();
    let mut week = Vec::new();
    for (person, at, fact) in facts {
        if at < start {
            opening.entry(person.to_string()).or_default().apply(fact);
        } else if at < end {
            week.push((person, at, fact));
        }
    }
    week_statements_after(opening, week)
}

/// Per person, a week from everyone's lots when it began (`opening`) and the
/// entries dated in it, in time order (ties by id). Everyone with lots is in
/// the result (their lots at the week's end), with a line when their
/// available balance moved.
pub fn week_statements_after<'a>(
    opening: BTreeMap<String, Lots>,
    week: impl IntoIterator<Item = (&'a str, i64, &'a MoneyFact)>,
) -> BTreeMap<String, PersonWeek> {
    struct Acc {
        lots: Lots,
        opening: MilliTokens,
        week: Vec<MoneyFact>,
    }
    let mut people: BTreeMap<String, Acc> = opening
        .into_iter()
        .map(|(person, lots)| {
            let tokens = lots.tokens();
            (
                person,
                Acc {
                    lots,
                    opening: tokens,
                    week: Vec::new(),
                },
            )
        })
        .collect();
    for (person, _, fact) in week {
        let acc = match people.get_mut(person) {
            Some(acc) => acc,
            None => people.entry(person.to_string()).or_insert(Acc {
                lots: Lots::default(),
                opening: 0,
                week: Vec::new(),
            }),
        };
        acc.week.push(fact.clone());
        acc.lots.apply(fact);
    }
    people
        .into_iter()
        .map(|(person, acc)| {
            let line = statement_line(&person, acc.opening, &acc.week);
            let moved = !(line.entries.vested.is_empty()
                && line.entries.clawed_back.is_empty()
                && line.entries.corrections.is_empty()
                && line.entries.redeemed.is_empty()
                && line.entries.paid.is_empty());
            (
                person,
                PersonWeek {
                    line: moved.then_some(line),
                    lots: acc.lots,
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(id: i64, kind: EntryKind, commit: i64, amount: i64, factor: Option<i64>) -> MoneyFact {
        MoneyFact {
            id,
            kind,
            commit_id: (commit != 0).then_some(commit),
            amount,
            factor_ppm: factor,
            corrects: None,
            money_minor: None,
        }
    }

    #[test]
    fn a_clawback_takes_its_own_lot_and_owes_what_was_paid() {
        use EntryKind::*;
        let mut lots = Lots::default();
        lots.apply(&fact(1, Vest, 10, 5_000, Some(900_000)));
        lots.apply(&fact(2, Vest, 11, 3_000, Some(1_000_000)));
        assert_eq!(lots.tokens(), 8_000);
        assert_eq!(lots.value(), 5_000 * 900_000 + 3_000 * 1_000_000);
        // Commit 10 clawed back while unpaid: its lot goes, nothing owed.
        let mut unpaid = lots.clone();
        unpaid.apply(&fact(3, Clawback, 10, -5_000, Some(900_000)));
        assert_eq!(unpaid.tokens(), 3_000);
        // Paid first, then clawed back: owed at its vest's factor.
        lots.apply(&fact(4, Payout, 0, -8_000, None));
        assert_eq!(lots.tokens(), 0);
        lots.apply(&fact(5, Clawback, 10, -5_000, Some(900_000)));
        assert_eq!(lots.tokens(), -5_000);
        assert_eq!(lots.value(), -5_000 * 900_000);
        // A later vest nets against what is owed.
        lots.apply(&fact(6, Vest, 12, 7_000, Some(1_000_000)));
        assert_eq!(lots.tokens(), 2_000);
    }

    #[test]
    fn redemptions_take_the_oldest_lots_first() {
        use EntryKind::*;
        let lots = lots(&[
            fact(1, Vest, 10, 5_000, Some(900_000)),
            fact(2, Vest, 11, 3_000, Some(1_000_000)),
            fact(3, Redemption, 0, -6_000, None),
            // Commit 11 clawed back: 1,000 of it was redeemed, owed.
            fact(4, Clawback, 11, -3_000, Some(1_000_000)),
        ]);
        assert_eq!(lots.tokens(), -1_000);
    }

    #[test]
    fn a_statement_line_adds_up() {
        use EntryKind::*;
        let mut correction = fact(5, Vest, 12, 400, Some(1_000_000));
        correction.corrects = Some("2026-W40".into());
        let mut payout = fact(6, Payout, 0, -7_400, None);
        payout.money_minor = Some(7_400);
        let week = [
            fact(1, Accrual, 13, 9_000, None),
            fact(2, Vest, 10, 5_000, Some(900_000)),
            fact(3, Clawback, 11, -1_000, Some(1_000_000)),
            fact(4, Redemption, 0, -2_000, None),
            correction,
            fact(7, Cancel, 13, -9_000, None),
            payout,
        ];
        let line = statement_line("ada", 5_000, &week);
        assert_eq!(
            (
                line.opening,
                line.vested,
                line.clawed_back,
                line.corrections,
                line.redeemed,
                line.paid,
                line.closing
            ),
            (5_000, 5_000, 1_000, 400, 2_000, 7_400, 0)
        );
        assert!(line.adds_up());
        assert_eq!(line.amount_minor, 7_400);
        assert_eq!(line.entries.corrections, vec![5]);
        assert_eq!(line.entries.paid, vec![6]);
    }
}

#[cfg(test)]
mod properties {
    //! Random vests, clawbacks, redemptions and closes: no token is paid or
    //! redeemed twice, statements add up and chain, their sum is the balance,
    //! and a closed week's statement is the same however many events follow.

    use proptest::prelude::*;

    use super::*;
    use crate::scoring::balance::balance;
    use crate::scoring::money::value_minor;

    const WEEK: i64 = 7 * 86_400_000;

    #[derive(Debug, Clone)]
    enum Event {
        Vest {
            commit: i64,
            tokens: i64,
            factor: i64,
        },
        /// Takes a commit's vest back (a clawback, or a vest reversed).
        TakeBack {
            commit: i64,
            as_vest: bool,
        },
        Redeem {
            tokens: i64,
        },
        Close,
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            4 => (1i64..12, 1i64..20_000, 500_000i64..=1_000_000)
                .prop_map(|(commit, tokens, factor)| Event::Vest { commit, tokens, factor }),
            2 => (1i64..12, any::<bool>()).prop_map(|(commit, as_vest)| Event::TakeBack { commit, as_vest }),
            2 => (1i64..20_000).prop_map(|tokens| Event::Redeem { tokens }),
            3 => Just(Event::Close),
        ]
    }

    struct Ledger {
        facts: Vec<(i64, MoneyFact)>,
        week: i64,
        vested: std::collections::HashMap<i64, (i64, i64)>,
        closed: Vec<(i64, Option<StatementLine>)>,
        pays: bool,
    }

    impl Ledger {
        fn push(&mut self, kind: EntryKind, commit: Option<i64>, amount: i64, factor: Option<i64>) {
            let id = self.facts.len() as i64 + 1;
            let at = self.week * WEEK + id;
            self.facts.push((
                at,
                MoneyFact {
                    id,
                    kind,
                    commit_id: commit,
                    amount,
                    factor_ppm: factor,
                    corrects: None,
                    money_minor: None,
                },
            ));
        }

        fn week_of(&self, w: i64) -> PersonWeek {
            week_statements(
                self.facts.iter().map(|(at, f)| ("p", *at, f)),
                w * WEEK,
                (w + 1) * WEEK,
            )
            .remove("p")
            .unwrap_or(PersonWeek {
                line: None,
                lots: Lots::default(),
            })
        }

        fn rows(&self) -> Vec<(Option<i64>, EntryKind, i64)> {
            self.facts
                .iter()
                .map(|(_, f)| (f.commit_id, f.kind, f.amount))
                .collect()
        }

        fn apply(&mut self, e: &Event) {
            match *e {
                Event::Vest {
                    commit,
                    tokens,
                    factor,
                } if !self.vested.contains_key(&commit) => {
                    self.vested.insert(commit, (tokens, factor));
                    self.push(EntryKind::Vest, Some(commit), tokens, Some(factor));
                }
                Event::TakeBack { commit, as_vest } => {
                    if let Some((tokens, factor)) =
                        self.vested.get(&commit).copied().filter(|v| v.0 > 0)
                    {
                        self.vested.insert(commit, (0, factor));
                        let kind = if as_vest {
                            EntryKind::Vest
                        } else {
                            EntryKind::Clawback
                        };
                        self.push(kind, Some(commit), -tokens, Some(factor));
                    }
                }
                // The store's guard: never below zero.
                Event::Redeem { tokens } if balance(&self.rows()).available >= tokens => {
                    self.push(EntryKind::Redemption, None, -tokens, None);
                }
                Event::Close => {
                    let w = self.week;
                    let lots = self.week_of(w).lots;
                    if self.pays && lots.tokens() > 0 && lots.value() > 0 {
                        let money = value_minor(lots.value(), rust_decimal::Decimal::ONE, 2);
                        let id = self.facts.len() as i64 + 1;
                        self.facts.push((
                            (w + 1) * WEEK - 1,
                            MoneyFact {
                                id,
                                kind: EntryKind::Payout,
                                commit_id: None,
                                amount: -lots.tokens(),
                                factor_ppm: None,
                                corrects: None,
                                money_minor: Some(money),
                            },
                        ));
                    }
                    let line = self.week_of(w).line;
                    self.closed.push((w, line));
                    self.week += 1;
                }
                _ => {}
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn never_paid_twice_and_statements_add_up(events in prop::collection::vec(event(), 1..60), pays in any::<bool>()) {
            let mut ledger = Ledger { facts: Vec::new(), week: 0, vested: Default::default(), closed: Vec::new(), pays };
            for e in &events {
                ledger.apply(e);
            }
            let b = balance(&ledger.rows());
            let ever_vested: i64 = ledger.facts.iter()
                .filter(|(_, f)| f.kind == EntryKind::Vest && f.amount > 0)
                .map(|(_, f)| f.amount)
                .sum();
            // Never paid or redeemed more than ever vested.
            prop_assert!(b.paid + b.redeemed <= ever_vested, "{b:?} vs {ever_vested}");
            // Closed weeks never change, chain, and add up to the balance.
            let mut running = 0;
            for (w, line) in &ledger.closed {
                prop_assert_eq!(&ledger.week_of(*w).line, line, "week {} changed", w);
                if let Some(line) = line {
                    prop_assert!(line.adds_up(), "{line:?}");
                    prop_assert_eq!(line.opening, running);
                    running = line.closing;
                }
                // After a paying close nothing is left to pay again.
                let after = ledger.week_of(*w).lots;
                if ledger.pays {
                    prop_assert!(after.tokens() <= 0 || after.value() <= 0, "{after:?}");
                }
            }
            let open = ledger.week_of(ledger.week);
            let open_delta = open.line.as_ref().map_or(0, |l| l.closing - l.opening);
            prop_assert_eq!(running + open_delta, b.available);
            prop_assert_eq!(b.available, b.vested - b.clawed_back - b.paid - b.redeemed);
        }
    }
}
