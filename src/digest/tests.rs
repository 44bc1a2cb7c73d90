//! The digest from known rows: every number, the Markdown and the Discord
//! payload (insta snapshots), Discord's limits with 40 people and long names,
//! the quiet week, and a chart that decodes.

use std::collections::HashMap;

use super::*;
use crate::ledger::periods::Statement;
use crate::scoring::statement::{LineEntries, StatementLine};

fn utc() -> chrono_tz::Tz {
    "Europe/Berlin".parse().unwrap()
}

fn week() -> Week {
    Week::parse("2026-W47").unwrap()
}

fn line(person: &str, rank: Option<u32>, trend: Option<&str>) -> LeaderboardLine {
    LeaderboardLine {
        rank,
        ai_commits: 2,
        trend: trend.map(String::from),
        ..LeaderboardLine::blank(person)
    }
}

fn config() -> Config {
    let mut c = Config {
        timezone: "Europe/Berlin".to_string(),
        public_url: Some("https://tally.example.com/".to_string()),
        ..Config::default()
    };
    c.payout.rate = rust_decimal::Decimal::TWO;
    c.payout.mode = crate::config::PayoutMode::Rate;
    c.digest.top = 2;
    c
}

struct Rows {
    board: Vec<LeaderboardLine>,
    lines: Vec<LeaderboardLine>,
    previous: Vec<LeaderboardLine>,
    landings: Vec<LandingRow>,
    movement: Vec<(String, Option<i64>, String, i64)>,
    statement: Statement,
    earned: Vec<(i64, i64)>,
    discord: HashMap<String, String>,
    unranked: Vec<LeaderboardLine>,
    taken_back: Vec<TakenBack>,
    usage: Vec<crate::store::usage::UsageRow>,
}

