//! The slash commands: their definitions (what `tokentally discord register`
//! sends) and their answers, read from the same ledger as the dashboard.

use serenity::all::CommandOptionType;
use serenity::builder::{CreateCommand, CreateCommandOption, CreateEmbed, CreateEmbedFooter};

use super::Chat;
use super::interaction::{APPLICATION_COMMAND, Button, Interaction, MESSAGE_COMPONENT, Reply};
use crate::digest::discord::{create_embeds, cut, escape};
use crate::ledger::LedgerError;
use crate::ledger::why::{Found, explain};
use crate::scoring::leaderboard::RankBy;
use crate::scoring::week::Week;
use crate::store::ledger::Redemption;

/// The commands, as Discord is told about them.
pub fn definitions() -> Vec<CreateCommand> {
    vec![
        CreateCommand::new("tokens")
            .description(
                "Your tokens: this week, pending with vest dates, available, rank, hygiene",
            )
            .add_option(CreateCommandOption::new(
                CommandOptionType::String,
                "person",
                "Someone else's (their tokentally name)",
            )),
        CreateCommand::new("leaderboard")
            .description("A week's leaderboard (the last complete week by default)")
            .add_option(CreateCommandOption::new(
                CommandOptionType::String,
                "week",
                "An ISO week such as 2026-W41, current or last",
            )),
        CreateCommand::new("why")
            .description("Why a commit earned what it did")
            .add_option(
                CreateCommandOption::new(
                    CommandOptionType::String,
                    "sha",
                    "The commit id (7 to 40 hex digits)",
                )
                .required(true),
            ),
        CreateCommand::new("redeem")
            .description("Redeem available tokens (asks you to confirm)")
            .add_option(
                CreateCommandOption::new(CommandOptionType::Number, "tokens", "How many")
                    .min_number_value(0.001)
                    .required(true),
            )
            .add_option(
                CreateCommandOption::new(CommandOptionType::String, "kind", "As what")
                    .required(true)
                    .add_string_choice("bonus", "bonus")
                    .add_string_choice("PTO", "pto")
                    .add_string_choice("equity", "equity"),
            ),
    ]
}

/// Whether a command's answer is private (only `/leaderboard` is public).
pub fn is_private(i: &Interaction) -> bool {
    i.command.as_deref() != Some("leaderboard")
}

/// The answer to an interaction (a command or a button).
pub async fn answer(chat: &Chat, i: &Interaction) -> Result<Reply, LedgerError> {
    match (i.kind, i.command.as_deref(), i.custom_id.as_deref()) {
        (APPLICATION_COMMAND, Some("tokens"), _) => tokens(chat, i).await,
        (APPLICATION_COMMAND, Some("leaderboard"), _) => leaderboard(chat, i).await,
        (APPLICATION_COMMAND, Some("why"), _) => why(chat, i).await,
        (APPLICATION_COMMAND, Some("redeem"), _) => redeem(chat, i).await,
        (MESSAGE_COMPONENT, _, Some(id)) if id.starts_with("redeem:") => confirm(chat, i, id).await,
        (MESSAGE_COMPONENT, _, Some("redeem-cancel")) => Ok(Reply {
            update: true,
            ..Reply::private("Nothing was redeemed.")
        }),
        (_, Some(name), _) => Ok(Reply::private(format!(
            "tokentally has no command /{}.",
            escape(name)
        ))),
        _ => Ok(Reply::private(
            "tokentally does not know what to do with this.",
        )),
    }
}

const UNLINKED: &str = "Your Discord account is not linked to a person yet: ask an admin to add \
     `discord = \"YOUR_ID\"` to your `[[people]]` entry (your id: Settings → Advanced → \
     Developer Mode, then right-click your name → Copy User ID).";

fn milli(m: i64) -> String {
    format!("{:.3}", m as f64 / 1000.0)
}

fn date(ms: i64) -> String {
    crate::ledger::read::rfc3339(ms)
        .get(..10)
        .unwrap_or_default()
        .to_string()
}

