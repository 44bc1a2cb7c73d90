//! The agent registry: which commit emails and names belong to AI coding agents.
//!
//! Agents are recognised by **email** (display names vary with the model and
//! are easy to imitate: a human named Claude is not an agent). Names are only
//! used to read the model and to recognise agents named in free-text trailers
//! (`Assisted-by:`, `Generated-by:`, `AI-Assisted:`).

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Deserialize;

/// An agent configured in `[[agents]]`: its slug and the email patterns (`*` wildcard).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub name: String,
    pub emails: Vec<String>,
}

/// Built-in email patterns (case-insensitive, `*` matches any run of characters).
const BUILTIN_EMAILS: &[(&str, &str)] = &[
    ("noreply@anthropic.com", "claude-code"),
    ("*+claude[bot]@users.noreply.github.com", "claude-code"),
    ("aider@aider.chat", "aider"),
    ("noreply@aider.chat", "aider"),
    ("noreply@aider.dev", "aider"),
    ("*+copilot@users.noreply.github.com", "copilot"),
    ("*copilot-swe-agent[bot]*", "copilot"),
    ("cursoragent@cursor.com", "cursor"),
    ("noreply@openai.com", "codex"),
    ("codex@openai.com", "codex"),
    ("amp@ampcode.com", "amp"),
    ("noreply@opencode.ai", "opencode"),
    ("*devin-ai-integration[bot]*", "devin"),
    ("*google-labs-jules[bot]*", "jules"),
    ("openhands@all-hands.dev", "openhands"),
    ("*gemini-code-assist[bot]*", "gemini"),
];

/// Names (lower case) by which trailers refer to agents, and the slug each means.
const NAME_ALIASES: &[(&str, &str)] = &[
    ("claude", "claude-code"),
    ("claude code", "claude-code"),
    ("claude-code", "claude-code"),
    ("claude-cli", "claude-code"),
    ("anthropic", "claude-code"),
    ("aider", "aider"),
    ("copilot", "copilot"),
    ("github copilot", "copilot"),
    ("copilot-swe-agent", "copilot"),
    ("cursor", "cursor"),
    ("cursor agent", "cursor"),
    ("cursoragent", "cursor"),
    ("codex", "codex"),
    ("openai codex", "codex"),
    ("codex-cli", "codex"),
    ("chatgpt", "chatgpt"),
    ("gpt", "chatgpt"),
    ("amp", "amp"),
    ("opencode", "opencode"),
    ("devin", "devin"),
    ("jules", "jules"),
    ("openhands", "openhands"),
    ("gemini", "gemini"),
    ("gemini code assist", "gemini"),
    ("gemini-cli", "gemini"),
    ("windsurf", "windsurf"),
    ("cline", "cline"),
];

/// Words that name an AI model family or agent inside free text
/// (`Assisted-by: GPT-4o`, `Generated-by: ChatGPT 5`).
const FAMILY_WORDS: &[(&str, &str)] = &[
    ("claude", "claude-code"),
    ("anthropic", "claude-code"),
    ("gpt", "chatgpt"),
    ("chatgpt", "chatgpt"),
    ("openai", "chatgpt"),
    ("codex", "codex"),
    ("gemini", "gemini"),
    ("copilot", "copilot"),
    ("cursor", "cursor"),
    ("aider", "aider"),
    ("devin", "devin"),
    ("jules", "jules"),
    ("openhands", "openhands"),
    ("opencode", "opencode"),
    ("windsurf", "windsurf"),
    ("cline", "cline"),
    ("llama", "llama"),
    ("mistral", "mistral"),
    ("codestral", "mistral"),
    ("deepseek", "deepseek"),
    ("qwen", "qwen"),
    ("grok", "grok"),
    // Model families named alone (`Assisted-by: Opus 4.7`, `Assisted-by: o3`):
    // the agent is the family's vendor's.
    ("opus", "claude-code"),
    ("sonnet", "claude-code"),
    ("haiku", "claude-code"),
    ("o1", "chatgpt"),
    ("o3", "chatgpt"),
    ("o4", "chatgpt"),
    ("gemma", "gemini"),
    ("kimi", "kimi"),
    ("moonshot", "kimi"),
    ("glm", "glm"),
    ("zhipu", "glm"),
    ("minimax", "minimax"),
    ("phi", "phi"),
    ("nemotron", "nemotron"),
];

