//! The token ledger: applies what scoring makes of stored commits and signals
//! as append-only entries through the store, and reads balances back.
//!
//! [`Ledger::settle`] is one pass over everything: it loads commits, signals,
//! pull request heads and the entries made so far, plans each commit
//! ([`plan::plan_commit`]) and appends what is missing. A pass changes nothing
//! when nothing changed, whatever the order signals arrived in, and two passes
//! at once (two replicas) append each entry once: entries have unique keys.
//!
//! Each commit is scored under the rule set it first accrued under (kept in
//! `rule_sets` by version) until `replay --apply` moves it to the current rules.

mod estimate;
pub mod periods;
pub mod plan;
pub mod read;
pub mod redemption;
pub mod replay;
pub mod why;

#[cfg(test)]
mod properties;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono_tz::Tz;

use crate::scoring::balance::EntryKind;
use crate::scoring::calibration::{self, Observed};
use crate::scoring::change_set;
use crate::scoring::money::{FACTOR_ONE, FactorPpm, factor_ppm};
use crate::scoring::outcome::SignalFact;
use crate::scoring::proof::{self, UsageDays};
use crate::scoring::rules::Rules;
use crate::scoring::signal::{SignalName, SignalStatus};
use crate::scoring::similarity::Signature;
use crate::scoring::week::Week;
use crate::store::Store;
use crate::store::ledger::{NewEntry, StateRow};
use crate::store::scoring_inputs::{ScoringCommit, ScoringSignal};
use plan::{CommitInputs, Existing, Plan};

const DAY_MS: i64 = 86_400_000;
const WEEK_MS: i64 = 7 * DAY_MS;

/// How the ledger is configured.
#[derive(Clone)]
pub struct Ledger {
    store: Store,
    rules: Rules,
    version: String,
    tz: Tz,
    /// `scoring.pay_from` as epoch ms (else each repository's first-seen time).
    pay_from: Option<i64>,
    /// `[payout]`: how closes pay.
    payout: crate::config::PayoutConfig,
    /// One pass at a time in this process.
    settling: Arc<tokio::sync::Mutex<()>>,
    /// `usage.cache_read_weight`: a cache read's weight in verified usage.
    cache_read_weight: f64,
    /// `usage.window_hours`: how long before a commit its agent's usage backs it.
    usage_window_hours: u32,
}

/// What a pass did, and where its time went.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SettleReport {
    pub commits: usize,
    pub appended: u64,
    pub load: std::time::Duration,
    pub plan: std::time::Duration,
    pub total: std::time::Duration,
}

/// Everything a pass plans from, loaded once.
pub struct Snapshot {
    commits: Vec<ScoringCommit>,
    /// (repository id, full sha) → signals.
    signals: HashMap<(i64, String), Vec<SignalFact>>,
    /// commit id → its entries (without explanations).
    entries: HashMap<i64, Vec<StateRow>>,
    /// (repository id, pull request) → (head sha, merged at, merge commit sha).
    heads: HashMap<(i64, i64), MergedPullRequest>,
    /// (repository id, merge commit sha) → the pull request GitHub says it merged.
    merge_commits: HashMap<(i64, String), i64>,
    /// When each commit (by position) turned out bad: reverted, fixed later,
    /// a failed incident, force-pushed away.
    bad_at: Vec<Option<i64>>,
    /// Per repository, its commits' full ids sorted, while signals are added
    /// (to match abbreviated ids).
    sorted_shas: HashMap<i64, Vec<String>>,
}

/// A merged pull request as GitHub reported it.
struct MergedPullRequest {
    head: String,
    merged_at: i64,
    merge_sha: Option<String>,
}

/// Estimated similarity of added lines at which a change is a near-duplicate.
const NEAR_DUPLICATE: f64 = 0.8;

/// MinHash buckets larger than this are skipped (shared boilerplate).
const MAX_BUCKET: usize = 512;

/// Commits planned per batch of appended entries (bounds memory in a pass).
const PLAN_CHUNK: usize = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("stored rule set {0} cannot be read: {1}")]
    RuleSet(String, String),
}

