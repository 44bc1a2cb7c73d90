//! Checks of the configuration that need more than a type: URLs, globs, time
//! zones, schedules, limits, and that names refer to something.

use std::collections::BTreeMap;

use super::{Config, ConfigError};
use crate::attribution::paths::PathRules;
use crate::github::outcomes::{CONCLUSIONS, CiRules};

impl Config {
    pub(super) fn validate(&self, from_env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: &str| ConfigError::Invalid {
            key: key.to_string(),
            origin: origin(from_env, key),
            message: message.to_string(),
        };
        let url = self.database_url.as_str();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database_url",
                "must start with sqlite: or postgres:// (for example sqlite://tokentally.db)",
            ));
        }
        if self
            .github
            .webhook_secrets
            .iter()
            .any(|s| s.expose().trim().is_empty())
        {
            return Err(invalid(
                "github.webhook_secrets",
                "a secret must not be empty",
            ));
        }
        for pattern in &self.github.repositories {
            if let Some(why) = crate::github::repositories::invalid_pattern(pattern) {
                return Err(invalid(
                    "github.repositories",
                    &format!("{pattern:?}: {why}"),
                ));
            }
        }
        let [min, max] = self.signals.value_range;
        if !(min.is_finite() && max.is_finite() && min <= max) {
            return Err(invalid(
                "signals.value_range",
                "must be [min, max] with finite numbers and min ≤ max",
            ));
        }
        if let Err(err) = CiRules::new(&self.signals.ci) {
            return Err(invalid("signals.ci", &err.to_string()));
        }
        let ci = &self.signals.ci;
        for (list, names) in [
            ("pass", &ci.pass),
            ("fail", &ci.fail),
            ("neutral", &ci.neutral),
        ] {
            if let Some(name) = names.iter().find(|n| !CONCLUSIONS.contains(&n.as_str())) {
                return Err(invalid(
                    &format!("signals.ci.{list}"),
                    &format!(
                        "{name:?} is not a conclusion GitHub sends (those are: {})",
                        CONCLUSIONS.join(", ")
                    ),
                ));
            }
        }
        if let Err(err) = tracing_subscriber::EnvFilter::try_new(&self.log) {
            return Err(invalid(
                "log",
                &format!(
                    "{:?} is not a log filter ({err}); examples: info, warn, info,tokentally=debug",
                    self.log
                ),
            ));
        }
        if let Err(err) = PathRules::new(&self.attribution.paths) {
            return Err(invalid("attribution.paths", &err.to_string()));
        }
        for (i, agent) in self.agents.iter().enumerate() {
            if agent.name.trim().is_empty() || agent.emails.is_empty() {
                return Err(invalid(
                    &format!("agents[{i}]"),
                    "an agent needs a name and at least one email pattern",
                ));
            }
        }
        for (i, person) in self.people.iter().enumerate() {
            if let Some(why) = crate::attribution::identity::invalid_person_name(&person.name) {
                return Err(invalid(&format!("people[{i}].name"), why));
            }
        }
        if let Some(problem) = self.scoring.problem() {
            return Err(invalid("scoring", &problem));
        }
        let tz = self.tz().map_err(|m| invalid("timezone", &m))?;
        if let Some(text) = &self.scoring.pay_from
            && crate::scoring::week::parse_time_in(text, tz).is_none()
        {
            return Err(invalid(
                "scoring.pay_from",
                &format!("{text:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"),
            ));
        }
        for (key, expression) in [
            ("schedules.vesting", &self.schedules.vesting),
            ("schedules.calibration", &self.schedules.calibration),
            ("schedules.hygiene", &self.schedules.hygiene),
            ("schedules.close", &self.schedules.close),
        ] {
            if let Err(e) = super::parse_cron(expression) {
                return Err(invalid(key, &e));
            }
        }
        let p = &self.payout;
        if p.rate.is_sign_negative() || p.weekly_pool.is_sign_negative() {
            return Err(invalid(
                "payout",
                "rate and weekly_pool must be numbers ≥ 0",
            ));
        }
        if p.pto_hours_per_token
            .is_some_and(|h| !(h.is_finite() && h >= 0.0))
        {
            return Err(invalid(
                "payout.pto_hours_per_token",
                "must be a number ≥ 0",
            ));
        }
        if p.currency.len() != 3
            || !p.currency.bytes().all(|b| b.is_ascii_uppercase())
            || crate::scoring::money::exponent(&p.currency).is_none()
        {
            return Err(invalid(
                "payout.currency",
                "must be an ISO 4217 code such as USD, EUR or JPY",
            ));
        }
        let d = &self.discord;
        if let Some(key) = &d.public_key {
            let valid = hex::decode(key.trim())
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .is_some_and(|bytes| {
                    serenity::interactions_endpoint::Verifier::try_new(bytes).is_ok()
                });
            if !valid {
                return Err(invalid(
                    "discord.public_key",
                    "must be the application's public key: 64 hex digits (Developer Portal, General Information)",
                ));
            }
        }
        let snowflake =
            |v: &str| !v.is_empty() && v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit());
        for (key, value) in [
            ("discord.application_id", &d.application_id),
            ("discord.guild_id", &d.guild_id),
        ] {
            if value.as_deref().is_some_and(|v| !snowflake(v)) {
                return Err(invalid(key, "must be a Discord id (digits)"));
            }
        }
        if let Some(role) = d.redeem_roles.iter().find(|r| !snowflake(r)) {
            return Err(invalid(
                "discord.redeem_roles",
                &format!("{role:?} is not a Discord role id (digits)"),
            ));
        }
        if d.interactions_per_minute == 0 {
            return Err(invalid(
                "discord.interactions_per_minute",
                "must be at least 1",
            ));
        }
        let kinds: Vec<&str> = crate::attribution::kind::Kind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect();
        if let Some(kind) = self
            .scoring
            .tiers
            .keys()
            .find(|k| !kinds.contains(&k.as_str()))
        {
            return Err(invalid(
                "scoring.tiers",
                &format!("{kind:?} is not a kind (those are: {})", kinds.join(", ")),
            ));
        }
        if self.usage.rate_limit_per_minute == 0 {
            return Err(invalid("usage.rate_limit_per_minute", "must be at least 1"));
        }
        if self.api.rate_limit_per_minute == 0 {
            return Err(invalid("api.rate_limit_per_minute", "must be at least 1"));
        }
        if self.worker.max_attempts == 0 {
            return Err(invalid("worker.max_attempts", "must be at least 1"));
        }
        if self.worker.lease_seconds == 0 {
            return Err(invalid("worker.lease_seconds", "must be at least 1"));
        }
        if self.worker.poll_interval_ms == 0 {
            return Err(invalid("worker.poll_interval_ms", "must be at least 1"));
        }
        let at_least_one = [
            ("worker.concurrency", self.worker.concurrency as u64),
            (
                "worker.delivery_timeout_seconds",
                self.worker.delivery_timeout_seconds,
            ),
            (
                "mirrors.connect_timeout_seconds",
                self.mirrors.connect_timeout_seconds,
            ),
            ("mirrors.timeout_seconds", self.mirrors.timeout_seconds),
            (
                "http.header_timeout_seconds",
                self.http.header_timeout_seconds,
            ),
            ("http.body_timeout_seconds", self.http.body_timeout_seconds),
            ("http.max_connections", self.http.max_connections as u64),
            ("http.max_large_bodies", self.http.max_large_bodies as u64),
            (
                "database.acquire_timeout_ms",
                self.database.acquire_timeout_ms,
            ),
            (
                "database.max_connections",
                u64::from(self.database.max_connections),
            ),
        ];
        for (key, value) in at_least_one {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        for remote in &self.mirrors.allowed_remotes {
            if remote.trim().is_empty() || remote.chars().any(char::is_whitespace) {
                return Err(invalid(
                    "mirrors.allowed_remotes",
                    "an entry must be a URL prefix such as https://github.com/ or file:///srv/git/",
                ));
            }
        }
        self.validate_output(&invalid)?;
        let api = self.github.api_url.as_str();
        if !(api.starts_with("https://") || api.starts_with("http://")) {
            return Err(invalid(
                "github.api_url",
                "must be an http(s) URL such as https://api.github.com",
            ));
        }
        Ok(())
    }
}

/// ` (from TOKENTALLY_…)` when `key` came from the environment.
pub(super) fn origin(from_env: &BTreeMap<String, String>, key: &str) -> String {
    from_env
        .iter()
        .find(|(k, _)| key == k.as_str() || key.starts_with(&format!("{k}[")))
        .map(|(_, var)| format!(" (from {var})"))
        .unwrap_or_default()
}
