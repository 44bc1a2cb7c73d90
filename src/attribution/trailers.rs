//! Reads the AI evidence in a commit message: git trailers (parsed by git2, keys
//! case-insensitive), `Co-authored-by:` lines repeated in a squash-merge body,
//! and `(aider)` author/committer names.

use serde::Serialize;

use super::agents::{AgentRegistry, slugify};
use super::kind::Kind;

/// Where a piece of evidence was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The message's final trailer block.
    Trailer,
    /// A `Co-authored-by:` line elsewhere in the body (GitHub squash merges).
    Body,
    /// The commit's author is the agent.
    Author,
    /// The commit's committer is the agent.
    Committer,
}

/// One agent that worked on the commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentUse {
    pub agent: String,
    pub model: Option<String>,
    pub source: Source,
    /// The trailer key or field that named it (`Co-authored-by`, `author`, …).
    pub via: String,
}

/// A name and email as written in a trailer or signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MessageEvidence {
    /// One entry per agent, in the order first seen.
    pub agents: Vec<AgentUse>,
    /// `AI-Assisted: no` (or false/none): the author says no AI was used.
    pub declared_not_ai: bool,
    pub declared_kind: Option<Kind>,
    pub usage_tokens: Option<u64>,
    /// Co-authors and `Assisted-by:` helpers who are people.
    pub humans: Vec<Person>,
    /// Session links (`Amp-Thread-ID`, `Copilot-Session`, `Agent-Logs-Url`).
    pub links: Vec<String>,
    /// Raw `Fixes:` values, resolved to commits later.
    pub fixes: Vec<String>,
    pub warnings: Vec<String>,
}

/// Trailer keys whose values are links to an agent session, kept as supporting evidence.
const LINK_KEYS: &[&str] = &[
    "amp-thread-id",
    "amp-thread",
    "copilot-session",
    "agent-logs-url",
];

impl MessageEvidence {
    fn add_agent(&mut self, agent: String, model: Option<String>, source: Source, via: &str) {
        // One agent named twice (author and co-author, a line repeated by a squash) is one agent.
        if let Some(existing) = self.agents.iter_mut().find(|a| a.agent == agent) {
            if existing.model.is_none() {
                existing.model = model;
            }
            return;
        }
        self.agents.push(AgentUse {
            agent,
            model,
            source,
            via: via.to_string(),
        });
    }

    fn add_human(&mut self, person: Person) {
        let known = self
            .humans
            .iter()
            .any(|h| h.email.eq_ignore_ascii_case(&person.email) && !person.email.is_empty());
        if !known {
            self.humans.push(person);
        }
    }

    /// The first model any agent named.
    pub fn model(&self) -> Option<&str> {
        self.agents.iter().find_map(|a| a.model.as_deref())
    }
}

/// Reads the evidence in `message`; `author`/`committer` are (name, email).
pub fn read(
    registry: &AgentRegistry,
    message: &str,
    author: (&str, &str),
    committer: (&str, &str),
) -> MessageEvidence {
    let mut ev = MessageEvidence::default();
    let mut trailer_coauthors: Vec<String> = Vec::new();

    match git2::message_trailers_strs(message) {
        Ok(trailers) => {
            for (key, value) in trailers.iter() {
                let key_lower = key.trim().to_lowercase();
                let value = value.trim();
                if key_lower == "co-authored-by" {
                    trailer_coauthors.push(value.to_lowercase());
                }
                read_trailer(
                    registry,
                    &mut ev,
                    key.trim(),
                    &key_lower,
                    value,
                    Source::Trailer,
                );
            }
        }
        Err(err) => ev
            .warnings
            .push(format!("trailers could not be parsed: {}", err.message())),
    }

    // GitHub squash merges repeat Co-authored-by lines in the body, outside the final
    // trailer block. Indented lines are quoted text, not trailers.
    for line in message.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if !key.eq_ignore_ascii_case("co-authored-by") {
            continue;
        }
        let value = value.trim();
        if trailer_coauthors.iter().any(|v| *v == value.to_lowercase()) {
            continue;
        }
        read_trailer(
            registry,
            &mut ev,
            key,
            "co-authored-by",
            value,
            Source::Body,
        );
    }

    for (source, (name, email)) in [(Source::Author, author), (Source::Committer, committer)] {
        let via = if source == Source::Author {
            "author"
        } else {
            "committer"
        };
        if let Some(agent) = registry.agent_for_email(email) {
            ev.add_agent(agent.to_string(), model_from_name(agent, name), source, via);
        } else if name.trim_end().to_lowercase().ends_with("(aider)") {
            ev.add_agent("aider".to_string(), None, source, via);
        }
    }
    ev
}

