//! Periods: ISO weeks close, in order, into statements that never change.
//!
//! A week closes `payout.close_after_hours` after it ends, once no
//! repository's first sync is running; the first week that can close is the
//! week of the ledger's first entry. Closing (under the ledger's write lock)
//! pays each person's available tokens when `payout.mode` is `rate` or `pool`
//! (a `payout` entry), then writes one statement line per person whose
//! available balance moved, and the chain hash of the last entry it covers.
//!
//! Nothing is dated into a closed week: an entry whose own time falls in one
//! is dated at the start of the oldest open week and says which week it
//! `corrects`.

use std::collections::BTreeMap;

use chrono_tz::Tz;
use serde::Serialize;

use super::{Ledger, LedgerError};
use crate::config::PayoutMode;
use crate::scoring::MilliTokens;
use crate::scoring::balance::EntryKind;
use crate::scoring::money::{self, split_pool, value_minor};
use crate::scoring::statement::{
    LineEntries, Lot, Lots, MoneyFact, PersonWeek, StatementLine, week_statements_after,
};
use crate::scoring::week::Week;
use crate::store::ledger::NewEntry;
use crate::store::statements::{ClosedWeekRow, DatedFact, StatementRow};

const HOUR_MS: i64 = 3_600_000;

/// A first sync marked as running for longer than this died with its process:
/// it no longer holds weeks open.
const FIRST_SYNC_STALE_MS: i64 = 6 * HOUR_MS;

/// Where the open period starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// The last closed week (`2026-W43`), if any.
    pub last_closed: Option<String>,
    /// The start of the oldest open week (nothing is dated before it).
    pub open_from: Option<i64>,
}

impl Period {
    /// `entry` dated no earlier than the open period: an entry whose own time
    /// falls in a closed week moves to the start of the oldest open week and
    /// `corrects` that week.
    pub fn date(&self, mut entry: NewEntry, tz: Tz) -> NewEntry {
        if let Some(floor) = self.open_from
            && entry.at < floor
        {
            entry.corrects = Some(Week::of(entry.at, tz).label());
            entry.at = floor;
        }
        entry
    }
}

/// A week's statement: stored when the week is closed, computed from the
/// entries so far when it is open (no payouts yet).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    pub week: String,
    pub closed: bool,
    pub currency: String,
    pub total_minor: i64,
    /// The chain hash of the last entry the statement covers (closed weeks).
    pub hash: Option<String>,
    pub lines: Vec<StatementLine>,
}

impl Statement {
    /// The API's and the CLI's JSON: tokens as numbers with 3 decimals, money in minor units.
    pub fn to_json(&self) -> serde_json::Value {
        let t = super::read::tokens;
        serde_json::json!({
            "week": self.week,
            "closed": self.closed,
            "currency": self.currency,
            "total_minor": self.total_minor,
            "hash": self.hash,
            "lines": self.lines.iter().map(|l| serde_json::json!({
                "person": l.person,
                "opening": t(l.opening),
                "vested": t(l.vested),
                "clawed_back": t(l.clawed_back),
                "corrections": t(l.corrections),
                "redeemed": t(l.redeemed),
                "paid": t(l.paid),
                "closing": t(l.closing),
                "amount_minor": l.amount_minor,
                "entries": l.entries,
            })).collect::<Vec<_>>(),
        })
    }
}

/// The payouts of a week from its statement: each person's paid tokens and
/// money; an open week pays nothing yet and says when it closes.
pub fn payouts_json(
    statement: &Statement,
    config: &crate::config::PayoutConfig,
    closes_at: i64,
) -> serde_json::Value {
    let t = super::read::tokens;
    let exponent = config.exponent();
    let payouts: Vec<serde_json::Value> = statement
        .lines
        .iter()
        .filter(|l| statement.closed && l.paid != 0)
        .map(|l| {
            serde_json::json!({
                "person": l.person,
                "tokens": t(l.paid),
                "amount_minor": l.amount_minor,
                "amount": money::minor_text(l.amount_minor, exponent, &config.currency),
                "pto_hours": config
                    .pto_hours_per_token
                    .map(|h| (l.paid as f64 / 1000.0 * h * 100.0).round() / 100.0),
            })
        })
        .collect();
    let mut body = serde_json::json!({
        "week": statement.week,
        "closed": statement.closed,
        "mode": config.mode.as_str(),
        "currency": statement.currency,
        "payouts": payouts,
        "total_minor": if statement.closed { statement.total_minor } else { 0 },
    });
    if !statement.closed {
        body["closes_at"] = serde_json::json!(super::read::rfc3339(closes_at));
        body["message"] = serde_json::json!(format!(
            "{} is still open: it closes at {} and its payouts are made then",
            statement.week,
            super::read::rfc3339(closes_at)
        ));
    } else if config.mode == PayoutMode::Redeem {
        body["message"] = serde_json::json!(
            "payout.mode is redeem: closes pay nothing; tokens are cashed out by redemptions"
        );
    }
    body
}

