//! Talking to git remotes: which remotes a signed payload may make the service
//! fetch, and where the GitHub token may be sent.

pub mod remote;