fn read_trailer(
    registry: &AgentRegistry,
    ev: &mut MessageEvidence,
    key: &str,
    key_lower: &str,
    value: &str,
    source: Source,
) {
    match key_lower {
        "ai-assisted" => read_ai_assisted(registry, ev, key, value),
        "ai-kind" => match Kind::parse(value) {
            Some(kind) => ev.declared_kind = Some(kind),
            None => ev.warnings.push(format!(
                "{key}: {value:?} is not a kind (feature, fix, refactor, perf, test, docs, debug, chore)"
            )),
        },
        "ai-tokens" => match parse_token_count(value) {
            Some(n) => ev.usage_tokens = Some(n),
            None => ev.warnings.push(format!(
                "{key}: {value:?} is not a token count (examples: 12400, 12.4k, 1.2M)"
            )),
        },
        "co-authored-by" => match parse_name_email(value) {
            Some(person) => match registry.agent_for_email(&person.email) {
                Some(agent) => {
                    let model = model_from_name(agent, &person.name);
                    ev.add_agent(agent.to_string(), model, source, key);
                }
                None => ev.add_human(person),
            },
            None => ev
                .warnings
                .push(format!("{key}: {value:?} has no email address; ignored")),
        },
        "assisted-by" => read_assisted_by(registry, ev, key, value),
        "generated-by" => match registry.agent_named_in(value) {
            Some(agent) => {
                let model = model_in_text(value);
                ev.add_agent(agent, model, source, key);
            }
            None => ev.warnings.push(format!(
                "{key}: {value:?} names no known AI tool; not counted as AI evidence"
            )),
        },
        "made-with" if !value.is_empty() => {
            ev.add_agent(registry.slug_for_name(value), None, source, key);
        }
        "fixes" => ev.fixes.push(value.to_string()),
        k if LINK_KEYS.contains(&k) => ev.links.push(value.to_string()),
        _ => {}
    }
}

/// `AI-Assisted: <agent>[ (<model>)]`, `yes`/`true`, or `no`/`false`/`none`.
fn read_ai_assisted(registry: &AgentRegistry, ev: &mut MessageEvidence, key: &str, value: &str) {
    let lower = value.to_lowercase();
    match lower.as_str() {
        "no" | "false" | "none" | "0" => ev.declared_not_ai = true,
        "" => ev.warnings.push(format!("{key} is empty")),
        "yes" | "true" | "1" => ev.add_agent("unknown".to_string(), None, Source::Trailer, key),
        _ => {
            let (agent, model) = match value.split_once('(') {
                Some((agent, rest)) => (agent.trim(), Some(rest.trim_end_matches(')').trim())),
                None => (value, None),
            };
            let model = model.filter(|m| !m.is_empty()).map(str::to_string);
            ev.add_agent(registry.slug_for_name(agent), model, Source::Trailer, key);
        }
    }
}

