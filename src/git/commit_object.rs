//! A commit object's fields read straight from its bytes, exactly as libgit2
//! reads them, so a walk that has read each commit once gets what
//! `git2::Commit` would give without reading (and inflating) it again.

use git2::{Oid, Time};

/// An author or committer line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawSignature<'a> {
    /// Trimmed as libgit2 trims (spaces, quotes, `<>,:;`), cut at a NUL.
    pub name: &'a [u8],
    pub email: &'a [u8],
    pub when: Time,
}

/// A parsed commit object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawCommit<'a> {
    pub parents: Vec<Oid>,
    pub author: RawSignature<'a>,
    pub committer: RawSignature<'a>,
    /// As `git2::Commit::message_bytes`: leading newlines skipped, cut at a NUL.
    pub message: &'a [u8],
}

/// Parses a commit object's bytes; `None` where libgit2 would refuse it.
pub fn parse(data: &[u8]) -> Option<RawCommit<'_>> {
    let mut rest = data;
    oid_header(&mut rest, b"tree ")?;
    let mut parents = Vec::with_capacity(1);
    while let Some(parent) = oid_header(&mut rest, b"parent ") {
        parents.push(parent);
    }
    let author = signature(&mut rest, b"author ")?;
    // Some tools write several author lines: the first counts.
    while rest.starts_with(b"author ") {
        signature(&mut rest, b"author ")?;
    }
    let committer = signature(&mut rest, b"committer ")?;
    // The other headers (encoding, gpgsig, mergetag…) end at the first empty line.
    let mut at = data.len() - rest.len();
    while at < data.len() {
        if data[at - 1] == b'\n' && data[at] == b'\n' {
            break;
        }
        at = match memchr(&data[at..], b'\n') {
            Some(eol) => at + eol + 1,
            None => data.len(),
        };
    }
    let raw_message = data.get(at + 1..).unwrap_or_default();
    let message = cut_at_nul(raw_message);
    let skipped = message.iter().take_while(|&&b| b == b'\n').count();
    Some(RawCommit {
        parents,
        author,
        committer,
        message: &message[skipped..],
    })
}

impl RawCommit<'_> {
    /// The committer time: what a walk orders by.
    pub fn time(&self) -> i64 {
        self.committer.when.seconds()
    }
}

/// The subject as `git2::Commit::summary_bytes` gives it: the first paragraph,
/// its line breaks (and the blanks around them) folded to one space.
pub fn summary(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len().min(80));
    let mut space: Option<(usize, bool)> = None;
    for (i, &c) in message.iter().enumerate() {
        if c == b'\n' {
            let next = &message[i + 1..];
            if next.is_empty() || next[0] == b'\n' {
                break;
            }
            let blanks = next
                .iter()
                .take_while(|&&b| is_space(b) && b != b'\n')
                .count();
            if next.get(blanks).is_none_or(|&b| b == b'\n') {
                break;
            }
        }
        if is_space(c) {
            let (start, newline) = space.unwrap_or((i, false));
            space = Some((start, newline || c == b'\n'));
        } else {
            if let Some((start, newline)) = space.take() {
                if newline {
                    out.push(b' ');
                } else {
                    out.extend_from_slice(&message[start..i]);
                }
            }
            out.push(c);
        }
    }
    out
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\x0c' | b'\r' | b'\x0b')
}

fn memchr(haystack: &[u8], needle: u8) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

fn cut_at_nul(bytes: &[u8]) -> &[u8] {
    match memchr(bytes, 0) {
        Some(nul) => &bytes[..nul],
        None => bytes,
    }
}