/// What `ledger verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    Ok {
        entries: u64,
        statements: u64,
    },
    /// The first entry whose stored hash is not the chain's.
    Entry {
        id: i64,
        reason: String,
    },
    /// The first statement (week, person) that does not match its entries.
    Statement {
        week: String,
        reason: String,
    },
}

impl Ledger {
    /// The open period now.
    pub async fn period(&self) -> Result<Period, LedgerError> {
        let last_closed = self.store.last_closed_week().await?;
        Ok(self.period_after(last_closed))
    }

    fn period_after(&self, last_closed: Option<String>) -> Period {
        let open_from = last_closed
            .as_deref()
            .and_then(Week::parse)
            .map(|w| w.bounds(self.tz).1);
        Period {
            last_closed,
            open_from,
        }
    }

    /// When `week` closes (or closed): `payout.close_after_hours` after it ends.
    pub fn closes_at(&self, week: Week) -> i64 {
        week.bounds(self.tz).1 + i64::from(self.payout.close_after_hours) * HOUR_MS
    }

    pub fn payout_config(&self) -> &crate::config::PayoutConfig {
        &self.payout
    }

    /// Closes every week whose close time has passed, in order; returns the weeks closed.
    pub async fn close_due(&self, now: i64) -> Result<Vec<String>, LedgerError> {
        let mut closed = Vec::new();
        // Everyone's lots at the end of the week closed last here: the next
        // week's opening, so a run of closes reads the history once.
        let mut carried: Option<(i64, BTreeMap<String, Lots>)> = None;
        loop {
            let last = self.store.last_closed_week().await?;
            let next = match last.as_deref().and_then(Week::parse) {
                Some(w) => w.next(self.tz),
                None => match self.store.first_entry_at().await? {
                    Some(at) => Week::of(at, self.tz),
                    None => return Ok(closed),
                },
            };
            if now < self.closes_at(next)
                || self
                    .store
                    .first_sync_running(now - FIRST_SYNC_STALE_MS)
                    .await?
            {
                return Ok(closed);
            }
            match self
                .close_week(next, last.as_deref(), now, carried.take())
                .await?
            {
                Some(lots) => {
                    tracing::info!(week = %next.label(), "week closed");
                    closed.push(next.label());
                    carried = Some((next.bounds(self.tz).1, lots));
                }
                None => carried = None,
            }
        }
    }

    /// Closes `week` if the last closed week is still `after`: payouts,
    /// statement lines and the closed week in one transaction. `carried` is
    /// everyone's lots when the week began, if known. Returns everyone's lots
    /// at its end, or `None` when another replica closed it meanwhile.
    async fn close_week(
        &self,
        week: Week,
        after: Option<&str>,
        now: i64,
        carried: Option<(i64, BTreeMap<String, Lots>)>,
    ) -> Result<Option<BTreeMap<String, Lots>>, LedgerError> {
        let (start, end) = week.bounds(self.tz);
        let label = week.label();
        let mut tx = self.store.begin_ledger_write().await?;
        if tx.last_closed_week().await?.as_deref() != after {
            return Ok(None);
        }
        let opening = match carried {
            Some((at, lots)) if at == start => lots,
            _ => opening_lots(&tx.facts_before(start).await?),
        };
        let facts = tx.facts_between(start, end).await?;
        let people = week_statements_after(opening.clone(), dated(&facts));
        let payouts = self.payouts_at_close(&label, end, &people);
        if !payouts.is_empty() {
            tx.append(&payouts, now).await?;
        }
        // The lines with the payouts in them.
        let facts = tx.facts_between(start, end).await?;
        let people = week_statements_after(opening, dated(&facts));
        let lots_at_end: BTreeMap<String, Lots> = people
            .iter()
            .map(|(person, w)| (person.clone(), w.lots.clone()))
            .collect();
        let lines: Vec<StatementLine> = people.into_values().filter_map(|p| p.line).collect();
        let (last_entry_id, last_hash) = tx.chain_head().await?;
        let closed = ClosedWeekRow {
            week: label.clone(),
            starts_at: start,
            ends_at: end,
            closed_at: now,
            last_entry_id,
            last_hash,
            currency: self.payout.currency.clone(),
            total_minor: lines.iter().map(|l| l.amount_minor).sum(),
        };
        let rows: Vec<StatementRow> = lines.iter().map(|l| to_row(&label, l)).collect();
        tx.insert_closed_week(&closed, &rows).await?;
        tx.commit().await?;
        Ok(Some(lots_at_end))
    }

