//! What Discord sends to the interactions endpoint, read into plain data, and
//! the answers it takes. Every answer forbids mentions: nothing tokentally
//! says in chat pings anyone.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use serenity::builder::CreateEmbed;

/// Interaction types Discord sends.
pub const PING: u64 = 1;
pub const APPLICATION_COMMAND: u64 = 2;
pub const MESSAGE_COMPONENT: u64 = 3;

/// Answer types.
const PONG: u64 = 1;
const CHANNEL_MESSAGE: u64 = 4;
const DEFERRED_CHANNEL_MESSAGE: u64 = 5;
const UPDATE_MESSAGE: u64 = 7;
/// Message flag: only the person who asked sees it.
const EPHEMERAL: u64 = 1 << 6;

/// One interaction, as far as tokentally reads it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Interaction {
    pub id: String,
    pub kind: u64,
    /// The application it is for (follow-ups go under it).
    pub application_id: String,
    /// The interaction's token: answers and follow-ups go under it.
    pub token: String,
    /// Who asked (a member's user in a server, the user in a DM).
    pub user_id: Option<String>,
    /// The member's roles (none in a DM).
    pub roles: Vec<String>,
    /// A command's name.
    pub command: Option<String>,
    /// A command's options by name.
    pub options: BTreeMap<String, Value>,
    /// A component's (button's) id.
    pub custom_id: Option<String>,
}

impl Interaction {
    pub fn parse(v: &Value) -> Option<Interaction> {
        let kind = v["type"].as_u64()?;
        let user = if v["member"].is_object() {
            &v["member"]["user"]
        } else {
            &v["user"]
        };
        let options = v["data"]["options"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|o| Some((o["name"].as_str()?.to_string(), o["value"].clone())))
                    .collect()
            })
            .unwrap_or_default();
        Some(Interaction {
            id: v["id"].as_str().unwrap_or_default().to_string(),
            kind,
            application_id: v["application_id"].as_str().unwrap_or_default().to_string(),
            token: v["token"].as_str().unwrap_or_default().to_string(),
            user_id: user["id"].as_str().map(str::to_string),
            roles: v["member"]["roles"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            command: v["data"]["name"].as_str().map(str::to_string),
            options,
            custom_id: v["data"]["custom_id"].as_str().map(str::to_string),
        })
    }

    /// A string option.
    pub fn text(&self, name: &str) -> Option<String> {
        self.options
            .get(name)
            .and_then(|v| v.as_str())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// A number option.
    pub fn number(&self, name: &str) -> Option<f64> {
        self.options.get(name).and_then(Value::as_f64)
    }
}

/// A button under an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Button {
    pub custom_id: String,
    pub label: String,
    /// 1 primary, 2 secondary, 3 success, 4 danger.
    pub style: u64,
}

/// What tokentally answers.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub content: String,
    pub embeds: Vec<CreateEmbed>,
    /// Only the person who asked sees it.
    pub ephemeral: bool,
    pub buttons: Vec<Button>,
    /// Replaces the message whose button was pressed.
    pub update: bool,
}

impl Reply {
    /// A private text answer.
    pub fn private(content: impl Into<String>) -> Reply {
        Reply {
            content: content.into(),
            ephemeral: true,
            ..Reply::default()
        }
    }

    /// The message part: content, embeds, components, no mentions.
    pub fn message(&self) -> Value {
        let mut data = json!({
            "content": self.content,
            "embeds": self.embeds,
            "allowed_mentions": {"parse": []},
            "components": [],
        });
        if !self.buttons.is_empty() {
            let buttons: Vec<Value> = self
                .buttons
                .iter()
                .map(|b| json!({"type": 2, "style": b.style, "label": b.label, "custom_id": b.custom_id}))
                .collect();
            data["components"] = json!([{"type": 1, "components": buttons}]);
        }
        if self.ephemeral {
            data["flags"] = json!(EPHEMERAL);
        }
        data
    }

    /// The interaction response carrying it.
    pub fn response(&self) -> Value {
        let kind = if self.update {
            UPDATE_MESSAGE
        } else {
            CHANNEL_MESSAGE
        };
        json!({"type": kind, "data": self.message()})
    }
}

pub fn pong() -> Value {
    json!({"type": PONG})
}

/// "Thinking…": the answer follows by editing the original response.
pub fn deferred(ephemeral: bool) -> Value {
    if ephemeral {
        json!({"type": DEFERRED_CHANNEL_MESSAGE, "data": {"flags": EPHEMERAL}})
    } else {
        json!({"type": DEFERRED_CHANNEL_MESSAGE})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_command_from_a_server_member() {
        let v = json!({
            "id": "111", "type": 2, "token": "tok",
            "member": {"user": {"id": "42"}, "roles": ["7", "8"]},
            "data": {"name": "redeem", "options": [
                {"name": "tokens", "type": 10, "value": 2.5},
                {"name": "kind", "type": 3, "value": " pto "}
            ]}
        });
        let i = Interaction::parse(&v).unwrap();
        assert_eq!(i.user_id.as_deref(), Some("42"));
        assert_eq!(i.roles, ["7", "8"]);
        assert_eq!(i.command.as_deref(), Some("redeem"));
        assert_eq!(i.number("tokens"), Some(2.5));
        assert_eq!(i.text("kind").as_deref(), Some("pto"));
        assert_eq!(i.text("missing"), None);
        // In a DM the user is at the top.
        let dm = json!({"id": "1", "type": 3, "token": "t", "user": {"id": "9"}, "data": {"custom_id": "x"}});
        let i = Interaction::parse(&dm).unwrap();
        assert_eq!(
            (i.user_id.as_deref(), i.custom_id.as_deref()),
            (Some("9"), Some("x"))
        );
        assert!(Interaction::parse(&json!({"id": "1"})).is_none());
    }

    #[test]
    fn answers_never_mention_anyone() {
        let mut r = Reply::private("hi <@42> @everyone");
        r.buttons.push(Button {
            custom_id: "ok".into(),
            label: "OK".into(),
            style: 3,
        });
        let v = r.response();
        assert_eq!(v["type"], 4);
        assert_eq!(v["data"]["allowed_mentions"], json!({"parse": []}));
        assert_eq!(v["data"]["flags"], 64);
        assert_eq!(
            v["data"]["components"][0]["components"][0]["custom_id"],
            "ok"
        );
        r.update = true;
        assert_eq!(r.response()["type"], 7);
        assert_eq!(deferred(true), json!({"type": 5, "data": {"flags": 64}}));
        assert_eq!(pong(), json!({"type": 1}));
    }
}