/// `Assisted-by:` is AI evidence in the kernel form `AGENT:MODEL [tools…]` or when it
/// names a known agent (by email or name); otherwise it credits a human helper.
fn read_assisted_by(registry: &AgentRegistry, ev: &mut MessageEvidence, key: &str, value: &str) {
    let first = value.split_whitespace().next().unwrap_or_default();
    if let Some((agent, model)) = first.split_once(':')
        && !agent.is_empty()
        && !model.is_empty()
        && !first.contains('@')
        && !first.contains('<')
    {
        ev.add_agent(
            registry.slug_for_name(agent),
            Some(model.to_string()),
            Source::Trailer,
            key,
        );
        return;
    }
    let person = parse_name_email(value);
    if let Some(agent) = person
        .as_ref()
        .and_then(|p| registry.agent_for_email(&p.email))
    {
        let model = model_from_name(agent, &person.as_ref().unwrap().name);
        ev.add_agent(agent.to_string(), model, Source::Trailer, key);
        return;
    }
    // A person's name with an email is a human helper, whatever the name is
    // (`Kimi Räikkönen <kimi@example.org>`); a bare name or model counts when it
    // names a known agent or model family (`Opus 4.7`, `o3`, `Gemini 2.5 Pro`).
    if person.is_none()
        && let Some(agent) = registry.agent_named_in(value)
    {
        ev.add_agent(agent, model_in_text(value), Source::Trailer, key);
        return;
    }
    match person {
        Some(person) => ev.add_human(person),
        None => ev.add_human(Person {
            name: value.to_string(),
            email: String::new(),
        }),
    }
}

/// `Name <email>`, tolerating a missing or doubled `>`; a bare address is accepted too.
pub fn parse_name_email(value: &str) -> Option<Person> {
    let value = value.trim();
    if let Some(open) = value.rfind('<') {
        let name = value[..open].trim().to_string();
        let email = value[open + 1..].trim_end_matches('>').trim().to_string();
        return email.contains('@').then_some(Person { name, email });
    }
    let bare = value.trim_matches(|c| c == '<' || c == '>');
    (bare.contains('@') && !bare.contains(' ')).then(|| Person {
        name: String::new(),
        email: bare.to_string(),
    })
}

/// The model an agent's display name mentions: `aider (gpt-5.4)` → `gpt-5.4`,
/// `Claude Opus 4.6 (1M context)` → `claude-opus-4.6`, `Cursor Agent` → none.
pub fn model_from_name(agent: &str, name: &str) -> Option<String> {
    let (base, paren) = match name.split_once('(') {
        Some((base, rest)) => (base.trim(), Some(rest.trim_end_matches(')').trim())),
        None => (name.trim(), None),
    };
    if let Some(inner) = paren
        && !inner.is_empty()
        && !inner.to_lowercase().contains("context")
    {
        return Some(inner.to_string());
    }
    let generic: Vec<&str> = agent.split('-').chain(["agent", "bot", "[bot]"]).collect();
    let remainder: Vec<&str> = base
        .split_whitespace()
        .filter(|w| !generic.contains(&w.to_lowercase().as_str()))
        .collect();
    let has_version = remainder
        .iter()
        .any(|w| w.chars().any(|c| c.is_ascii_digit()));
    if !has_version {
        return None;
    }
    // Keep the family word ("Claude Opus 4.6") when the agent's name is one.
    let words: Vec<&str> = base
        .split_whitespace()
        .filter(|w| {
            !["agent", "bot", "[bot]", "codex", "code"].contains(&w.to_lowercase().as_str())
        })
        .collect();
    Some(slugify(&words.join(" ")))
}

/// A model named in free text, when it carries a version: `ChatGPT 5` → `chatgpt-5`.
fn model_in_text(text: &str) -> Option<String> {
    let text = text.split('<').next().unwrap_or(text).trim();
    text.chars()
        .any(|c| c.is_ascii_digit())
        .then(|| slugify(text))
}