impl crate::store::DatabaseFailure for LedgerError {
    fn is_unavailable(&self) -> bool {
        matches!(self, LedgerError::Store(e) if e.is_unavailable())
    }
    fn statement(&self) -> Option<&'static str> {
        match self {
            LedgerError::Store(e) => e.statement(),
            LedgerError::RuleSet(..) => None,
        }
    }
}

/// What planning a pass shares between commits.
struct PassContext {
    rule_sets: HashMap<String, Rules>,
    calibrations: CalibrationCache,
    duplicates: HashMap<i64, String>,
    /// commit id → its change set (when it has others).
    change_sets: HashMap<i64, plan::ChangeSet>,
    /// Score every commit under the current rules (replay).
    current_rules_for_all: bool,
    /// Plan as if the ledger were empty (the scratch ledger of a dry replay).
    scratch: bool,
    /// (person, week it landed) → the payout factor a vest records.
    landing_factors: HashMap<(String, Week), FactorPpm>,
    /// The commits (by position) whose vest waits for the next pass (their
    /// week had no entries yet).
    deferred_vests: Vec<usize>,
    /// Who reported usage when, when some rule set requires it.
    usage_days: Option<UsageDays>,
}

impl Ledger {
    pub fn new(store: Store, config: &crate::config::Config) -> Ledger {
        let tz = config
            .tz()
            .expect("the time zone is checked when config loads");
        let pay_from = config
            .scoring
            .pay_from
            .as_deref()
            .and_then(|t| crate::scoring::week::parse_time_in(t, tz));
        Ledger {
            store,
            version: config.scoring.version(),
            rules: config.scoring.clone(),
            tz,
            pay_from,
            payout: config.payout.clone(),
            settling: Default::default(),
            cache_read_weight: config.usage.cache_read_weight,
            usage_window_hours: config.usage.window_hours,
        }
    }

    /// Why `person`'s commit naming `agents` (a JSON array) is unverified:
    /// no usage of its agents by its author in the window before it; `None`
    /// when usage backs it.
    fn unverified_reason(
        &self,
        (person, agents): (&str, &str),
        committed_at: Option<i64>,
        landed_at: i64,
        days: &UsageDays,
    ) -> Option<String> {
        let agents: Vec<String> = serde_json::from_str(agents).unwrap_or_default();
        let window = proof::window_days(committed_at, landed_at, self.usage_window_hours, self.tz);
        proof::unverified_reason(&agents, &window, self.usage_window_hours, |agent, day| {
            days.has(person, agent, day)
        })
    }