/// `/tokens [person]`: the caller's card, or the named person's.
async fn tokens(chat: &Chat, i: &Interaction) -> Result<Reply, LedgerError> {
    let person = match i.text("person") {
        Some(name) => {
            let name = name
                .strip_prefix("<@")
                .and_then(|n| n.strip_suffix('>'))
                .and_then(|id| chat.person_of(id.trim_start_matches('!')))
                .unwrap_or(name);
            if !chat.ledger.store().person_exists(&name).await? {
                return Ok(Reply::private(format!(
                    "There is no person {}.",
                    escape(&name)
                )));
            }
            name
        }
        None => match i.user_id.as_deref().and_then(|id| chat.person_of(id)) {
            Some(person) => person,
            None => return Ok(Reply::private(UNLINKED)),
        },
    };
    let card = card(chat, &person).await?;
    Ok(Reply {
        embeds: vec![card],
        ..Reply::private("")
    })
}

/// A person's card: the figures of their dashboard page.
pub async fn card(chat: &Chat, person: &str) -> Result<CreateEmbed, LedgerError> {
    let ledger = &chat.ledger;
    let tz = ledger.tz();
    let now = chat.clock.now_ms();
    let week = Week::of(now, tz);
    let vesting = i64::from(ledger.rules().vesting_days) * 86_400_000;
    let (balance, board, commits) = tokio::try_join!(
        ledger.balance(person),
        ledger.leaderboard(week, RankBy::Value),
        ledger.person_commits(person, now - vesting - 86_400_000, now + 86_400_000),
    )?;
    let line = board
        .entries
        .iter()
        .chain(&board.unranked)
        .find(|l| l.person == person);
    let payout = &chat.config.payout;
    let mut next: Vec<(i64, i64)> = commits
        .iter()
        .filter(|c| c.state == "pending")
        .map(|c| (c.vests_at, c.tokens))
        .collect();
    next.sort_unstable();
    let vests: Vec<String> = next
        .iter()
        .take(3)
        .map(|(at, t)| format!("{} on {}", milli(*t), date(*at)))
        .collect();
    let mut e = CreateEmbed::new().colour(0x2b8a3e_u32).title(cut(
        &format!(
            "{} · {}",
            escape(&crate::attribution::identity::public_name(person)),
            week.label()
        ),
        256,
    ));
    let this_week = match line {
        Some(l) => format!(
            "earned {} · score {}{}",
            milli(l.earned),
            milli(l.value),
            match l.rank {
                Some(rank) => format!(" · rank #{rank} of {}", board.entries.len()),
                None => " · not ranked yet".to_string(),
            }
        ),
        None => "nothing landed yet".to_string(),
    };
    e = e.field("This week", this_week, false);
    e = e.field(
        "Pending",
        if vests.is_empty() {
            milli(balance.pending)
        } else {
            format!("{} · next: {}", milli(balance.pending), vests.join(", "))
        },
        false,
    );
    let mut money = format!(
        "{} = {}",
        milli(balance.available),
        crate::digest::money(payout.rate_minor(balance.available), &payout.currency)
    );
    if let Some(hours) = payout.pto_hours_per_token {
        money.push_str(&format!(
            " = {} h PTO",
            crate::digest::short(balance.available as f64 / 1000.0 * hours)
        ));
    }
    e = e
        .field("Vested", milli(balance.vested), true)
        .field("Available", money, true);
    if balance.owed > 0 {
        e = e.field("Owed", milli(balance.owed), true);
    }
    if let Some(l) = line {
        let h = &l.hygiene_events;
        let mut events = Vec::new();
        for (n, what) in [
            (h.reverted as f64, "reverted"),
            (h.fixed_later, "fixed later"),
            (f64::from(h.red_never_green), "red CI"),
            (f64::from(h.duplicates), "duplicates"),
            (f64::from(h.noise), "noise"),
            (f64::from(h.waste), "waste"),
        ] {
            if n > 0.0 {
                events.push(format!("{} {what}", crate::digest::short(n)));
            }
        }
        e = e.field(
            "Hygiene",
            if events.is_empty() {
                l.hygiene.to_string()
            } else {
                format!("{} ({})", l.hygiene, events.join(", "))
            },
            true,
        );
        e = e.field(
            "Efficiency",
            match (l.efficiency, l.efficiency_source) {
                (Some(x), Some(source)) => {
                    format!("{x:.2} per 1k usage ({})", source.replace('_', "-"))
                }
                _ => "—".to_string(),
            },
            true,
        );
    }
    if let Some(url) = &chat.config.public_url {
        e = e.url(format!(
            "{}/people/{}",
            url.trim_end_matches('/'),
            path_segment(person)
        ));
    }
    Ok(e.footer(CreateEmbedFooter::new(format!(
        "rules {}",
        ledger.version()
    ))))
}

