//! The digest as a Discord webhook message: embeds kept within Discord's
//! limits (10 embeds, 25 fields, 256-character titles and field names, 1,024
//! per field value, 4,096 per description, 6,000 per message). What does not
//! fit is cut with "…and N more", never an error. People with a Discord id are
//! mentioned (`<@id>`; the message allows no pings), the rest named.

use serenity::builder::{
    CreateAllowedMentions, CreateAttachment, CreateEmbed, CreateEmbedFooter, ExecuteWebhook,
};

use super::markdown::{
    agents_line, also_earned_line, commits_line, nobody_ranked, taken_back_item, title,
    totals_line, valuable_text,
};
use super::{Digest, tokens1};

pub const MAX_EMBEDS: usize = 10;
pub const MAX_FIELDS: usize = 25;
pub const MAX_TITLE: usize = 256;
pub const MAX_FIELD_NAME: usize = 256;
pub const MAX_FIELD_VALUE: usize = 1024;
pub const MAX_DESCRIPTION: usize = 4096;
pub const MAX_FOOTER: usize = 2048;
pub const MAX_MESSAGE: usize = 6000;

/// The file name of the chart attachment.
pub const CHART_FILE: &str = "chart.png";

/// One embed, as plain data (what is measured against the limits).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Embed {
    pub title: String,
    pub url: Option<String>,
    pub description: String,
    pub fields: Vec<(String, String)>,
    pub footer: String,
    pub image: Option<String>,
}

impl Embed {
    /// Characters Discord counts toward the 6,000 of a message.
    pub fn chars(&self) -> usize {
        self.title.chars().count()
            + self.description.chars().count()
            + self.footer.chars().count()
            + self
                .fields
                .iter()
                .map(|(n, v)| n.chars().count() + v.chars().count())
                .sum::<usize>()
    }
}