#[derive(Debug)]
pub struct AgentRegistry {
    /// (pattern, slug); configured entries first so they override built-ins.
    emails: Vec<(Wildcard, String)>,
    /// Slugs of configured agents, recognised by name too.
    configured_names: Vec<String>,
    /// Email as written → index of the matching pattern. A history has few distinct
    /// emails and many commits, so each is matched against the patterns once.
    memo: Mutex<HashMap<String, Option<usize>>>,
}

/// Past this many distinct emails the memo starts over, so it cannot grow without bound.
const MEMO_LIMIT: usize = 100_000;

impl Clone for AgentRegistry {
    fn clone(&self) -> Self {
        AgentRegistry {
            emails: self.emails.clone(),
            configured_names: self.configured_names.clone(),
            memo: Mutex::new(HashMap::new()),
        }
    }
}

impl Default for AgentRegistry {
    fn default() -> Self {
        AgentRegistry::new(&[])
    }
}

impl AgentRegistry {
    pub fn new(configured: &[AgentConfig]) -> Self {
        let mut emails = Vec::new();
        for agent in configured {
            for pattern in &agent.emails {
                emails.push((Wildcard::new(pattern), agent.name.clone()));
            }
        }
        emails.extend(
            BUILTIN_EMAILS
                .iter()
                .map(|(p, s)| (Wildcard::new(p), s.to_string())),
        );
        AgentRegistry {
            emails,
            configured_names: configured.iter().map(|a| a.name.to_lowercase()).collect(),
            memo: Mutex::new(HashMap::new()),
        }
    }

    /// The agent an email belongs to.
    pub fn agent_for_email(&self, email: &str) -> Option<&str> {
        let mut memo = self
            .memo
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let index = match memo.get(email) {
            Some(index) => *index,
            None => {
                let lower = email.trim().to_lowercase();
                let index = self
                    .emails
                    .iter()
                    .position(|(pattern, _)| pattern.matches(&lower));
                if memo.len() >= MEMO_LIMIT {
                    memo.clear();
                }
                memo.insert(email.to_string(), index);
                index
            }
        };
        index.map(|i| self.emails[i].1.as_str())
    }

    /// The slug an agent name in a trailer means (`Claude` → `claude-code`); unknown
    /// names become their own slug (`Some Tool` → `some-tool`).
    pub fn slug_for_name(&self, name: &str) -> String {
        let lower = name.trim().to_lowercase();
        if let Some((_, slug)) = NAME_ALIASES.iter().find(|(alias, _)| *alias == lower) {
            return slug.to_string();
        }
        if let Some(configured) = self.configured_names.iter().find(|n| **n == lower) {
            return configured.clone();
        }
        slugify(&lower)
    }

    /// The agent a free-text value names, by a known agent or model-family word.
    pub fn agent_named_in(&self, text: &str) -> Option<String> {
        let lower = text.to_lowercase();
        for word in lower.split(|c: char| !c.is_ascii_alphanumeric()) {
            // `qwen3`, `llama3`, `gpt4o` name their family with the version attached.
            let family = word
                .find(|c: char| c.is_ascii_digit())
                .map(|i| &word[..i])
                .filter(|prefix| prefix.len() >= 3);
            if let Some((_, slug)) = FAMILY_WORDS
                .iter()
                .find(|(w, _)| *w == word || Some(*w) == family)
            {
                return Some(slug.to_string());
            }
            if let Some(configured) = self.configured_names.iter().find(|n| **n == word) {
                return Some(configured.clone());
            }
        }
        None
    }
}