/// `/leaderboard [week]`: the digest's embeds, in the channel.
async fn leaderboard(chat: &Chat, i: &Interaction) -> Result<Reply, LedgerError> {
    let tz = chat.ledger.tz();
    let text = i.text("week");
    let Some(week) = Week::chosen(text.as_deref(), chat.clock.now_ms(), tz) else {
        return Ok(Reply::private(format!(
            "{} is not a week: give an ISO week such as 2026-W41, current or last.",
            escape(text.as_deref().unwrap_or_default())
        )));
    };
    let digest = crate::digest::build(&chat.ledger, &chat.config, week, None).await?;
    Ok(Reply {
        embeds: create_embeds(&digest, false),
        ..Reply::default()
    })
}

/// `/why <sha>`: the commit's state, tokens and each factor's arithmetic.
async fn why(chat: &Chat, i: &Interaction) -> Result<Reply, LedgerError> {
    let sha = i.text("sha").unwrap_or_default().to_ascii_lowercase();
    if !crate::store::is_commit_prefix(&sha) {
        return Ok(Reply::private(format!(
            "{} is not a commit id (7 to 40 hexadecimal digits).",
            escape(&sha)
        )));
    }
    let Found::Commits(mut found) = chat.ledger.find_commit(&sha, None).await? else {
        return Ok(Reply::private("No such repository."));
    };
    let (repository, commit) = match found.len() {
        0 => return Ok(Reply::private(format!("No commit {sha} is known."))),
        1 => found.remove(0),
        n => {
            let list: Vec<String> = found
                .iter()
                .take(10)
                .map(|(r, c)| {
                    format!(
                        "• {} `{}` {}",
                        escape(&r.full_name),
                        &c.sha[..12],
                        escape(&c.subject)
                    )
                })
                .collect();
            return Ok(Reply::private(cut(
                &format!(
                    "{sha} names {n} commits; give more digits:\n{}",
                    list.join("\n")
                ),
                1900,
            )));
        }
    };
    let (t, version, rules) = chat.ledger.why(&repository, &commit).await?;
    // In a code block: nothing in a subject can format or break out of it.
    let text = explain(&t, &version, &rules).replace('`', "ʹ");
    Ok(Reply::private(format!("```\n{}\n```", cut(&text, 1900))))
}

/// Whether the caller may redeem: a member of one of `discord.redeem_roles`.
fn may_redeem(chat: &Chat, i: &Interaction) -> bool {
    let allowed = &chat.config.discord.redeem_roles;
    i.roles.iter().any(|r| allowed.contains(r))
}

const NOT_ALLOWED: &str = "Redeeming from Discord is open to members of the roles in \
     `discord.redeem_roles` only; ask an admin, or redeem with `tokentally redeem`.";