/// A week of three people: maria (ranked 1, up 2), kenji (ranked 2, down 1,
/// one revert), sam (ranked 3, new); lee improved hygiene 70 → 100.
fn rows() -> Rows {
    let mut maria = line("maria", Some(1), Some("+2"));
    maria.value = 88_000;
    maria.earned = 88_000;
    maria.vested = 60_000;
    maria.pending = 28_000;
    maria.efficiency = Some(7.94);
    let mut kenji = line("kenji", Some(2), Some("-1"));
    kenji.value = 74_500;
    kenji.earned = 90_000;
    kenji.vested = 80_500;
    kenji.clawed_back = 2_000;
    kenji.hygiene = 85;
    kenji.hygiene_events.reverted = 1;
    kenji.efficiency = Some(5.1);
    let mut sam = line("sam", Some(3), Some("new"));
    sam.value = 52_000;
    sam.earned = 52_000;
    sam.vested = 52_000;
    // An unranked earner known only by a raw email.
    let mut lee = line("lee.chen@example.com", None, None);
    lee.earned = 1_500;
    lee.ai_commits = 1;
    let lines = vec![maria.clone(), kenji.clone(), sam.clone(), lee.clone()];
    let mut lee_before = line("lee.chen@example.com", None, None);
    lee_before.hygiene = 70;
    let mut kenji_before = line("kenji", None, None);
    kenji_before.hygiene = 90;
    let landing = |repository_id, ai, agents: &str, landed, reverted| LandingRow {
        repository_id,
        ai,
        agents: agents.to_string(),
        landed,
        reverted,
    };
    let payout = |person: &str, paid: i64, minor| StatementLine {
        person: person.to_string(),
        opening: 0,
        vested: paid,
        clawed_back: 0,
        corrections: 0,
        redeemed: 0,
        paid,
        closing: 0,
        amount_minor: minor,
        entries: LineEntries::default(),
    };
    let (from, _) = week().bounds(utc());
    Rows {
        board: vec![maria, kenji, sam],
        lines,
        previous: vec![lee_before, kenji_before],
        landings: vec![
            landing(1, 1, r#"["claude-code"]"#, 40, 1),
            landing(1, 1, r#"["copilot","claude-code"]"#, 15, 1),
            landing(2, 1, r#"["cursor"]"#, 6, 0),
            landing(1, 0, "[]", 82, 4),
        ],
        movement: vec![
            ("maria".into(), Some(1), "vest".into(), 60_000),
            ("kenji".into(), Some(1), "vest".into(), 80_500),
            ("kenji".into(), Some(2), "clawback".into(), -18_000),
            ("sam".into(), Some(2), "vest".into(), 52_000),
        ],
        statement: Statement {
            week: "2026-W47".into(),
            closed: true,
            currency: "USD".into(),
            total_minor: 34_900,
            hash: Some("ab".into()),
            lines: vec![
                payout("maria", 60_000, 12_000),
                payout("kenji", 62_500, 12_500),
                payout("sam", 52_000, 10_400),
            ],
        },
        earned: vec![(from + 3_600_000, 231_500), (from - 86_400_000, 10_000)],
        discord: HashMap::from([("maria".to_string(), "80351110224678912".to_string())]),
        unranked: vec![lee],
        taken_back: vec![
            TakenBack {
                repo: "acme/api".into(),
                sha: "c0ffee000001".into(),
                subject: "feat: retry queue".into(),
                person: "kenji".into(),
                tokens: 18_000,
                reason: "reverted".into(),
                by: Some("badc0de00002".into()),
            },
            TakenBack {
                repo: "acme/web".into(),
                sha: "c0ffee000003".into(),
                subject: "feat: invoice export".into(),
                person: "lee.chen@example.com".into(),
                tokens: 500,
                reason: "fixed_later".into(),
                by: Some("f1xf1x000004".into()),
            },
        ],
        usage: Vec::new(),
    }
}

fn assemble_rows(r: &Rows, config: &Config, scope: &Scope) -> Digest {
    assemble_with(r, config, scope, Some(valuable()))
}

fn valuable() -> ValuableCommit {
    ValuableCommit {
        repo: "acme/api".into(),
        sha: "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2".into(),
        subject: "fix: stop double charge on retry".into(),
        person: "maria".into(),
        kind: "fix".into(),
        tokens: 10_200,
        factors: factor_text(
            "fix",
            &serde_json::json!({"tier": 10.0, "size": 0.81, "outcome": 1.2, "calibration": 1.05}),
            10_200,
        ),
    }
}

fn assemble_with(
    r: &Rows,
    config: &Config,
    scope: &Scope,
    most_valuable: Option<ValuableCommit>,
) -> Digest {
    assemble(
        Inputs {
            taken_back: r.taken_back.clone(),
            unranked: &r.unranked,
            week: week(),
            tz: utc(),
            scope,
            board_entries: &r.board,
            lines: &r.lines,
            previous_lines: &r.previous,
            landings: &r.landings,
            movement: &r.movement,
            statement: &r.statement,
            earned_by_landing: &r.earned,
            discord_ids: &r.discord,
            most_valuable,
            top: config.digest.top,
            usage: &r.usage,
        },
        config,
        "v1-0123456789ab",
        None,
    )
}

#[test]
fn the_week_adds_up_number_by_number() {
    let d = assemble_rows(&rows(), &config(), &Scope::all());
    assert_eq!(d.week, "2026-W47");
    assert_eq!(d.dates, "Nov 16–22");
    assert!(!d.quiet);
    // Earned: the lines' earned (88 + 90 + 52 + 1.5).
    assert_eq!(d.totals.earned, 231_500);
    assert_eq!(d.totals.vested, 192_500);
    assert_eq!(d.totals.clawed_back, 18_000);
    assert_eq!(d.totals.payout_minor, 34_900);
    assert_eq!(d.totals.paid, 174_500);
    assert_eq!(d.totals.rate.as_deref(), Some("2"));
    assert!(d.totals.closed);
    // 143 landed, 61 AI (42.7 %); AI reverts 2/61, human 4/82.
    assert_eq!((d.commits.landed, d.commits.ai), (143, 61));
    assert!((d.commits.ai_share - 61.0 / 143.0).abs() < 1e-12);
    assert!((d.commits.ai_revert_rate - 2.0 / 61.0).abs() < 1e-12);
    assert!((d.commits.human_revert_rate - 4.0 / 82.0).abs() < 1e-12);
    // Top 2 of 3 ranked.
    assert_eq!(d.leaderboard.len(), 2);
    assert_eq!(d.more, 1);
    assert_eq!(d.leaderboard[0].trend, "▲2");
    assert_eq!(d.leaderboard[1].trend, "▼1");
    assert_eq!(
        d.leaderboard[0].discord_id.as_deref(),
        Some("80351110224678912")
    );
    assert_eq!(d.leaderboard[1].reverts, 1);
    // Agents: claude-code in both groups (40 + 15), copilot 15, cursor 6.
    let agents: Vec<(&str, u32)> = d
        .agents
        .iter()
        .map(|a| (a.agent.as_str(), a.commits))
        .collect();
    assert_eq!(
        agents,
        [("claude-code", 55), ("copilot", 15), ("cursor", 6)]
    );
    // Hygiene: lee 70 → 100 beats kenji (who fell).
    assert_eq!(
        d.highlights.hygiene_gain,
        Some(HygieneGain {
            person: "lee.chen@example.com".into(),
            from: 70,
            to: 100
        })
    );
    assert_eq!(
        d.highlights.most_valuable.as_ref().unwrap().factors,
        "fix 10 × size 0.81 × outcome 1.2 × calibration 1.05 = 10.2"
    );
    // The trend: 12 weeks, this one last, the day before it in the one before.
    assert_eq!(d.trend.len(), TREND_WEEKS);
    assert_eq!(d.trend[11].week, "2026-W47");
    assert_eq!(d.trend[11].earned, 231_500);
    assert_eq!(d.trend[10].earned, 10_000);
    assert_eq!(
        d.dashboard_url.as_deref(),
        Some("https://tally.example.com/?week=2026-W47")
    );
}

#[test]
fn a_destination_sees_its_repositories_and_people_only() {
    let mut r = rows();
    r.movement
        .push(("kenji".into(), Some(2), "vest".into(), 80_500));
    let scope = Scope {
        repositories: Some([1].into()),
        people: Some(["kenji".to_string()].into()),
    };
    let d = assemble_rows(&r, &config(), &scope);
    assert_eq!(d.totals.vested, 80_500);
    assert_eq!(
        d.totals.clawed_back, 0,
        "kenji's clawback was in repository 2"
    );
    // Half of kenji's vested tokens are in repository 1: half his pay.
    assert_eq!(d.totals.payout_minor, 6_250);
    assert_eq!((d.commits.landed, d.commits.ai), (137, 55));
}

#[test]
fn markdown_and_discord_payload() {
    let d = assemble_rows(&rows(), &config(), &Scope::all());
    insta::assert_snapshot!("markdown", markdown::render(&d));
    let payload = serde_json::to_value(discord::message(&d, Some(vec![1, 2, 3]))).unwrap();
    insta::assert_json_snapshot!("discord_payload", payload);
    // The bad news is itemised, the unranked earner listed, no raw email anywhere.
    let text = markdown::render(&d);
    let discord_text = serde_json::to_string(&payload).unwrap();
    for public in [&text, &discord_text] {
        assert!(!public.contains("lee.chen@example.com"), "{public}");
        assert!(public.contains("lee.c…"), "{public}");
        assert!(public.contains("reverted by badc0de00002"), "{public}");
        assert!(
            public.contains("followed up by fix f1xf1x000004"),
            "{public}"
        );
    }
    assert!(text.contains("Also earned: @lee.c… 1.5"), "{text}");
    insta::assert_json_snapshot!("digest_json", d);
}

#[test]
fn a_quiet_week_is_a_short_digest() {
    let r = Rows {
        board: vec![],
        lines: vec![],
        previous: vec![],
        landings: vec![],
        movement: vec![],
        statement: Statement {
            week: "2026-W47".into(),
            closed: false,
            currency: "USD".into(),
            total_minor: 0,
            hash: None,
            lines: vec![],
        },
        earned: vec![],
        discord: HashMap::new(),
        unranked: vec![],
        taken_back: vec![],
        usage: vec![],
    };
    let d = assemble_with(&r, &config(), &Scope::all(), None);
    assert!(d.quiet);
    insta::assert_snapshot!("quiet_markdown", markdown::render(&d));
    let embeds = discord::embeds(&d, true);
    assert_eq!(embeds.len(), 1);
    assert!(embeds[0].description.contains("quiet week"));
    for kind in [
        crate::config::ChartKind::People,
        crate::config::ChartKind::Trend,
    ] {
        let png = chart::png(&d, kind).unwrap();
        assert!(png.starts_with(b"\x89PNG"));
    }
}

#[test]
fn forty_people_with_long_names_stay_within_discord_limits() {
    let mut r = rows();
    r.board = (1..=40)
        .map(|i| {
            let mut l = line(&format!("{i:02}{}", "x".repeat(198)), Some(i), Some("new"));
            l.value = 1_000 * (50 - i as i64);
            l.hygiene_events.reverted = 2;
            l
        })
        .collect();
    let mut c = config();
    c.digest.top = 40;
    let d = assemble_rows(&r, &c, &Scope::all());
    assert_eq!(d.leaderboard.len(), 40);
    let embeds = discord::embeds(&d, true);
    assert!(embeds.len() <= discord::MAX_EMBEDS);
    let total: usize = embeds.iter().map(discord::Embed::chars).sum();
    assert!(total <= discord::MAX_MESSAGE, "{total} characters");
    for e in &embeds {
        assert!(e.fields.len() <= discord::MAX_FIELDS);
        assert!(e.title.chars().count() <= discord::MAX_TITLE);
        assert!(e.description.chars().count() <= discord::MAX_DESCRIPTION);
        for (name, value) in &e.fields {
            assert!(name.chars().count() <= discord::MAX_FIELD_NAME);
            assert!(
                value.chars().count() <= discord::MAX_FIELD_VALUE,
                "{}",
                value.chars().count()
            );
        }
    }
    let text: String = embeds
        .iter()
        .flat_map(|e| e.fields.iter().map(|(_, v)| v.clone()))
        .collect::<Vec<_>>()
        .join("\n");
    // The first people are there; the rest are counted, none lost silently.
    assert!(text.contains(&format!("01{}", "x".repeat(198))));
    let shown = (1..=40)
        .filter(|i| text.contains(&format!("{i:02}{}", "x".repeat(198))))
        .count();
    assert!(shown < 40, "6,000 characters cannot hold 40 names of 200");
    assert!(
        text.contains(&format!("…and {} more", 40 - shown)),
        "{shown} shown"
    );
    // The highlights and agents still come after the cut leaderboard.
    assert!(
        embeds
            .iter()
            .any(|e| e.fields.iter().any(|(n, _)| n == "Agents"))
    );
    // The serialised payload is what Discord counts.
    let payload = serde_json::to_value(discord::message(&d, None)).unwrap();
    assert!(payload["embeds"].as_array().unwrap().len() <= 10);
}

#[test]
fn short_numbers_and_money() {
    assert_eq!(short(10.0), "10");
    assert_eq!(short(0.809486), "0.81");
    assert_eq!(short(1.2), "1.2");
    assert_eq!(money(59_600, "USD"), "$596.00");
    assert_eq!(money(5, "EUR"), "€0.05");
    assert_eq!(money(123_456, "CHF"), "1234.56 CHF");
    assert_eq!(percent(2.0 / 61.0), "3.3%");
    assert_eq!(
        week_dates(Week::parse("2026-W49").unwrap(), utc()),
        "Nov 30–Dec 6"
    );
}

#[test]
fn names_cannot_break_out_of_the_discord_markup() {
    let mut r = rows();
    r.board[1].person = "@everyone **bold** <@1>".to_string();
    let d = assemble_rows(&r, &config(), &Scope::all());
    let embeds = discord::embeds(&d, false);
    let text = format!("{:?}", embeds);
    assert!(!text.contains("**@everyone"), "{text}");
    assert!(
        text.contains(r"\\@everyone \\*\\*bold\\*\\* \\<\\@1\\>"),
        "{text}"
    );
    // And the message allows no mentions to ping anyone.
    let payload = serde_json::to_value(discord::message(&d, None)).unwrap();
    assert_eq!(payload["allowed_mentions"]["parse"], serde_json::json!([]));
}

#[test]
fn the_chart_is_a_png_that_decodes() {
    let d = assemble_rows(&rows(), &config(), &Scope::all());
    for kind in [
        crate::config::ChartKind::People,
        crate::config::ChartKind::Trend,
    ] {
        let bytes = chart::png(&d, kind).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.width, 800);
        // Something was drawn: not every pixel is white.
        assert!(buf[..info.buffer_size()].iter().any(|b| *b < 200));
        let svg = chart::svg(&d, kind).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
    }
}

#[test]
fn the_hygiene_gain_never_goes_to_someone_reverted_this_week() {
    let mut r = rows();
    // kenji rose 50 → 85 (more than lee's 70 → 100) but was reverted this week.
    for l in &mut r.previous {
        if l.person == "kenji" {
            l.hygiene = 50;
        }
    }
    let d = assemble_rows(&r, &config(), &Scope::all());
    assert_eq!(
        d.highlights.hygiene_gain.map(|g| g.person),
        Some("lee.chen@example.com".to_string())
    );
    // The team's change against last week: 231.5 earned now, 0 then.
    assert_eq!(d.earned_change, 231_500);
}

#[test]
fn the_agents_line_carries_verified_usage_and_cost_and_waste_is_named() {
    let mut r = rows();
    let row = |person: &str, agent: &str, kind: &str, amount: i64| {
        (
            person.to_string(),
            agent.to_string(),
            "opus".to_string(),
            "2026-11-17".to_string(),
            kind.to_string(),
            amount,
        )
    };
    r.usage = vec![
        row("kenji", "claude-code", "input", 1_000_000),
        row("kenji", "claude-code", "output", 150_000),
        // 500,000 cache reads weigh 0.1: 50,000.
        row("kenji", "claude-code", "cache_read", 500_000),
        row("kenji", "claude-code", "cost_micro_usd", 48_200_000),
        // An agent with usage and no landed commit is listed too.
        row("sam", "gemini-cli", "input", 2_000),
        row("sam", "gemini-cli", "cost_micro_usd", 10_000),
    ];
    r.lines[2].waste = Some("nothing_landed");
    r.lines[2].cost_usd = Some(0.01);
    let config = Config::default();
    let d = assemble_rows(&r, &config, &Scope::all());
    let line = crate::digest::markdown::agents_line(&d).unwrap();
    assert_eq!(
        line,
        "Agents: claude-code 55 (1.2M usage, $48.20) · copilot 15 · cursor 6 · gemini-cli 0 (2.0k usage, $0.01)"
    );
    let text = crate::digest::markdown::render(&d);
    assert!(text.contains(&line), "{text}");
    let who = &r.lines[2].person;
    assert!(
        text.contains(&format!("Waste: @{who} (usage, nothing landed, $0.01)")),
        "{text}"
    );
    // Out of a destination's scope: neither the usage nor the waste.
    let scope = Scope {
        repositories: None,
        people: Some(["maria".to_string()].into_iter().collect()),
    };
    let d = assemble_rows(&r, &config, &scope);
    assert!(d.agents.iter().all(|a| a.usage.is_none()), "{:?}", d.agents);
    assert!(d.waste.is_empty());
}