    /// The payout entries of a close: each person's available tokens, valued
    /// lot by lot at the factor of its vest, at `rate` or as a share of the pool.
    fn payouts_at_close(
        &self,
        week: &str,
        end: i64,
        people: &BTreeMap<String, PersonWeek>,
    ) -> Vec<NewEntry> {
        let p = &self.payout;
        if p.mode == PayoutMode::Redeem {
            return Vec::new();
        }
        let payable: Vec<(&String, MilliTokens, i128)> = people
            .iter()
            .map(|(person, w)| (person, w.lots.tokens(), w.lots.value()))
            .filter(|(_, tokens, value)| *tokens > 0 && *value > 0)
            .collect();
        let exponent = p.exponent();
        let amounts: Vec<i64> = match p.mode {
            PayoutMode::Pool => {
                let values: Vec<i128> = payable.iter().map(|(_, _, v)| *v).collect();
                split_pool(p.pool_minor(), &values)
            }
            _ => payable
                .iter()
                .map(|(_, _, v)| value_minor(*v, p.rate, exponent))
                .collect(),
        };
        payable
            .into_iter()
            .zip(amounts)
            .map(|((person, tokens, value), amount_minor)| {
                let valued = money::tokens_text(value);
                let how = match p.mode {
                    PayoutMode::Pool => format!(
                        "{} tokens valued {valued} (each lot × its vest's payout factor): their share of the {} {} pool = {}",
                        money::milli_text(tokens),
                        p.weekly_pool,
                        p.currency,
                        money::minor_text(amount_minor, exponent, &p.currency)
                    ),
                    _ => format!(
                        "{} tokens valued {valued} (each lot × its vest's payout factor) × {} {} = {}",
                        money::milli_text(tokens),
                        p.rate,
                        p.currency,
                        money::minor_text(amount_minor, exponent, &p.currency)
                    ),
                };
                NewEntry {
                    person: person.clone(),
                    kind: EntryKind::Payout,
                    repository_id: None,
                    commit_id: None,
                    sha: None,
                    amount: -tokens,
                    rules_version: self.version.clone(),
                    at: end - 1,
                    landed_at: None,
                    idempotency_key: format!("payout:{week}:{person}"),
                    explanation: serde_json::json!({
                        "reason": "payout",
                        "week": week,
                        "mode": p.mode.as_str(),
                        "tokens_milli": tokens,
                        "amount_milli": -tokens,
                        "valued_tokens": valued,
                        "rate": p.rate.to_string(),
                        "weekly_pool": (p.mode == PayoutMode::Pool).then(|| p.weekly_pool.to_string()),
                        "currency": p.currency,
                        "amount_minor": amount_minor,
                        "text": how,
                    })
                    .to_string(),
                    corrects: None,
                    payout_factor_ppm: None,
                    money_minor: Some(amount_minor),
                }
            })
            .collect()
    }

