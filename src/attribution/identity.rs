//! Who a commit email belongs to: people configured in `[[people]]`, GitHub
//! noreply addresses (`12345+login@users.noreply.github.com` → `@login`), or
//! else the address itself (unknown authors become people by email).
//!
//! The three kinds of key never collide: configured names contain no `@`,
//! GitHub logins are written `@login`, and emails have an `@` after their first
//! character. So a stranger whose login is `maria` is `@maria`, never the
//! configured person `maria` (and never gets her Discord id).

use std::collections::HashMap;

use serde::Deserialize;

/// `[[people]]` in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonConfig {
    pub name: String,
    #[serde(default)]
    pub emails: Vec<String>,
    pub github: Option<String>,
    pub discord: Option<String>,
    /// Whether they get a DM when their tokens vest, are clawed back or
    /// are paid (with `discord.dm`); `dm = false` opts out.
    #[serde(default = "yes")]
    pub dm: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default)]
pub struct Directory {
    people: Vec<PersonConfig>,
    by_email: HashMap<String, usize>,
    by_login: HashMap<String, usize>,
}

impl Directory {
    pub fn new(people: &[PersonConfig]) -> Directory {
        let mut dir = Directory {
            people: people.to_vec(),
            ..Directory::default()
        };
        for (i, person) in people.iter().enumerate() {
            for email in &person.emails {
                dir.by_email.insert(email.trim().to_lowercase(), i);
            }
            if let Some(login) = &person.github {
                dir.by_login.insert(login.to_lowercase(), i);
            }
        }
        dir
    }

    /// The key a person is known by: their configured name, their GitHub login, or
    /// their email address (lower case).
    pub fn person_for_email(&self, email: &str) -> String {
        let email = email.trim().to_lowercase();
        if let Some(i) = self.by_email.get(&email) {
            return self.people[*i].name.clone();
        }
        if let Some(login) = github_login_from_email(&email) {
            return match self.by_login.get(&login.to_lowercase()) {
                Some(i) => self.people[*i].name.clone(),
                None => login_key(&login),
            };
        }
        email
    }
}

impl Directory {
    /// The key of the person with this GitHub login (configured name, else `@login`).
    pub fn person_for_login(&self, login: &str) -> String {
        match self.by_login.get(&login.to_lowercase()) {
            Some(i) => self.people[*i].name.clone(),
            None => login_key(login),
        }
    }
}

/// Whether a person key is a raw email address (nobody in `[[people]]` owns
/// it and it is not a GitHub noreply address).
pub fn is_unmapped(key: &str) -> bool {
    !key.starts_with('@') && key.contains('@')
}

/// A person as public messages (Discord, pull-request comments) show them: a
/// configured name or `@login` as is, a raw email never — its local part cut
/// to five characters and masked: `sam.okafor@gmail.com` → `sam.o…`.
pub fn public_name(key: &str) -> String {
    if !is_unmapped(key) {
        return key.to_string();
    }
    let local = key.split('@').next().unwrap_or_default();
    let keep = local
        .chars()
        .count()
        .min(5)
        .min(local.chars().count().saturating_sub(1))
        .max(1);
    format!("{}…", local.chars().take(keep).collect::<String>())
}

/// The key of a person known only by a GitHub login: `@login`, lower case
/// (GitHub logins are case-insensitive).
pub fn login_key(login: &str) -> String {
    format!("@{}", login.trim_start_matches('@').to_lowercase())
}

/// Why a configured person's name cannot be a key, if it cannot.
pub fn invalid_person_name(name: &str) -> Option<&'static str> {
    if name.trim().is_empty() {
        Some("a person needs a name")
    } else if name.contains('@') {
        Some(
            "a configured name may not contain `@` (that would read as a GitHub login or an email)",
        )
    } else if name.chars().any(char::is_control) {
        Some("a configured name may not contain control characters")
    } else {
        None
    }
}

/// The login in a GitHub noreply address (`12345+login@…` or `login@…`).
pub fn github_login_from_email(email: &str) -> Option<String> {
    let local = email
        .trim()
        .to_lowercase()
        .strip_suffix("@users.noreply.github.com")?
        .to_string();
    let login = local
        .split_once('+')
        .map(|(_, l)| l.to_string())
        .unwrap_or(local);
    (!login.is_empty()).then_some(login)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_emails_are_never_shown_in_public() {
        assert_eq!(public_name("sam.okafor@gmail.com"), "sam.o…");
        assert_eq!(public_name("al@x.io"), "a…");
        assert_eq!(public_name("ada"), "ada");
        assert_eq!(public_name("@octocat"), "@octocat");
        assert!(is_unmapped("sam.okafor@gmail.com"));
        assert!(!is_unmapped("@octocat") && !is_unmapped("ada"));
    }

    #[test]
    fn people_logins_and_strangers() {
        let dir = Directory::new(&[PersonConfig {
            name: "maria".into(),
            emails: vec!["Maria@Example.com".into()],
            github: Some("mgarcia".into()),
            discord: Some("123".into()),
            dm: true,
        }]);
        assert_eq!(dir.person_for_email("maria@example.com"), "maria");
        assert_eq!(
            dir.person_for_email("999+MGarcia@users.noreply.github.com"),
            "maria"
        );
        assert_eq!(
            dir.person_for_email("5+kenji@users.noreply.github.com"),
            "@kenji"
        );
        assert_eq!(dir.person_for_email("sam@users.noreply.github.com"), "@sam");
        assert_eq!(dir.person_for_email("Lee@Corp.example"), "lee@corp.example");
        assert_eq!(dir.person_for_login("MGarcia"), "maria");
        assert_eq!(dir.person_for_login("Kenji"), "@kenji");
    }

    #[test]
    fn a_stranger_named_like_a_configured_person_stays_a_stranger() {
        let dir = Directory::new(&[PersonConfig {
            name: "maria".into(),
            emails: vec![],
            github: Some("mgarcia".into()),
            discord: Some("123".into()),
            dm: true,
        }]);
        // GitHub user "maria" is somebody else than the configured maria.
        assert_eq!(dir.person_for_login("maria"), "@maria");
        assert_eq!(
            dir.person_for_email("7+maria@users.noreply.github.com"),
            "@maria"
        );
        assert!(invalid_person_name("maria").is_none());
        assert!(invalid_person_name("@maria").is_some());
        assert!(invalid_person_name("m@x.org").is_some());
        assert!(invalid_person_name(" ").is_some());
    }
}