    /// [`Ledger::unverified_reason`] of one stored commit, when the current
    /// rules require usage in its repository (the why page).
    pub async fn commit_unverified(
        &self,
        repository: &str,
        commit: &crate::store::commits::CommitRow,
    ) -> Result<Option<String>, LedgerError> {
        let Some(landed_at) = commit.landed_at.filter(|_| commit.ai == 1) else {
            return Ok(None);
        };
        if !self.rules.requires_usage(repository) {
            return Ok(None);
        }
        let window = proof::window_days(
            commit.committed_at,
            landed_at,
            self.usage_window_hours,
            self.tz,
        );
        let first = window.first().cloned().unwrap_or_default();
        let days = UsageDays::new(self.store.usage_days(&first, Some(&commit.person)).await?);
        Ok(self.unverified_reason(
            (&commit.person, &commit.agents),
            commit.committed_at,
            landed_at,
            &days,
        ))
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// The rule set of `version` as stored (the current rules for the current
    /// version, or for entries made before rule sets were kept).
    pub async fn rules_of(&self, version: &str) -> Result<Rules, LedgerError> {
        if version == self.version {
            return Ok(self.rules.clone());
        }
        match self.store.rule_set(version).await? {
            Some(json) => serde_json::from_str(&json)
                .map_err(|e| LedgerError::RuleSet(version.to_string(), e.to_string())),
            None => Ok(self.rules.clone()),
        }
    }

    pub fn tz(&self) -> Tz {
        self.tz
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Appends every entry the stored facts call for at `now` (see the module doc).
    pub async fn settle(&self, now: i64) -> Result<SettleReport, LedgerError> {
        self.apply(now, false).await
    }

    /// `replay --apply`: like [`Ledger::settle`], but every commit is scored
    /// under the current rules; compensating adjustments bring balances there.
    pub async fn replay_apply(&self, now: i64) -> Result<SettleReport, LedgerError> {
        self.apply(now, true).await
    }

    async fn apply(
        &self,
        now: i64,
        current_rules_for_all: bool,
    ) -> Result<SettleReport, LedgerError> {
        let _one = self.settling.lock().await;
        self.store
            .save_rule_set(&self.version, &canonical(&self.rules), now)
            .await?;
        let started = std::time::Instant::now();
        let mut report = SettleReport::default();
        let loaded_at = std::time::Instant::now();
        let mut snapshot = self.load(true).await?;
        report.load += loaded_at.elapsed();
        let mut ctx = self
            .context(&snapshot, current_rules_for_all, false)
            .await?;
        report.commits = snapshot.commits.len();
        let mut todo: Vec<usize> = (0..snapshot.commits.len()).collect();
        // A commit accrued in this pass that is due to vest vests in a second
        // pass: its payout factor needs its week's entries to be in. Only
        // those commits are planned again, from the facts already loaded
        // (facts that arrive meanwhile wake the next pass).
        for pass in 0..2 {
            if pass > 0 {
                let loaded_at = std::time::Instant::now();
                snapshot.entries = by_commit(self.store.ledger_state().await?);
                report.load += loaded_at.elapsed();
            }
            ctx.landing_factors = self.landing_factors(&snapshot, now).await?;
            for chunk in todo.chunks(PLAN_CHUNK) {
                let planned = std::time::Instant::now();
                let mut new = Vec::new();
                for &i in chunk {
                    let (plan, version) = self.plan_one(&snapshot, i, &mut ctx, now);
                    let commit = &snapshot.commits[i];
                    new.extend(
                        plan.entries
                            .iter()
                            .map(|e| to_new_entry(commit, e, &version)),
                    );
                }
                report.plan += planned.elapsed();
                report.appended += self.append_dated(new, now).await?;
            }
            if ctx.deferred_vests.is_empty() {
                break;
            }
            todo = std::mem::take(&mut ctx.deferred_vests);
        }
        report.total = started.elapsed();
        if report.appended > 0 {
            tracing::info!(
                appended = report.appended,
                commits = report.commits,
                load_ms = report.load.as_millis() as u64,
                plan_ms = report.plan.as_millis() as u64,
                total_ms = report.total.as_millis() as u64,
                "ledger settled"
            );
            // Entries may have gone into a week whose close is due.
            drop(_one);
            self.close_due(now).await?;
        }
        Ok(report)
    }

    /// Appends `entries`, dating any that would fall into a closed week at the
    /// start of the oldest open week instead (`corrects` says which week).
    async fn append_dated(&self, entries: Vec<NewEntry>, now: i64) -> Result<u64, LedgerError> {
        if entries.is_empty() {
            return Ok(0);
        }
        loop {
            let period = self.period().await?;
            let dated: Vec<NewEntry> = entries
                .iter()
                .cloned()
                .map(|e| period.date(e, self.tz))
                .collect();
            match self
                .store
                .append_entries(&dated, now, period.last_closed.as_deref())
                .await?
            {
                crate::store::ledger::Appended::Done(n) => return Ok(n),
                // A week closed meanwhile: date them again.
                crate::store::ledger::Appended::PeriodMoved => continue,
            }
        }
    }

    /// The payout factor of each person's week in which a commit landed that
    /// may vest now and has no factor yet: (person, week) → ppm.
    async fn landing_factors(
        &self,
        snapshot: &Snapshot,
        now: i64,
    ) -> Result<HashMap<(String, Week), FactorPpm>, LedgerError> {
        let vesting = i64::from(self.rules.vesting_days) * DAY_MS;
        let mut weeks: std::collections::BTreeSet<Week> = Default::default();
        for c in &snapshot.commits {
            let Some(landed_at) = c.landed_at else {
                continue;
            };
            let has_vest = snapshot
                .entries
                .get(&c.id)
                .is_some_and(|es| es.iter().any(has_vest_factor));
            if c.ai == 1 && landed_at + vesting <= now && !has_vest {
                weeks.insert(Week::of(landed_at, self.tz));
            }
        }
        let mut factors = HashMap::new();
        for week in weeks {
            for line in self.person_weeks(week, &read::Scope::all()).await? {
                factors.insert((line.person, week), factor_ppm(line.payout_factor));
            }
        }
        Ok(factors)
    }
    /// `replay` without `--apply`: every commit's entries recomputed from
    /// nothing under the current rules (a scratch ledger, not stored), handed
    /// to `each` one by one.
    pub async fn replay_scratch_each(
        &self,
        now: i64,
        mut each: impl FnMut(NewEntry),
    ) -> Result<(), LedgerError> {
        // A scratch ledger starts empty: the entries made so far are not needed.
        let snapshot = self.load(false).await?;
        let mut ctx = self.context(&snapshot, true, true).await?;
        for i in 0..snapshot.commits.len() {
            let (plan, version) = self.plan_one(&snapshot, i, &mut ctx, now);
            let commit = &snapshot.commits[i];
            for e in &plan.entries {
                each(to_new_entry(commit, e, &version));
            }
        }
        Ok(())
    }

    /// Loads what a pass plans from (the entries made so far when `with_entries`).
    pub async fn load(&self, with_entries: bool) -> Result<Snapshot, LedgerError> {
        // At once, on separate connections (each database connection decodes
        // its rows on its own thread).
        let entries = async {
            if with_entries {
                self.store.ledger_state().await
            } else {
                Ok(Vec::new())
            }
        };
        let (commits, heads, entries) = tokio::try_join!(
            self.store.scoring_commits(),
            self.store.merged_pull_request_heads(),
            entries
        )?;
        let mut snapshot = Snapshot::new(commits, heads, entries);
        let mut interner = Interner::default();
        self.store
            .each_scoring_signal(|s| snapshot.add_signal(s, &mut interner))
            .await?;
        snapshot.finish();
        Ok(snapshot)
    }

    /// The rule sets commits are governed by, and what planning shares.
    async fn context(
        &self,
        snapshot: &Snapshot,
        current_rules_for_all: bool,
        scratch: bool,
    ) -> Result<PassContext, LedgerError> {
        let mut rule_sets: HashMap<String, Rules> = HashMap::new();
        rule_sets.insert(self.version.clone(), self.rules.clone());
        if !current_rules_for_all {
            for version in snapshot.governing_versions() {
                if rule_sets.contains_key(&version) {
                    continue;
                }
                let rules = match self.store.rule_set(&version).await? {
                    Some(json) => serde_json::from_str::<Rules>(&json)
                        .map_err(|e| LedgerError::RuleSet(version.clone(), e.to_string()))?,
                    // Entries made before rule sets were kept: the current rules.
                    None => self.rules.clone(),
                };
                rule_sets.insert(version, rules);
            }
        }
        let usage_days = if rule_sets.values().any(Rules::requires_usage_anywhere) {
            Some(UsageDays::new(self.store.usage_days("", None).await?))
        } else {
            None
        };
        Ok(PassContext {
            usage_days,
            rule_sets,
            calibrations: CalibrationCache::default(),
            duplicates: snapshot.duplicates(&self.rules),
            change_sets: snapshot.change_sets(&self.rules, self.pay_from),
            current_rules_for_all,
            scratch,
            landing_factors: HashMap::new(),
            deferred_vests: Vec::new(),
        })
    }

    /// Plans the commit at position `i` of the snapshot; returns the plan and
    /// the rule version it was made under.
    fn plan_one(
        &self,
        snapshot: &Snapshot,
        i: usize,
        ctx: &mut PassContext,
        now: i64,
    ) -> (Plan, String) {
        let commit = &snapshot.commits[i];
        let no_entries = Vec::new();
        let entries = if ctx.scratch {
            &no_entries
        } else {
            snapshot.entries.get(&commit.id).unwrap_or(&no_entries)
        };
        let version = if ctx.current_rules_for_all {
            self.version.clone()
        } else {
            governing_version(entries).unwrap_or_else(|| self.version.clone())
        };
        let rules = &ctx.rule_sets[&version];
        let mut inputs = snapshot.inputs(commit, self.pay_from, ctx.duplicates.get(&commit.id));
        inputs.change_set = ctx.change_sets.get(&commit.id).cloned();
        if let (Some(days), Some(landed_at), true) = (
            &ctx.usage_days,
            commit.landed_at,
            commit.ai == 1 && rules.requires_usage(&commit.repository),
        ) {
            inputs.unverified = self.unverified_reason(
                (&commit.person, &commit.agents),
                commit.committed_at,
                landed_at,
                days,
            );
        }
        let (factor, label) = match inputs.landed_at.map(|t| Week::of(t, self.tz)) {
            Some(week) => {
                let table = ctx
                    .calibrations
                    .get(snapshot, week, self.tz, &version, rules);
                (calibration::factor(table, &commit.kind), week.label())
            }
            None => (1.0, String::new()),
        };
        let existing: Vec<Existing> = entries
            .iter()
            .map(|e| Existing {
                kind: e.kind,
                amount: e.amount,
                at: e.at,
                key: e.idempotency_key.clone(),
                factor_ppm: e.payout_factor_ppm,
            })
            .collect();
        // The payout factor of the week it landed (its hygiene then); a
        // scratch replay has no entries to read it from: factor 1.
        let landing_factor = match inputs.landed_at.map(|t| Week::of(t, self.tz)) {
            _ if ctx.scratch => Some(FACTOR_ONE),
            // A vest was booked: its factor holds for every later vest entry.
            _ if entries.iter().any(has_vest_factor) => Some(FACTOR_ONE),
            Some(week) => ctx
                .landing_factors
                .get(&(commit.person.clone(), week))
                .copied(),
            None => Some(FACTOR_ONE),
        };
        let plan = match landing_factor {
            Some(f) => plan::plan_commit(
                &inputs,
                (factor, &label),
                f,
                &existing,
                rules,
                &version,
                now,
            ),
            None => {
                // Its week's entries are not in yet: everything but the vest now.
                let plan = plan::plan_commit(
                    &inputs,
                    (factor, &label),
                    FACTOR_ONE,
                    &existing,
                    rules,
                    &version,
                    now,
                );
                let vests = plan.entries.iter().any(|e| e.kind == EntryKind::Vest);
                if vests {
                    ctx.deferred_vests.push(i);
                }
                plan::Plan {
                    entries: plan
                        .entries
                        .into_iter()
                        .filter(|e| e.kind != EntryKind::Vest)
                        .collect(),
                    ..plan
                }
            }
        };
        (plan, version)
    }

    /// The calibration table of `week` under the current rules (for the weekly job).
    pub async fn calibration_of(&self, week: Week) -> Result<BTreeMap<String, f64>, LedgerError> {
        let snapshot = self.load(false).await?;
        let mut cache = CalibrationCache::default();
        Ok(cache
            .get(&snapshot, week, self.tz, &self.version, &self.rules)
            .clone())
    }
}

/// Entries grouped by their commit.
fn by_commit(entries: Vec<StateRow>) -> HashMap<i64, Vec<StateRow>> {
    let mut out: HashMap<i64, Vec<StateRow>> = HashMap::new();
    for e in entries {
        out.entry(e.commit_id).or_default().push(e);
    }
    out
}

/// A vest that recorded its payout factor (later vest entries of its commit use it).
fn has_vest_factor(e: &StateRow) -> bool {
    e.kind == EntryKind::Vest && e.payout_factor_ppm.is_some()
}

/// The rule version of a commit's latest earning entry: the rules it is scored under.
fn governing_version(entries: &[StateRow]) -> Option<String> {
    entries
        .iter()
        .rev()
        .find(|e| e.kind.is_earning())
        .map(|e| e.rules_version.clone())
}

fn canonical(rules: &Rules) -> String {
    serde_json::to_string(rules).expect("rules serialise")
}

fn to_new_entry(commit: &ScoringCommit, e: &plan::Planned, version: &str) -> NewEntry {
    NewEntry {
        person: commit.person.clone(),
        kind: e.kind,
        repository_id: Some(commit.repository_id),
        commit_id: Some(commit.id),
        sha: Some(commit.sha.clone()),
        amount: e.amount,
        rules_version: version.to_string(),
        at: e.at,
        landed_at: commit.landed_at,
        idempotency_key: e.key.clone(),
        explanation: e.explanation.clone(),
        corrects: None,
        payout_factor_ppm: e.factor_ppm,
        money_minor: None,
    }
}

/// One copy of each of the few distinct signal names, statuses, sources and
/// contexts (hundreds of thousands of signals share them).
#[derive(Default)]
struct Interner(std::collections::HashSet<Arc<str>>);

impl Interner {
    fn get(&mut self, text: String) -> Arc<str> {
        if let Some(known) = self.0.get(text.as_str()) {
            return known.clone();
        }
        let new: Arc<str> = text.into();
        self.0.insert(new.clone());
        new
    }
}

impl Snapshot {
    fn new(
        commits: Vec<ScoringCommit>,
        heads: Vec<(i64, i64, String, i64, Option<String>)>,
        entries: Vec<StateRow>,
    ) -> Snapshot {
        let mut sorted_shas: HashMap<i64, Vec<String>> = HashMap::new();
        for c in &commits {
            sorted_shas
                .entry(c.repository_id)
                .or_default()
                .push(c.sha.clone());
        }
        for list in sorted_shas.values_mut() {
            list.sort_unstable();
        }
        let heads: HashMap<(i64, i64), MergedPullRequest> = heads
            .into_iter()
            .map(|(repo, number, head, merged_at, merge_sha)| {
                let merged = MergedPullRequest {
                    head,
                    merged_at,
                    merge_sha,
                };
                ((repo, number), merged)
            })
            .collect();
        let merge_commits = heads
            .iter()
            .filter_map(|((repo, number), pr)| Some(((*repo, pr.merge_sha.clone()?), *number)))
            .collect();
        Snapshot {
            bad_at: Vec::new(),
            merge_commits,
            commits,
            signals: HashMap::new(),
            entries: by_commit(entries),
            heads,
            sorted_shas,
        }
    }

    /// Files a signal under the full id of the commit it names (an abbreviated
    /// id that matches exactly one commit of its repository is that commit).
    fn add_signal(&mut self, s: ScoringSignal, interner: &mut Interner) {
        let full = match self.sorted_shas.get(&s.repository_id) {
            Some(list) if s.sha.len() < 40 => {
                let start = list.partition_point(|sha| sha.as_str() < s.sha.as_str());
                let mut matching = list[start..]
                    .iter()
                    .take_while(|sha| sha.starts_with(&s.sha))
                    .take(2);
                match (matching.next(), matching.next()) {
                    (Some(one), None) => one.clone(),
                    _ => s.sha,
                }
            }
            _ => s.sha,
        };
        self.signals
            .entry((s.repository_id, full))
            .or_default()
            .push(SignalFact {
                name: s.name,
                status: s.status,
                source: interner.get(s.source),
                context: interner.get(s.context.unwrap_or_default()),
                attempt: s.attempt,
                occurred_at: s.occurred_at,
                value: s.value,
            });
    }

    /// After the last signal: when each commit turned out bad.
    fn finish(&mut self) {
        self.sorted_shas = HashMap::new();
        let bad_at: Vec<Option<i64>> = self
            .commits
            .iter()
            .map(|c| {
                let from_signals = self
                    .signals
                    .get(&(c.repository_id, c.sha.clone()))
                    .into_iter()
                    .flatten()
                    .filter(|s| {
                        s.name.is_reserved()
                            || (s.name == SignalName::Incident && s.status == SignalStatus::Fail)
                    })
                    .map(|s| s.occurred_at)
                    .min();
                from_signals.into_iter().chain(c.unlanded_at).min()
            })
            .collect();
        self.bad_at = bad_at;
    }

    fn governing_versions(&self) -> Vec<String> {
        let mut versions: Vec<String> = self
            .entries
            .values()
            .filter_map(|e| governing_version(e))
            .collect();
        versions.sort();
        versions.dedup();
        versions
    }

    /// The merged pull request GitHub says `c` belongs to: it is the pull
    /// request's merge commit, one of its commits (seen on its head ref), or
    /// brought in by the merge commit GitHub names. A `(#N)` in a subject
    /// alone borrows nothing.
    fn merged_pull_request(&self, c: &ScoringCommit) -> Option<(i64, &MergedPullRequest)> {
        let number = c.pull_request.or_else(|| {
            self.merge_commits
                .get(&(c.repository_id, c.sha.clone()))
                .copied()
        })?;
        let pr = self.heads.get(&(c.repository_id, number))?;
        let merge_sha = pr.merge_sha.as_deref();
        let said_by_github = merge_sha == Some(c.sha.as_str())
            || match c.pull_request_via.as_deref() {
                Some("branch") => true,
                Some(via) => via
                    .strip_prefix("merge:")
                    .is_some_and(|merge| Some(merge) == merge_sha),
                None => false,
            };
        said_by_github.then_some((number, pr))
    }

    /// commit id → its change set, for paid AI commits that share one with others.
    fn change_sets(&self, rules: &Rules, pay_from: Option<i64>) -> HashMap<i64, plan::ChangeSet> {
        let paid: Vec<&ScoringCommit> = self
            .commits
            .iter()
            .filter(|c| {
                c.ai == 1
                    && c.unlanded_at.is_none()
                    && c.landed_at
                        .is_some_and(|t| t >= pay_from.unwrap_or(c.repository_first_seen))
            })
            .collect();
        let landed: Vec<change_set::Landed<'_>> = paid
            .iter()
            .map(|c| change_set::Landed {
                person: &c.person,
                landed_at: c.landed_at.unwrap_or_default(),
                files: c
                    .files
                    .as_deref()
                    .and_then(|f| serde_json::from_str::<Vec<String>>(f).ok())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|f| format!("{}:{f}", c.repository_id))
                    .collect(),
                pull_request: self
                    .merged_pull_request(c)
                    .map(|(number, _)| (c.repository_id, number)),
            })
            .collect();
        let window = i64::from(rules.change_set_hours) * 3_600_000;
        let mut out = HashMap::new();
        for set in change_set::change_sets(&landed, window) {
            let members: Vec<plan::ChangeSetMember> = set
                .iter()
                .map(|&i| plan::ChangeSetMember {
                    sha: paid[i].sha[..paid[i].sha.len().min(12)].to_string(),
                    landed_at: landed[i].landed_at,
                    lines: paid[i].changed_lines.max(0) as u64,
                })
                .collect();
            for &i in &set {
                out.insert(
                    paid[i].id,
                    plan::ChangeSet {
                        members: members.clone(),
                    },
                );
            }
        }
        out
    }

    /// commit id → the earlier commit with the same patch, for AI commits whose
    /// patch landed already within `duplicate_days` before (any repository),
    /// or a near-duplicate: added lines whose MinHash similarity with an
    /// earlier landed change's is at least [`NEAR_DUPLICATE`].
    fn duplicates(&self, rules: &Rules) -> HashMap<i64, String> {
        let window = i64::from(rules.hygiene.duplicate_days) * DAY_MS;
        let mut by_patch: HashMap<&str, Vec<&ScoringCommit>> = HashMap::new();
        for c in &self.commits {
            if let (Some(patch), Some(_)) = (c.patch_id.as_deref(), c.landed_at) {
                by_patch.entry(patch).or_default().push(c);
            }
        }
        let mut out = HashMap::new();
        for group in by_patch.values_mut().filter(|g| g.len() > 1) {
            group.sort_by_key(|c| (c.landed_at, c.id));
            for pair in group.windows(2) {
                let (first, next) = (pair[0], pair[1]);
                if next.ai == 1
                    && next.landed_at.unwrap_or(0) - first.landed_at.unwrap_or(0) <= window
                {
                    out.insert(next.id, first.sha.clone());
                }
            }
        }
        self.near_duplicates(window, &mut out);
        out
    }

    /// Adds each AI commit whose added lines nearly repeat an earlier landed
    /// change's (inside `window`) to `out`. Candidates come from shared
    /// MinHash bands; each is confirmed on the whole signature.
    fn near_duplicates(&self, window: i64, out: &mut HashMap<i64, String>) {
        let signed: Vec<(&ScoringCommit, Signature)> = self
            .commits
            .iter()
            .filter(|c| c.landed_at.is_some())
            .filter_map(|c| Some((c, Signature::from_hex(c.minhash.as_deref()?)?)))
            .collect();
        let mut buckets: HashMap<(u8, u64), Vec<usize>> = HashMap::new();
        for (i, (_, sig)) in signed.iter().enumerate() {
            for band in sig.bands() {
                buckets.entry(band).or_default().push(i);
            }
        }
        for (c, sig) in signed.iter().filter(|(c, _)| c.ai == 1) {
            if out.contains_key(&c.id) {
                continue;
            }
            let landed = c.landed_at.unwrap_or_default();
            let earlier = |o: &ScoringCommit| {
                let t = o.landed_at.unwrap_or_default();
                (t, o.id) < (landed, c.id) && landed - t <= window
            };
            let mut best: Option<(i64, i64, &str)> = None;
            for band in sig.bands() {
                // A huge bucket is boilerplate every change shares: no evidence.
                let Some(list) = buckets.get(&band).filter(|l| l.len() <= MAX_BUCKET) else {
                    continue;
                };
                for &j in list {
                    let (other, other_sig) = &signed[j];
                    if earlier(other) && sig.similarity(other_sig) >= NEAR_DUPLICATE {
                        let key = (
                            other.landed_at.unwrap_or_default(),
                            other.id,
                            other.sha.as_str(),
                        );
                        if best.is_none_or(|b| key < b) {
                            best = Some(key);
                        }
                    }
                }
            }
            if let Some((_, _, sha)) = best {
                out.insert(c.id, sha.to_string());
            }
        }
    }

    fn inputs(
        &self,
        c: &ScoringCommit,
        pay_from: Option<i64>,
        duplicate_of: Option<&String>,
    ) -> CommitInputs {
        let signals = self
            .signals
            .get(&(c.repository_id, c.sha.clone()))
            .cloned()
            .unwrap_or_default();
        let pull_request_head = self
            .merged_pull_request(c)
            .map(|(_, pr)| (&pr.head, &pr.merged_at))
            .filter(|(head, _)| **head != c.sha)
            .map(|(head, merged_at)| {
                let ci = self
                    .signals
                    .get(&(c.repository_id, head.clone()))
                    .map(|s| {
                        s.iter()
                            .filter(|s| s.name == SignalName::Ci)
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                (head.clone(), *merged_at, ci)
            });
        CommitInputs {
            commit_id: c.id,
            ai: c.ai == 1,
            kind: c.kind.clone(),
            detected_kind: c.detected_kind.clone(),
            changed_lines: c.changed_lines.max(0) as u64,
            formatting_only: c.formatting_only == 1,
            change_set: None,
            usage_tokens: c.usage_tokens.map(|n| n.max(0) as u64),
            landed_at: c.landed_at,
            unlanded_at: c.unlanded_at,
            pay_from: pay_from.unwrap_or(c.repository_first_seen),
            duplicate_of: duplicate_of.cloned(),
            signals,
            pull_request_head,
            unverified: None,
        }
    }
}

/// Calibration tables by (week, rule version), computed once per pass.
#[derive(Default)]
struct CalibrationCache {
    tables: HashMap<(Week, String), BTreeMap<String, f64>>,
}

impl CalibrationCache {
    /// Calibration for commits landing in `week`: per kind, over AI commits
    /// (baseline history included) that landed in the `window_weeks` before it
    /// and had vested by its start; good = not reverted, fixed or clawed back by then.
    fn get(
        &mut self,
        snapshot: &Snapshot,
        week: Week,
        tz: Tz,
        version: &str,
        rules: &Rules,
    ) -> &BTreeMap<String, f64> {
        self.tables
            .entry((week, version.to_string()))
            .or_insert_with(|| {
                let (start, _) = week.bounds(tz);
                let from = start - i64::from(rules.calibration.window_weeks) * WEEK_MS;
                let vesting = i64::from(rules.vesting_days) * DAY_MS;
                let observed: Vec<Observed> = snapshot
                    .commits
                    .iter()
                    .zip(&snapshot.bad_at)
                    .filter(|(c, _)| c.ai == 1)
                    .filter_map(|(c, bad_at)| {
                        let landed = c.landed_at?;
                        (landed >= from && landed + vesting <= start).then(|| Observed {
                            kind: c.kind.clone(),
                            good: bad_at.is_none_or(|t| t >= start),
                        })
                    })
                    .collect();
                calibration::calibrate(&observed, rules)
            })
    }
}