    /// The statement of `week`: as stored when closed; computed from the
    /// entries so far (no payouts) when open.
    pub async fn statement(&self, week: Week) -> Result<Statement, LedgerError> {
        let label = week.label();
        if let Some(closed) = self.store.closed_week(&label).await? {
            let lines = self
                .store
                .statement_lines(&label)
                .await?
                .into_iter()
                .map(from_row)
                .collect();
            return Ok(Statement {
                week: label,
                closed: true,
                currency: closed.currency,
                total_minor: closed.total_minor,
                hash: Some(closed.last_hash),
                lines,
            });
        }
        // Open: the closing balances of the closed weeks, then what came after
        // (a preview of tokens: no payout is valued before the close).
        let (start, end) = week.bounds(self.tz);
        let open_from = self
            .period()
            .await?
            .open_from
            .unwrap_or(i64::MIN)
            .min(start);
        let (closings, facts) = tokio::try_join!(
            self.store.closing_balances(),
            self.store.facts_between(open_from, end)
        )?;
        let mut opening: BTreeMap<String, Lots> = closings
            .into_iter()
            .map(|(person, tokens)| {
                let lot = Lot {
                    commit_id: None,
                    tokens,
                    factor_ppm: money::FACTOR_ONE,
                };
                (person, Lots(vec![lot]))
            })
            .collect();
        for f in facts.iter().filter(|f| f.at < start) {
            opening.entry(f.person.clone()).or_default().apply(&f.fact);
        }
        let week_facts = facts.iter().filter(|f| f.at >= start);
        let lines: Vec<StatementLine> = week_statements_after(
            opening,
            week_facts.map(|f| (f.person.as_str(), f.at, &f.fact)),
        )
        .into_values()
        .filter_map(|p| p.line)
        .collect();
        Ok(Statement {
            week: label,
            closed: false,
            currency: self.payout.currency.clone(),
            total_minor: lines.iter().map(|l| l.amount_minor).sum(),
            hash: None,
            lines,
        })
    }

    /// A person's statement lines of their last `limit` closed weeks, newest first.
    pub async fn person_statements(
        &self,
        person: &str,
        limit: i64,
    ) -> Result<Vec<(String, StatementLine)>, LedgerError> {
        Ok(self
            .store
            .person_statement_lines(person, limit)
            .await?
            .into_iter()
            .map(|r| (r.week.clone(), from_row(r)))
            .collect())
    }

    /// `ledger verify`: recomputes the hash chain and every closed week's
    /// statement from the entries; the first mismatch, or the counts.
    pub async fn verify(&self) -> Result<Verified, LedgerError> {
        let mut previous = String::new();
        let mut entries = 0u64;
        let mut broken: Option<Verified> = None;
        let mut hash_at: BTreeMap<i64, String> = BTreeMap::new();
        let closed = self.store.closed_weeks().await?;
        let wanted: std::collections::HashSet<i64> =
            closed.iter().map(|c| c.last_entry_id).collect();
        self.store
            .each_chained_entry(|e| {
                if broken.is_some() {
                    return;
                }
                entries += 1;
                let expected = e.chain_hash(&previous);
                match &e.hash {
                    Some(stored) if *stored == expected => {}
                    Some(_) => {
                        broken = Some(Verified::Entry {
                            id: e.id,
                            reason: "its stored hash is not SHA-256 of the previous hash and its fields (changed after it was written)".into(),
                        })
                    }
                    None => {
                        broken = Some(Verified::Entry {
                            id: e.id,
                            reason: "it has no hash in the chain".into(),
                        })
                    }
                }
                if wanted.contains(&e.id) {
                    hash_at.insert(e.id, expected.clone());
                }
                previous = expected;
            })
            .await?;
        if let Some(b) = broken {
            return Ok(b);
        }
        let stored = self.store.all_statement_lines().await?;
        let mut by_week: BTreeMap<&str, Vec<&StatementRow>> = BTreeMap::new();
        for row in &stored {
            by_week.entry(row.week.as_str()).or_default().push(row);
        }
        let last_end = closed.last().map(|c| c.ends_at).unwrap_or(i64::MIN);
        let facts = self.store.facts_before(last_end).await?;
        // Weeks in order, each from the lots the one before left.
        let mut lots: BTreeMap<String, Lots> = BTreeMap::new();
        let mut next = 0;
        for week in &closed {
            while next < facts.len() && facts[next].at < week.starts_at {
                let f = &facts[next];
                lots.entry(f.person.clone()).or_default().apply(&f.fact);
                next += 1;
            }
            let first = next;
            while next < facts.len() && facts[next].at < week.ends_at {
                next += 1;
            }
            let people = week_statements_after(lots, dated(&facts[first..next]));
            let recomputed: Vec<StatementRow> = people
                .values()
                .filter_map(|p| p.line.as_ref())
                .map(|l| to_row(&week.week, l))
                .collect();
            lots = people.into_iter().map(|(p, w)| (p, w.lots)).collect();
            let mismatch = |reason: String| Verified::Statement {
                week: week.week.clone(),
                reason,
            };
            if week.last_entry_id > 0 && hash_at.get(&week.last_entry_id) != Some(&week.last_hash) {
                return Ok(mismatch(format!(
                    "the chain hash of entry {} is not the hash the statement recorded",
                    week.last_entry_id
                )));
            }
            let stored_lines: Vec<StatementRow> = by_week
                .get(week.week.as_str())
                .map(|rows| rows.iter().map(|r| (*r).clone()).collect())
                .unwrap_or_default();
            if let Some(reason) = first_difference(&stored_lines, &recomputed) {
                return Ok(mismatch(reason));
            }
            let total: i64 = stored_lines.iter().map(|l| l.amount_minor).sum();
            if total != week.total_minor {
                return Ok(mismatch(format!(
                    "its total {} is not the sum of its lines {total}",
                    week.total_minor
                )));
            }
        }
        Ok(Verified::Ok {
            entries,
            statements: stored.len() as u64,
        })
    }
}

