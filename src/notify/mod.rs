//! What the service sends out: the weekly digest to Discord ([`digests`] over
//! [`discord`]) and the pull-request comment on GitHub ([`pr_comment`]).

pub mod digests;
pub mod discord;
pub mod pr_comment;