/// `tree <hex>\n` or `parent <hex>\n`.
fn oid_header(rest: &mut &[u8], header: &[u8]) -> Option<Oid> {
    let line = rest.get(..header.len() + 41)?;
    if !line.starts_with(header) || line[header.len() + 40] != b'\n' {
        return None;
    }
    let hex = &line[header.len()..header.len() + 40];
    let mut bytes = [0u8; 20];
    for (byte, pair) in bytes.iter_mut().zip(hex.chunks(2)) {
        *byte = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    *rest = &rest[header.len() + 41..];
    Oid::from_bytes(&bytes).ok()
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// `author Name <email> 1700000000 +0100\n`, as libgit2's signature parser
/// reads it (the last `<` and `>` delimit the email; a missing time is 0, a
/// malformed zone is +0000).
fn signature<'a>(rest: &mut &'a [u8], header: &[u8]) -> Option<RawSignature<'a>> {
    let end = memchr(rest, b'\n')?;
    let line = &rest[..end];
    if line.len() <= header.len() || !line.starts_with(header) {
        return None;
    }
    let body = &line[header.len()..];
    let email_start = body.iter().rposition(|&b| b == b'<')?;
    let email_end = body.iter().rposition(|&b| b == b'>')?;
    if email_end <= email_start {
        return None;
    }
    let name = trim_crud(&body[..email_start]);
    let email = trim_crud(&body[email_start + 1..email_end]);
    let mut seconds = 0;
    let mut offset_minutes = 0;
    if email_end + 2 < body.len() {
        let time_start = email_end + 2;
        let (time, time_end) = parse_int(&body[time_start..])?;
        seconds = time;
        let time_end = time_start + time_end;
        if time_end + 1 < body.len() {
            let zone = &body[time_end + 1..];
            let offset = match zone[0] {
                b'+' | b'-' => parse_int(&zone[1..])
                    .and_then(|(n, _)| i32::try_from(n).ok())
                    .unwrap_or(0),
                _ => 0,
            };
            let (hours, minutes) = (offset / 100, offset % 100);
            if hours <= 14 && minutes <= 59 {
                offset_minutes = hours * 60 + minutes;
                if zone[0] == b'-' {
                    offset_minutes = -offset_minutes;
                }
            }
        }
    }
    *rest = &rest[end + 1..];
    Some(RawSignature {
        name: cut_at_nul(name),
        email: cut_at_nul(email),
        when: Time::new(seconds, offset_minutes),
    })
}

/// libgit2's trimming of names and emails.
fn trim_crud(mut bytes: &[u8]) -> &[u8] {
    let crud =
        |c: u8| c <= 32 || matches!(c, b',' | b':' | b';' | b'<' | b'>' | b'"' | b'\\' | b'\'');
    while let [first, rest @ ..] = bytes
        && crud(*first)
    {
        bytes = rest;
    }
    while let [rest @ .., last] = bytes
        && crud(*last)
    {
        bytes = rest;
    }
    bytes
}