/// Facts as the statement functions take them.
fn dated(facts: &[DatedFact]) -> impl Iterator<Item = (&str, i64, &MoneyFact)> {
    facts.iter().map(|f| (f.person.as_str(), f.at, &f.fact))
}

/// Everyone's lots after `facts` (in time order).
fn opening_lots(facts: &[DatedFact]) -> BTreeMap<String, Lots> {
    let mut lots: BTreeMap<String, Lots> = BTreeMap::new();
    for f in facts {
        lots.entry(f.person.clone()).or_default().apply(&f.fact);
    }
    lots
}

/// Where stored and recomputed lines first differ (person by person).
fn first_difference(stored: &[StatementRow], recomputed: &[StatementRow]) -> Option<String> {
    let mut stored: Vec<&StatementRow> = stored.iter().collect();
    let mut recomputed: Vec<&StatementRow> = recomputed.iter().collect();
    stored.sort_by(|a, b| a.person.cmp(&b.person));
    recomputed.sort_by(|a, b| a.person.cmp(&b.person));
    for (s, r) in stored.iter().zip(&recomputed) {
        if s.person != r.person {
            return Some(format!(
                "{} has a line the entries do not give (or {} lacks one)",
                s.person, r.person
            ));
        }
        if s != r {
            return Some(format!(
                "{}'s line does not match the entries (stored closing {}, recomputed {}; stored paid {} ({} minor), recomputed {} ({} minor))",
                s.person, s.closing, r.closing, s.paid, s.amount_minor, r.paid, r.amount_minor
            ));
        }
    }
    if stored.len() != recomputed.len() {
        return Some(format!(
            "{} lines stored, {} recomputed from the entries",
            stored.len(),
            recomputed.len()
        ));
    }
    None
}

fn to_row(week: &str, l: &StatementLine) -> StatementRow {
    StatementRow {
        week: week.to_string(),
        person: l.person.clone(),
        opening: l.opening,
        vested: l.vested,
        clawed_back: l.clawed_back,
        corrections: l.corrections,
        redeemed: l.redeemed,
        paid: l.paid,
        closing: l.closing,
        amount_minor: l.amount_minor,
        entries: serde_json::to_string(&l.entries).expect("entry ids serialise"),
    }
}

fn from_row(r: StatementRow) -> StatementLine {
    StatementLine {
        person: r.person,
        opening: r.opening,
        vested: r.vested,
        clawed_back: r.clawed_back,
        corrections: r.corrections,
        redeemed: r.redeemed,
        paid: r.paid,
        closing: r.closing,
        amount_minor: r.amount_minor,
        entries: serde_json::from_str::<LineEntries>(&r.entries).unwrap_or_default(),
    }
}