/// `text` cut to `max` characters, ending in "…" when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Escapes Discord Markdown in a name or subject.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '*' | '_' | '~' | '`' | '|' | '>' | '\\' | '[' | ']' | '<' | '@' | '#'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A person as the message shows them: a mention when their Discord id is
/// known, never a raw email.
fn person(name: &str, discord_id: Option<&str>) -> String {
    match discord_id {
        Some(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => format!("<@{id}>"),
        _ => format!(
            "**{}**",
            escape(&crate::attribution::identity::public_name(name))
        ),
    }
}

/// The digest's embeds. `chart` puts the attached chart in the first embed.
pub fn embeds(d: &Digest, chart: bool) -> Vec<Embed> {
    let mut first = Embed {
        title: cut(&title(d), MAX_TITLE),
        url: d.dashboard_url.clone(),
        footer: cut(&format!("rules {}", d.rules_version), MAX_FOOTER),
        image: chart.then(|| format!("attachment://{CHART_FILE}")),
        ..Embed::default()
    };
    if d.quiet {
        first.description = "A quiet week: nothing landed, vested or was clawed back.".to_string();
        return vec![first];
    }
    first.description = cut(
        &format!("{}\n{}", totals_line(d), commits_line(d)),
        MAX_DESCRIPTION,
    );

    let mut tail: Vec<(String, String)> = Vec::new();
    let mut highlights = Vec::new();
    if let (Some(text), Some(v)) = (valuable_text(d), &d.highlights.most_valuable) {
        let id = d.discord_ids.get(&v.person).map(String::as_str);
        highlights.push(format!("{} by {}", escape(&text), person(&v.person, id)));
    }
    if let Some(g) = &d.highlights.hygiene_gain {
        highlights.push(format!(
            "Biggest hygiene gain: {} {} → {}",
            person(&g.person, d.discord_ids.get(&g.person).map(String::as_str)),
            g.from,
            g.to
        ));
    }
    if !highlights.is_empty() {
        tail.push((
            "Highlights".to_string(),
            cut(&highlights.join("\n"), MAX_FIELD_VALUE),
        ));
    }
    if d.leaderboard.is_empty() {
        tail.push(("Leaderboard".to_string(), nobody_ranked(d)));
    }
    let plain = |p: &str| escape(&crate::attribution::identity::public_name(p));
    if let Some(line) = also_earned_line(d, plain) {
        let list = line.trim_start_matches("Also earned: ");
        tail.push(("Also earned".to_string(), cut(list, MAX_FIELD_VALUE)));
    }
    if !d.taken_back.is_empty() {
        let items: Vec<String> = d
            .taken_back
            .iter()
            .map(|t| format!("• {}", taken_back_item(t, plain)))
            .collect();
        tail.push((
            "Taken back".to_string(),
            cut(&items.join("\n"), MAX_FIELD_VALUE),
        ));
    }
    if let Some(agents) = agents_line(d) {
        let list = agents.trim_start_matches("Agents: ");
        tail.push(("Agents".to_string(), cut(list, MAX_FIELD_VALUE)));
    }
    if let Some(waste) = super::markdown::waste_line(d, plain) {
        let list = waste.trim_start_matches("Waste: ");
        tail.push(("Waste".to_string(), cut(list, MAX_FIELD_VALUE)));
    }
    if !d.leaderboard.is_empty() {
        tail.push(("Words".to_string(), super::markdown::LEGEND.to_string()));
    }

    let lines: Vec<String> = d
        .leaderboard
        .iter()
        .map(|l| {
            let mut line = format!(
                "`{:>2}` {} · score **{}** · net {} · per 1k usage {} · hygiene {} · {}",
                l.rank,
                person(&l.person, l.discord_id.as_deref()),
                tokens1(l.value),
                tokens1(l.vested + l.pending),
                l.efficiency.map_or("—".to_string(), |e| format!("{e:.1}")),
                l.hygiene,
                l.trend
            );
            if l.reverts > 0 {
                let s = if l.reverts == 1 { "" } else { "s" };
                line.push_str(&format!(" ({} revert{s})", l.reverts));
            }
            cut(&line, MAX_FIELD_VALUE)
        })
        .collect();
    let mut out = vec![first];
    pack_leaderboard(&mut out, &lines, d.more, &tail);
    out
}

/// Adds the leaderboard lines as fields (new embeds when one is full), then
/// the tail fields, within every limit; lines that do not fit become
/// "…and N more".
fn pack_leaderboard(
    out: &mut Vec<Embed>,
    lines: &[String],
    more: usize,
    tail: &[(String, String)],
) {
    // Room kept for the tail fields and the "…and N more" line.
    let tail_chars: usize = tail
        .iter()
        .map(|(n, v)| n.chars().count() + v.chars().count())
        .sum();
    let more_line = |n: usize| format!("…and {n} more");
    let reserve = tail_chars + more_line(lines.len() + more).chars().count() + 1;
    let total = |out: &[Embed]| out.iter().map(Embed::chars).sum::<usize>();
    let fields_free = |out: &[Embed]| {
        let last = out.last().expect("one embed");
        MAX_FIELDS - last.fields.len() + (MAX_EMBEDS - out.len()) * MAX_FIELDS
    };
    let mut value = String::new();
    let mut placed = 0;
    for line in lines {
        let grown = if value.is_empty() {
            line.chars().count()
        } else {
            value.chars().count() + 1 + line.chars().count()
        };
        let name_len = "Leaderboard".len();
        if grown < MAX_FIELD_VALUE - more_line(lines.len() + more).chars().count() {
            // Fits in the current field; check the message total (field name counted once).
            let pending = if value.is_empty() { name_len } else { 0 };
            if total(out) + value.chars().count() + pending + line.chars().count() + 1 + reserve
                > MAX_MESSAGE
            {
                break;
            }
            if !value.is_empty() {
                value.push('\n');
            }
            value.push_str(line);
            placed += 1;
            continue;
        }
        // Close this field and start another, if one is allowed.
        if fields_free(out) <= tail.len() + 1 {
            break;
        }
        push_field(out, "Leaderboard", std::mem::take(&mut value));
        if total(out) + name_len + line.chars().count() + reserve > MAX_MESSAGE {
            break;
        }
        value.push_str(line);
        placed += 1;
    }
    let left = lines.len() - placed + more;
    if left > 0 {
        if !value.is_empty() {
            value.push('\n');
        }
        value.push_str(&more_line(left));
    }
    if !value.is_empty() {
        push_field(out, "Leaderboard", value);
    }
    for (name, v) in tail {
        if total(out) + name.chars().count() + v.chars().count() > MAX_MESSAGE {
            break;
        }
        push_field(out, name, v.clone());
    }
}

/// Adds a field to the last embed, or to a new embed when it has 25.
fn push_field(out: &mut Vec<Embed>, name: &str, value: String) {
    if out.last().is_some_and(|e| e.fields.len() >= MAX_FIELDS) {
        if out.len() >= MAX_EMBEDS {
            return;
        }
        out.push(Embed::default());
    }
    let last = out.last_mut().expect("one embed");
    let name = if last.fields.iter().any(|(n, _)| n == name) {
        format!("{name} (cont.)")
    } else {
        name.to_string()
    };
    last.fields
        .push((cut(&name, MAX_FIELD_NAME), cut(&value, MAX_FIELD_VALUE)));
}

/// The digest's embeds as serenity builds them (the webhook message and
/// Discord's `/leaderboard` answer).
pub fn create_embeds(d: &Digest, chart: bool) -> Vec<CreateEmbed> {
    embeds(d, chart)
        .into_iter()
        .map(|e| {
            let mut b = CreateEmbed::new().colour(0x2b8a3e_u32);
            if !e.title.is_empty() {
                b = b.title(e.title);
            }
            if let Some(url) = e.url {
                b = b.url(url);
            }
            if !e.description.is_empty() {
                b = b.description(e.description);
            }
            for (name, value) in e.fields {
                b = b.field(name, value, false);
            }
            if !e.footer.is_empty() {
                b = b.footer(CreateEmbedFooter::new(e.footer));
            }
            if let Some(image) = e.image {
                b = b.image(image);
            }
            b
        })
        .collect()
}

/// The webhook message: embeds, no pings, and the chart attached when given.
pub fn message(d: &Digest, chart: Option<Vec<u8>>) -> ExecuteWebhook {
    let embeds = create_embeds(d, chart.is_some());
    let mut m = ExecuteWebhook::new()
        .username("tokentally")
        .embeds(embeds)
        .allowed_mentions(CreateAllowedMentions::new().empty_users().empty_roles());

    if let Some(png) = chart {
        m = m.add_file(CreateAttachment::bytes(png, CHART_FILE));
    }
    m
}
