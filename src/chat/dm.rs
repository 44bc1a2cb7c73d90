//! DMs (`discord.dm`): after a settle pass, one message per person whose
//! tokens vested, were taken back or were paid in it — batched, never one per
//! entry — planned once across replicas (the outbox's cursor) and sent once
//! (a lease per row), waiting out Discord's 429s. `[[people]] dm = false`
//! opts out; people without a Discord id get none.

use std::collections::BTreeMap;
use std::time::Duration;

use serenity::http::{LightMethod, Route};
use serenity::model::id::ChannelId;

use super::Chat;
use crate::digest::discord::escape;
use crate::ledger::LedgerError;
use crate::notify::discord::Called;
use crate::store::dms::{DmEntry, NewDm};

/// How long one replica holds a DM while sending it.
const LEASE_MS: i64 = 60_000;
/// Attempts before a DM is given up.
const MAX_ATTEMPTS: i64 = 8;

/// The DM's text for one person's entries of a pass.
pub fn body(person: &str, entries: &[&DmEntry], available: i64, currency: &str) -> String {
    let mut vested = 0;
    let mut taken = 0;
    let mut paid = 0;
    let mut money = 0;
    let mut commits = (0, 0);
    for e in entries {
        match e.kind.as_str() {
            "vest" => {
                vested += e.amount;
                commits.0 += usize::from(e.amount > 0);
            }
            "clawback" | "cancel" => {
                taken += e.amount;
                commits.1 += usize::from(e.amount < 0);
            }
            "payout" => {
                paid -= e.amount;
                money += e.money_minor.unwrap_or(0);
            }
            _ => {}
        }
    }
    let t = |m: i64| format!("{:.3}", m as f64 / 1000.0);
    let mut lines = vec![format!(
        "Hi {}, here is what happened to your tokens:",
        escape(&crate::attribution::identity::public_name(person))
    )];
    if vested != 0 {
        lines.push(format!(
            "• {} tokens vested ({} commits)",
            t(vested),
            commits.0
        ));
    }
    if taken != 0 {
        lines.push(format!(
            "• {} tokens taken back ({} commits reverted or fixed)",
            t(-taken),
            commits.1
        ));
    }
    if paid != 0 {
        lines.push(format!(
            "• {} tokens paid: {}",
            t(paid),
            crate::digest::money(money, currency)
        ));
    }
    lines.push(format!(
        "Available now: {} tokens. `/tokens` shows the rest.",
        t(available)
    ));
    lines.join("\n")
}

/// Plans the DMs of the entries since the last plan. Returns how many.
pub async fn plan(chat: &Chat) -> Result<usize, LedgerError> {
    let store = chat.ledger.store();
    let cursor = store.dm_cursor().await?;
    let (entries, last) = store.dm_entries_after(cursor.unwrap_or(i64::MAX)).await?;
    let now = chat.clock.now_ms();
    let Some(from) = cursor else {
        // The first plan starts here: no DMs for history.
        store.plan_dms(None, last, &[], now).await?;
        return Ok(0);
    };
    if last <= from {
        return Ok(0);
    }
    let mut by_person: BTreeMap<&str, Vec<&DmEntry>> = BTreeMap::new();
    for e in &entries {
        by_person.entry(&e.person).or_default().push(e);
    }
    let mut dms = Vec::new();
    if chat.config.discord.dm {
        for (person, list) in by_person {
            let Some(config) = chat.config.people.iter().find(|p| p.name == person && p.dm) else {
                continue;
            };
            let Some(discord_id) = &config.discord else {
                continue;
            };
            let available = chat.ledger.balance(person).await?.available;
            dms.push(NewDm {
                person: person.to_string(),
                discord_id: discord_id.clone(),
                body: body(person, &list, available, &chat.config.payout.currency),
            });
        }
    }
    let n = dms.len();
    Ok(if store.plan_dms(Some(from), last, &dms, now).await? {
        n
    } else {
        0
    })
}

/// Sends the due DMs. Returns how many were sent.
pub async fn send_due(chat: &Chat, owner: &str) -> Result<usize, LedgerError> {
    let Some(authorization) = chat.bot_authorization() else {
        return Ok(0);
    };
    let store = chat.ledger.store();
    let mut sent = 0;
    while let Some(dm) = store.claim_dm(owner, chat.clock.now_ms(), LEASE_MS).await? {
        let outcome = send(chat, &authorization, &dm.discord_id, &dm.body).await;
        let now = chat.clock.now_ms();
        match outcome {
            Called::Done(_) => {
                store.finish_dm(dm.id, "sent", None, None, now).await?;
                sent += 1;
            }
            Called::Retry { after, error } if dm.attempts < MAX_ATTEMPTS => {
                let at = now + i64::try_from(after.as_millis()).unwrap_or(i64::MAX / 2);
                store
                    .finish_dm(dm.id, "pending", Some(at), Some(&error), now)
                    .await?;
                // Rate limited for a while: the rest waits for the next pass.
                if after > Duration::from_secs(1) {
                    break;
                }
            }
            Called::Retry { error, .. } | Called::Rejected(error) => {
                tracing::warn!(person = %dm.person, error = %error, "a DM could not be sent");
                store
                    .finish_dm(dm.id, "failed", None, Some(&error), now)
                    .await?;
            }
        }
    }
    Ok(sent)
}

/// Opens the DM channel with `user` and posts `body` in it.
async fn send(chat: &Chat, authorization: &str, user: &str, body: &str) -> Called {
    let channel = serde_json::json!({"recipient_id": user});
    let channel = match chat
        .client
        .call(
            LightMethod::Post,
            Route::UserMeDmChannels,
            Some(&channel),
            authorization,
        )
        .await
    {
        Called::Done(answer) => answer["id"].as_str().and_then(|id| id.parse::<u64>().ok()),
        other => return other,
    };
    let Some(channel) = channel else {
        return Called::Rejected("Discord opened no DM channel".into());
    };
    let message = serde_json::json!({"content": body, "allowed_mentions": {"parse": []}});
    chat.client
        .call(
            LightMethod::Post,
            Route::ChannelMessages {
                channel_id: ChannelId::new(channel),
            },
            Some(&message),
            authorization,
        )
        .await
}

/// After a settle pass: plans the pass's DMs and sends what is due.
pub async fn deliver(chat: &Chat, owner: &str) {
    if let Err(e) = plan(chat).await {
        tracing::error!(error = %e, "DMs could not be planned; the next pass plans them");
        return;
    }
    if chat.config.discord.dm
        && let Err(e) = send_due(chat, owner).await
    {
        tracing::error!(error = %e, "DMs could not be sent; the next pass tries again");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, amount: i64, money: Option<i64>) -> DmEntry {
        DmEntry {
            id: 1,
            person: "ada".into(),
            kind: kind.into(),
            amount,
            money_minor: money,
        }
    }

    #[test]
    fn one_message_for_a_pass() {
        let e = [
            entry("vest", 5_948, None),
            entry("vest", 1_000, None),
            entry("cancel", -2_000, None),
            entry("payout", -6_948, Some(695)),
        ];
        let list: Vec<&DmEntry> = e.iter().collect();
        let text = body("ada_*", &list, 0, "USD");
        assert_eq!(
            text,
            "Hi ada\\_\\*, here is what happened to your tokens:\n\
             • 6.948 tokens vested (2 commits)\n\
             • 2.000 tokens taken back (1 commits reverted or fixed)\n\
             • 6.948 tokens paid: $6.95\n\
             Available now: 0.000 tokens. `/tokens` shows the rest."
        );
    }
}