/// Lower-case, runs of anything but letters, digits and dots become one `-`.
pub fn slugify(text: &str) -> String {
    let mut out = String::new();
    for c in text.trim().to_lowercase().chars() {
        if c.is_alphanumeric() || c == '.' {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// A lower-case pattern where `*` matches any run of characters, split once at
/// the stars so matching an email allocates nothing.
#[derive(Debug, Clone)]
struct Wildcard {
    parts: Vec<String>,
}

impl Wildcard {
    fn new(pattern: &str) -> Wildcard {
        Wildcard {
            parts: pattern
                .to_lowercase()
                .split('*')
                .map(str::to_string)
                .collect(),
        }
    }

    fn matches(&self, text: &str) -> bool {
        let parts = &self.parts;
        if parts.len() == 1 {
            return parts[0] == text;
        }
        let (first, last) = (&parts[0], &parts[parts.len() - 1]);
        if text.len() < first.len() + last.len()
            || !text.starts_with(first.as_str())
            || !text.ends_with(last.as_str())
        {
            return false;
        }
        let mut rest = &text[first.len()..text.len() - last.len()];
        for middle in &parts[1..parts.len() - 1] {
            match rest.find(middle.as_str()) {
                Some(at) => rest = &rest[at + middle.len()..],
                None => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_emails() {
        let r = AgentRegistry::default();
        let cases = [
            ("noreply@anthropic.com", Some("claude-code")),
            ("NoReply@Anthropic.com", Some("claude-code")),
            (
                "209825114+claude[bot]@users.noreply.github.com",
                Some("claude-code"),
            ),
            ("aider@aider.chat", Some("aider")),
            ("noreply@aider.dev", Some("aider")),
            (
                "223556219+Copilot@users.noreply.github.com",
                Some("copilot"),
            ),
            (
                "175728472+Copilot@users.noreply.github.com",
                Some("copilot"),
            ),
            (
                "198982749+Copilot@users.noreply.github.com",
                Some("copilot"),
            ),
            (
                "198982749+copilot-swe-agent[bot]@users.noreply.github.com",
                Some("copilot"),
            ),
            ("cursoragent@cursor.com", Some("cursor")),
            ("codex@openai.com", Some("codex")),
            ("noreply@openai.com", Some("codex")),
            ("amp@ampcode.com", Some("amp")),
            ("noreply@opencode.ai", Some("opencode")),
            (
                "158243242+devin-ai-integration[bot]@users.noreply.github.com",
                Some("devin"),
            ),
            (
                "161369871+google-labs-jules[bot]@users.noreply.github.com",
                Some("jules"),
            ),
            ("openhands@all-hands.dev", Some("openhands")),
            (
                "176961590+gemini-code-assist[bot]@users.noreply.github.com",
                Some("gemini"),
            ),
            // Look-alikes that are people.
            ("claude@example.com", None),
            ("claude.monet@gmail.com", None),
            ("12345+copilotfan@users.noreply.github.com", None),
            ("noreply@anthropic.com.evil.org", None),
            ("", None),
        ];
        for (email, expected) in cases {
            assert_eq!(r.agent_for_email(email), expected, "{email}");
        }
    }

    #[test]
    fn configured_agents_extend_and_override() {
        let r = AgentRegistry::new(&[
            AgentConfig {
                name: "internal-bot".into(),
                emails: vec!["bot@corp.example".into(), "*+ai@corp.example".into()],
            },
            AgentConfig {
                name: "claude-enterprise".into(),
                emails: vec!["noreply@anthropic.com".into()],
            },
        ]);
        assert_eq!(r.agent_for_email("bot@corp.example"), Some("internal-bot"));
        assert_eq!(r.agent_for_email("7+ai@corp.example"), Some("internal-bot"));
        assert_eq!(
            r.agent_for_email("noreply@anthropic.com"),
            Some("claude-enterprise")
        );
        assert_eq!(r.agent_for_email("aider@aider.chat"), Some("aider"));
        assert_eq!(r.slug_for_name("Internal-Bot"), "internal-bot");
    }

    #[test]
    fn names_and_families() {
        let r = AgentRegistry::default();
        assert_eq!(r.slug_for_name("Claude"), "claude-code");
        assert_eq!(r.slug_for_name("claude-code"), "claude-code");
        assert_eq!(r.slug_for_name("Cursor Agent"), "cursor");
        assert_eq!(r.slug_for_name("Some Tool"), "some-tool");
        assert_eq!(r.agent_named_in("ChatGPT 5").as_deref(), Some("chatgpt"));
        assert_eq!(
            r.agent_named_in("GPT-4o via API").as_deref(),
            Some("chatgpt")
        );
        assert_eq!(r.agent_named_in("Junio C Hamano <gitster@pobox.com>"), None);
        assert_eq!(r.agent_named_in("Claudette Smith"), None);
    }

    #[test]
    fn wildcards() {
        let m = |p: &str, t: &str| Wildcard::new(p).matches(t);
        assert!(m("a*c", "abc"));
        assert!(m("a*c", "ac"));
        assert!(m("*x*", "abxcd"));
        assert!(m("A*C", "abc"), "patterns are case-insensitive");
        assert!(!m("a*c", "ab"));
        assert!(!m("ab*ba", "aba"));
        assert!(!m("abc", "abcd"));
        assert_eq!(slugify("  Claude Opus 4.6 "), "claude-opus-4.6");
    }
}