/// A decimal integer as libgit2's `git__strntol64` reads one: leading blanks,
/// an optional sign, at least one digit; `None` on no digit or overflow. Also
/// returns where the digits ended.
fn parse_int(bytes: &[u8]) -> Option<(i64, usize)> {
    let mut at = bytes.iter().take_while(|&&b| is_space(b)).count();
    let mut negative = false;
    if let Some(&sign @ (b'-' | b'+')) = bytes.get(at) {
        negative = sign == b'-';
        at += 1;
    }
    let digits = bytes[at.min(bytes.len())..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 {
        return None;
    }
    let mut n: i64 = 0;
    for &b in &bytes[at..at + digits] {
        let digit = i64::from(b - b'0');
        let digit = if negative { -digit } else { digit };
        n = n.checked_mul(10)?.checked_add(digit)?;
    }
    Some((n, at + digits))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `raw` as a commit object and compares every field with what git2 reads.
    fn same_as_libgit2(repo: &git2::Repository, raw: &[u8]) {
        let oid = repo
            .odb()
            .unwrap()
            .write(git2::ObjectType::Commit, raw)
            .unwrap();
        let ours = parse(raw);
        let Ok(commit) = repo.find_commit(oid) else {
            assert!(ours.is_none(), "libgit2 refuses {raw:?}");
            return;
        };
        let ours =
            ours.unwrap_or_else(|| panic!("libgit2 reads {:?}", String::from_utf8_lossy(raw)));
        assert_eq!(ours.parents, commit.parent_ids().collect::<Vec<_>>());
        for (mine, theirs) in [
            (ours.author, commit.author()),
            (ours.committer, commit.committer()),
        ] {
            assert_eq!(mine.name, theirs.name_bytes(), "{raw:?}");
            assert_eq!(mine.email, theirs.email_bytes(), "{raw:?}");
            assert_eq!(mine.when.seconds(), theirs.when().seconds(), "{raw:?}");
            assert_eq!(
                mine.when.offset_minutes(),
                theirs.when().offset_minutes(),
                "{raw:?}"
            );
        }
        assert_eq!(ours.message, commit.message_bytes(), "{raw:?}");
        assert_eq!(
            summary(ours.message),
            commit.summary_bytes().unwrap_or_default(),
            "{raw:?}"
        );
    }

    const TREE: &str = "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n";
    const PARENT: &str = "parent 0123456789abcdef0123456789abcdef01234567\n";

    #[test]
    fn reads_commits_as_libgit2_does() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let signed = "author A U Thor <a@example.com> 1700000000 +0130\n\
                      committer C O Mitter <c@example.com> 1700000500 -0800\n";
        let cases: Vec<String> = vec![
            format!("{TREE}{signed}\nSubject\n\nBody\n"),
            format!("{TREE}{PARENT}{PARENT}{signed}\nMerge\n"),
            format!(
                "{TREE}{signed}encoding ISO-8859-1\ngpgsig -----BEGIN\n line\n -----END\n\nSigned\n"
            ),
            format!("{TREE}{signed}\n\n\nLeading newlines\nsecond line\n  \nbody"),
            format!("{TREE}{signed}\n  spaced   subject \t here\n folded\tline\n\nbody"),
            format!("{TREE}{signed}\nwith\0nul\n"),
            format!("{TREE}{signed}"),
            format!("{TREE}{signed}no blank line\n"),
            format!("{TREE}{signed}\n"),
            format!("{TREE}{signed}\nline\n \t \nnext paragraph"),
            format!(
                "{TREE}author First <f@x> 1 +0000\nauthor Second <s@x> 2 +0000\ncommitter C <c@x> 3 +0000\n\nm"
            ),
            format!(
                "{TREE}author  \"Quoted, Name\"  < odd@mail; > 1700000000 +0000\ncommitter <> 5 -0000\n\nm"
            ),
            format!("{TREE}author No Time <n@x>\ncommitter Bad Zone <b@x> 100 x0100\n\nm"),
            format!("{TREE}author Big Zone <b@x> 100 +9900\ncommitter Short <s@x> 100 +5\n\nm"),
            format!(
                "{TREE}author Name <a@x> 99999999999999999999 +0000\ncommitter C <c@x> 1 +0000\n\nm"
            ),
            format!("{TREE}author Name <a@x> abc +0000\ncommitter C <c@x> 1 +0000\n\nm"),
            format!("{TREE}author Name <a@x>  -42  +0100\ncommitter C <c@x> 1 -1460\n\nm"),
            format!("{TREE}author Name a@x> <1 +0000\ncommitter C <c@x> 1 +0000\n\nm"),
            format!("{TREE}author Na\0me <a\0@x> 1 +0000\ncommitter C <c@x> 1 +0000\n\nm"),
            format!("{TREE}committer C <c@x> 1 +0000\n\nno author"),
            format!("{TREE}author A <a@x> 1 +0000\n\nno committer"),
            format!("{TREE}parent 0123\n{signed}\nshort parent"),
            format!("tree zz{}\n{signed}\nbad tree", &TREE[7..45]),
            format!("{TREE}{signed}\nCaf\u{e9} \u{1F600}\n"),
            "not a commit".to_string(),
        ];
        for raw in cases {
            same_as_libgit2(&repo, raw.as_bytes());
        }
        // Not UTF-8.
        let mut latin = format!("{TREE}author Andr").into_bytes();
        latin.extend_from_slice(b"\xe9 <a@x> 1 +0000\ncommitter C <c@x> 1 +0000\n\nm\xe9\n");
        same_as_libgit2(&repo, &latin);
    }
}