/// `/redeem <tokens> <kind>`: checks, then asks to confirm with a button.
async fn redeem(chat: &Chat, i: &Interaction) -> Result<Reply, LedgerError> {
    if !may_redeem(chat, i) {
        return Ok(Reply::private(NOT_ALLOWED));
    }
    let Some(person) = i.user_id.as_deref().and_then(|id| chat.person_of(id)) else {
        return Ok(Reply::private(UNLINKED));
    };
    let amount = i.number("tokens").unwrap_or(f64::NAN);
    let kind = i.text("kind").unwrap_or_default();
    let now = chat.clock.now_ms();
    // The same checks as the API's, before asking.
    let entry = match crate::ledger::redemption::entry(
        &person,
        amount,
        &kind,
        "check",
        "discord",
        chat.ledger.version(),
        now,
    ) {
        Ok(entry) => entry,
        Err((field, message)) => {
            return Ok(Reply::private(format!("{field}: {}", escape(&message))));
        }
    };
    let available = chat.ledger.balance(&person).await?.available;
    if available + entry.amount < 0 {
        return Ok(Reply::private(format!(
            "You have {} tokens available; {} cannot be redeemed.",
            milli(available),
            milli(-entry.amount)
        )));
    }
    Ok(Reply {
        buttons: vec![
            Button {
                // The command's interaction id is the redemption's key: a
                // second press (or a replay) books nothing more.
                custom_id: format!("redeem:{}:{}:{kind}", i.id, -entry.amount),
                label: format!("Redeem {} as {kind}", milli(-entry.amount)),
                style: 3,
            },
            Button {
                custom_id: "redeem-cancel".into(),
                label: "Cancel".into(),
                style: 2,
            },
        ],
        ..Reply::private(format!(
            "Redeem {} of your {} available tokens as {kind}?",
            milli(-entry.amount),
            milli(available)
        ))
    })
}

/// The confirm button: books the redemption through the API's path.
async fn confirm(chat: &Chat, i: &Interaction, custom_id: &str) -> Result<Reply, LedgerError> {
    let refuse = |text: String| Reply {
        update: true,
        ..Reply::private(text)
    };
    if !may_redeem(chat, i) {
        return Ok(refuse(NOT_ALLOWED.to_string()));
    }
    let Some(person) = i.user_id.as_deref().and_then(|id| chat.person_of(id)) else {
        return Ok(refuse(UNLINKED.to_string()));
    };
    let parts: Vec<&str> = custom_id.splitn(4, ':').collect();
    let (Some(command_id), Some(amount), Some(kind)) = (
        parts.get(1),
        parts.get(2).and_then(|m| m.parse::<i64>().ok()),
        parts.get(3),
    ) else {
        return Ok(refuse("This button is not one tokentally made.".into()));
    };
    let now = chat.clock.now_ms();
    let entry = match crate::ledger::redemption::entry(
        &person,
        amount as f64 / 1000.0,
        kind,
        &format!("redemption:discord:{command_id}"),
        &format!("discord:{}", i.user_id.as_deref().unwrap_or_default()),
        chat.ledger.version(),
        now,
    ) {
        Ok(entry) => entry,
        Err((field, message)) => return Ok(refuse(format!("{field}: {}", escape(&message)))),
    };
    let outcome = chat.ledger.store().redeem(&entry, now).await?;
    let available = chat.ledger.balance(&person).await?.available;
    Ok(refuse(match outcome {
        Redemption::Done { .. } => {
            tracing::info!(person = %person, amount = entry.amount, "redemption recorded from Discord");
            format!(
                "Redeemed {} tokens as {kind}; {} available now.",
                milli(amount),
                milli(available)
            )
        }
        Redemption::Replayed { same: true, .. } => {
            format!(
                "This redemption was booked already; {} available.",
                milli(available)
            )
        }
        Redemption::Replayed { same: false, .. } => {
            "This redemption's key was used for another one; nothing changed.".into()
        }
        Redemption::Insufficient { available } => format!(
            "You have {} tokens available; {} cannot be redeemed.",
            milli(available),
            milli(amount)
        ),
        Redemption::UnknownPerson => format!("No person {} is known.", escape(&person)),
    }))
}

/// A person's name as one URL path segment (everything but unreserved
/// characters percent-encoded).
fn path_segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