/// `12400`, `12,400`, `12.4k`, `1.2M` → a whole number of tokens.
pub fn parse_token_count(value: &str) -> Option<u64> {
    let cleaned: String = value
        .trim()
        .chars()
        .filter(|c| *c != ',' && *c != '_' && *c != ' ')
        .collect();
    let (number, factor) = match cleaned.chars().last()? {
        'k' | 'K' => (&cleaned[..cleaned.len() - 1], 1_000.0),
        'm' | 'M' => (&cleaned[..cleaned.len() - 1], 1_000_000.0),
        _ => (cleaned.as_str(), 1.0),
    };
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let n: f64 = number.parse().ok()?;
    let total = (n * factor).round();
    (0.0..1e15).contains(&total).then_some(total as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HUMAN: (&str, &str) = ("Jane Doe", "jane@example.com");

    fn read_msg(message: &str) -> MessageEvidence {
        read(&AgentRegistry::default(), message, HUMAN, HUMAN)
    }

    type AgentModel = (String, Option<String>);

    fn agents(ev: &MessageEvidence) -> Vec<AgentModel> {
        ev.agents
            .iter()
            .map(|a| (a.agent.clone(), a.model.clone()))
            .collect()
    }

    fn a(agent: &str, model: Option<&str>) -> AgentModel {
        (agent.to_string(), model.map(str::to_string))
    }

    /// The texts real tools write, and what they must attribute.
    #[test]
    fn conventions_of_real_tools() {
        let cases: Vec<(&str, &str, Vec<AgentModel>)> = vec![
            (
                "claude code",
                "feat: add retry\n\nWrap the call.\n\n🤖 Generated with [Claude Code](https://claude.com/claude-code)\n\nCo-Authored-By: Claude <noreply@anthropic.com>\n",
                vec![a("claude-code", None)],
            ),
            (
                "claude code naming the model",
                "fix: x\n\nCo-Authored-By: Claude Opus 4.5 <noreply@anthropic.com>\n",
                vec![a("claude-code", Some("claude-opus-4.5"))],
            ),
            (
                "claude code with context size",
                "fix: x\n\nCo-Authored-By: Claude Opus 4.6 (1M context) <noreply@anthropic.com>\n",
                vec![a("claude-code", Some("claude-opus-4.6"))],
            ),
            (
                "claude github app",
                "Fix\n\nCo-authored-by: claude[bot] <209825114+claude[bot]@users.noreply.github.com>\n",
                vec![a("claude-code", None)],
            ),
            (
                "aider co-author with model",
                "feat: parse\n\nCo-authored-by: aider (openrouter/anthropic/claude-3.7-sonnet) <aider@aider.chat>\n",
                vec![a("aider", Some("openrouter/anthropic/claude-3.7-sonnet"))],
            ),
            (
                "aider newer form",
                "refactor: y\n\nCo-authored-by: aider (gpt-5.4) <noreply@aider.chat>\n",
                vec![a("aider", Some("gpt-5.4"))],
            ),
            (
                "copilot co-author",
                "Add tests\n\nCo-authored-by: Copilot <175728472+Copilot@users.noreply.github.com>\n",
                vec![a("copilot", None)],
            ),
            (
                "cursor",
                "feat: z\n\nCo-authored-by: Cursor Agent <cursoragent@cursor.com>\n",
                vec![a("cursor", None)],
            ),
            (
                "codex",
                "fix: q\n\nCo-authored-by: GPT-5 Codex <codex@openai.com>\n",
                vec![a("codex", Some("gpt-5"))],
            ),
            (
                "amp with thread link",
                "feat: w\n\nAmp-Thread-ID: https://ampcode.com/threads/T-1234\nCo-authored-by: Amp <amp@ampcode.com>\n",
                vec![a("amp", None)],
            ),
            (
                "opencode with a doubled >",
                "fix: e\n\nCo-authored-by: opencode <noreply@opencode.ai>>\n",
                vec![a("opencode", None)],
            ),
            (
                "kernel Assisted-by",
                "mm: fix leak\n\nAssisted-by: Claude:claude-3-opus coccinelle sparse\nSigned-off-by: Dev <dev@kernel.org>\n",
                vec![a("claude-code", Some("claude-3-opus"))],
            ),
            (
                "Generated-by (Apache)",
                "Add feature\n\nGenerated-by: ChatGPT 5\n",
                vec![a("chatgpt", Some("chatgpt-5"))],
            ),
            (
                "Generated-By capitalised",
                "Add feature\n\nGenerated-By: GitHub Copilot\n",
                vec![a("copilot", None)],
            ),
            (
                "Made-with",
                "Tweak\n\nMade-with: Cursor\n",
                vec![a("cursor", None)],
            ),
            (
                "Ai-assisted: true",
                "Tweak\n\nAi-assisted: true\n",
                vec![a("unknown", None)],
            ),
            (
                "project trailer with model",
                "refactor: split\n\nAI-Assisted: claude-code (claude-sonnet-4.5)\nAI-Kind: refactor\nAI-Tokens: 12.4k\n",
                vec![a("claude-code", Some("claude-sonnet-4.5"))],
            ),
            (
                "keys in every case",
                "x\n\nCO-AUTHORED-BY: Claude <noreply@anthropic.com>\nCo-Authored-by: aider <aider@aider.chat>\n",
                vec![a("claude-code", None), a("aider", None)],
            ),
            (
                "human named Claude",
                "x\n\nCo-authored-by: Claude Shannon <claude@shannon.example>\n",
                vec![],
            ),
            (
                "git.git human Assisted-by",
                "doc: fix typo\n\nAssisted-by: Junio C Hamano <gitster@pobox.com>\nSigned-off-by: A <a@b.c>\n",
                vec![],
            ),
            (
                "prose that looks like trailers",
                "Explain the protocol\n\nUSER: sends hello\nfeat: a word, not a trailer\n",
                vec![],
            ),
            (
                "Fixes with an issue URL is no agent",
                "fix: x\n\nFixes: https://github.com/o/r/issues/7\n",
                vec![],
            ),
        ];
        for (name, message, expected) in cases {
            let ev = read_msg(message);
            assert_eq!(agents(&ev), expected, "{name}");
        }
    }

    #[test]
    fn a_model_named_alone_is_ai_evidence_from_its_vendor() {
        let cases = [
            ("Assisted-by: Opus 4.7", a("claude-code", Some("opus-4.7"))),
            (
                "Assisted-by: Sonnet 4.5",
                a("claude-code", Some("sonnet-4.5")),
            ),
            (
                "Assisted-by: Claude Haiku 4.5",
                a("claude-code", Some("claude-haiku-4.5")),
            ),
            ("Generated-by: GPT-5.4", a("chatgpt", Some("gpt-5.4"))),
            ("Assisted-by: o3", a("chatgpt", Some("o3"))),
            ("Assisted-by: o4-mini", a("chatgpt", Some("o4-mini"))),
            (
                "Assisted-by: Gemini 2.5 Pro",
                a("gemini", Some("gemini-2.5-pro")),
            ),
            (
                "Assisted-by: GPT-5 Codex",
                a("chatgpt", Some("gpt-5-codex")),
            ),
            ("Assisted-by: Codex", a("codex", None)),
            ("Assisted-by: Qwen3-Coder", a("qwen", Some("qwen3-coder"))),
            (
                "Assisted-by: DeepSeek V3",
                a("deepseek", Some("deepseek-v3")),
            ),
            (
                "Assisted-by: Llama 4 Maverick",
                a("llama", Some("llama-4-maverick")),
            ),
            (
                "Assisted-by: Mistral Large 2",
                a("mistral", Some("mistral-large-2")),
            ),
            ("Assisted-by: Grok 4", a("grok", Some("grok-4"))),
            ("Assisted-by: Kimi K2", a("kimi", Some("kimi-k2"))),
            ("Assisted-by: GLM-4.6", a("glm", Some("glm-4.6"))),
        ];
        for (trailer, expected) in cases {
            let ev = read_msg(&format!("fix: x\n\n{trailer}\n"));
            assert_eq!(agents(&ev), vec![expected], "{trailer}");
        }
        // A person (name and email) stays a human helper, whatever the name is.
        for trailer in [
            "Assisted-by: Kimi Räikkönen <kimi@example.org>",
            "Assisted-by: Claude Monet <claude@example.org>",
            "Assisted-by: Junio C Hamano <gitster@pobox.com>",
        ] {
            let ev = read_msg(&format!("fix: x\n\n{trailer}\n"));
            assert!(agents(&ev).is_empty(), "{trailer}");
            assert_eq!(ev.humans.len(), 1, "{trailer}");
        }
        // Ordinary words are not models.
        for trailer in ["Assisted-by: the team", "Assisted-by: code review"] {
            let ev = read_msg(&format!("fix: x\n\n{trailer}\n"));
            assert!(agents(&ev).is_empty(), "{trailer}");
        }
    }

    #[test]
    fn project_trailers_carry_kind_tokens_and_denial() {
        let ev = read_msg(
            "refactor: split\n\nAI-Assisted: claude-code (claude-sonnet-4.5)\nAI-Kind: Refactor\nAI-Tokens: 12.4k\n",
        );
        assert_eq!(ev.declared_kind, Some(Kind::Refactor));
        assert_eq!(ev.usage_tokens, Some(12_400));
        assert_eq!(ev.model(), Some("claude-sonnet-4.5"));
        assert!(ev.warnings.is_empty(), "{:?}", ev.warnings);

        let ev = read_msg("chore: x\n\nAI-Assisted: no\n");
        assert!(ev.declared_not_ai);
        assert!(ev.agents.is_empty());
        for denial in ["false", "None", "NO"] {
            assert!(read_msg(&format!("x\n\nAI-Assisted: {denial}\n")).declared_not_ai);
        }
    }

    #[test]
    fn malformed_values_warn_instead_of_guessing() {
        let ev = read_msg(
            "x\n\nAI-Assisted: aider\nAI-Tokens: lots\nAI-Kind: improvement\nCo-authored-by: Somebody\n",
        );
        assert_eq!(ev.usage_tokens, None, "never a silent zero");
        assert_eq!(ev.declared_kind, None);
        assert_eq!(ev.warnings.len(), 3, "{:?}", ev.warnings);
        assert!(
            ev.warnings[0].contains("AI-Tokens: \"lots\""),
            "{:?}",
            ev.warnings
        );
        assert!(ev.warnings.iter().any(|w| w.contains("improvement")));
        assert!(ev.warnings.iter().any(|w| w.contains("no email")));
    }

    #[test]
    fn token_counts() {
        let cases = [
            ("12400", Some(12_400)),
            ("12,400", Some(12_400)),
            ("12.4k", Some(12_400)),
            ("12.4K", Some(12_400)),
            ("1.2M", Some(1_200_000)),
            ("3m", Some(3_000_000)),
            ("0", Some(0)),
            ("lots", None),
            ("", None),
            ("-5", None),
            ("1e9", None),
            ("k", None),
            ("1.2.3k", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_token_count(text), expected, "{text:?}");
        }
    }

    #[test]
    fn squash_merge_bodies_count_but_indented_lines_do_not() {
        let message = "Add exporter (#42)\n\n* first step\n\nCo-authored-by: Claude <noreply@anthropic.com>\n\n* second step\n\n  Patch-generated-by: Coccinelle\n  Co-authored-by: aider <aider@aider.chat>\n\nSigned-off-by: Jane <jane@example.com>\n";
        let ev = read_msg(message);
        assert_eq!(agents(&ev), vec![a("claude-code", None)]);
        assert_eq!(ev.agents[0].source, Source::Body);
    }

    #[test]
    fn one_agent_named_twice_is_one_agent() {
        let registry = AgentRegistry::default();
        let ev = read(
            &registry,
            "x\n\nCo-Authored-By: Claude <noreply@anthropic.com>\nCo-Authored-By: Claude <noreply@anthropic.com>\n",
            ("Claude", "noreply@anthropic.com"),
            HUMAN,
        );
        assert_eq!(agents(&ev), vec![a("claude-code", None)]);
    }

    #[test]
    fn agent_authors_and_aider_names() {
        let registry = AgentRegistry::default();
        let ev = read(
            &registry,
            "Implement x\n\nCo-authored-by: octocat <583231+octocat@users.noreply.github.com>\n",
            ("Copilot", "198982749+Copilot@users.noreply.github.com"),
            ("GitHub", "noreply@github.com"),
        );
        assert_eq!(agents(&ev), vec![a("copilot", None)]);
        assert_eq!(ev.agents[0].source, Source::Author);
        assert_eq!(
            ev.humans[0].email,
            "583231+octocat@users.noreply.github.com"
        );

        let ev = read(
            &registry,
            "x",
            ("Jane Doe (aider)", "jane@example.com"),
            HUMAN,
        );
        assert_eq!(agents(&ev), vec![a("aider", None)]);
        let ev = read(
            &registry,
            "x",
            HUMAN,
            ("Jane Doe (aider)", "jane@example.com"),
        );
        assert_eq!(ev.agents[0].source, Source::Committer);
    }

    #[test]
    fn links_humans_and_fixes_are_kept() {
        let ev = read_msg(
            "fix: y\n\nFixes: 0123abcd4567 (\"feat: x\")\nFixes: #12\nCopilot-Session: https://github.com/s/1\nAgent-Logs-Url: https://logs.example/2\nCo-authored-by: Bob <bob@example.com>\n",
        );
        assert_eq!(ev.fixes, ["0123abcd4567 (\"feat: x\")", "#12"]);
        assert_eq!(ev.links.len(), 2);
        assert_eq!(
            ev.humans,
            [Person {
                name: "Bob".into(),
                email: "bob@example.com".into()
            }]
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        /// Pieces real messages are made of, including the awkward ones.
        const PIECES: &[&str] = &[
            "Co-authored-by: Claude <noreply@anthropic.com>",
            "Co-Authored-By: aider (gpt-5) <aider@aider.chat>>",
            "co-authored-by: <",
            "Co-authored-by: >x@y<",
            "AI-Tokens: 12.4k",
            "AI-Tokens: 99999999999999999999999M",
            "AI-Tokens: .k",
            "AI-Assisted: (",
            "AI-Assisted: x (",
            "AI-Kind: ",
            "Assisted-by: :",
            "Assisted-by: a:b c",
            "Generated-by: ",
            "Made-with:",
            "Fixes: ",
            "Fixes: abcdef0 (\"x\")",
            "This reverts commit 0123456789abcdef.",
            "Revert \"",
            "Reapply \"\"",
            "  indented: value",
            ":",
            "",
            "\u{0}",
            "é: ü",
            "Signed-off-by: A <a@b>",
        ];

        proptest! {
            #[test]
            fn reading_never_panics(message in ".*", name in ".*", email in ".*") {
                let _ = read(&AgentRegistry::default(), &message, (&name, &email), (&name, &email));
                let _ = crate::attribution::links::revert_refs(&message);
                let _ = crate::attribution::links::fixes_sha(&message);
                let _ = parse_token_count(&message);
                let _ = model_from_name("claude-code", &name);
            }

            #[test]
            fn trailer_shaped_messages_never_panic(
                lines in proptest::collection::vec(proptest::sample::select(PIECES), 0..12),
                noise in ".{0,20}",
            ) {
                let message = format!("{noise}\n\n{}", lines.join("\n"));
                let ev = read(&AgentRegistry::default(), &message, ("a", "b"), ("c", "d"));
                // One entry per agent, whatever the message repeats.
                let mut agents: Vec<&str> = ev.agents.iter().map(|a| a.agent.as_str()).collect();
                let before = agents.len();
                agents.dedup();
                agents.sort();
                agents.dedup();
                prop_assert_eq!(agents.len(), before);
            }
        }
    }
}
