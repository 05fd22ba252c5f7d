//! Redaction of secrets (bearer tokens, client secrets, refresh tokens, continuation tokens, SAS
//! signatures) from text a server or a file sent, before it reaches an error or a log.
//!
//! In: any text (an error body, a token endpoint's description, a transport error, a TOML error
//! quoting its source line) and, where the caller holds them, the secret values it sent. Out: the
//! same text with every secret value replaced by [`REDACTED`]; text without secrets comes back
//! unchanged (borrowed). It knows shapes, not meanings:
//!
//! - `Bearer <token>` anywhere, and the value of an `Authorization` header or field in any shape,
//!   become `Bearer [redacted]` (the scheme stays, the credential goes);
//! - the value of a field whose name is secret-ish (`client_secret`, `refresh_token`,
//!   `access_token`, `id_token`, `client_assertion`, `password`, `MS-ContinuationToken`,
//!   `continuationToken`, SAS `sig`, ...: see [`is_secret_name`]), in any case, written as a form
//!   or query (`name=value&`), JSON (`"name":"value"`, also escaped inside another string), a
//!   header (`name: value`) or TOML (`name = "value"`, `'value'`, `"""value"""`, or a string left
//!   open to the end of its line);
//! - the `value` of a `{"key":"MS-ContinuationToken","value":"..."}` pair (Partner Center's
//!   `links.next.headers` entries), in either order;
//! - JWT-looking strings (`eyJ...` with at least three dot-separated base64url segments);
//! - with [`redact_known`], the secret values the caller sent, verbatim, JSON-escaped or
//!   form-encoded, wherever they stand.
//!
//! It does not decide what is logged or sent (callers do), does not parse JSON or TOML (a body
//! need not be valid to be redacted), and leaves ordinary words alone: a secret-ish name not
//! followed by `=` or `:` (say "Invalid continuation token") is prose, not a field. Redacting
//! twice gives what redacting once gave. Use [`excerpt`] for a one-line, length-capped summary
//! of a body fit for an error message.

use std::borrow::Cow;
use std::ops::Range;

/// What a secret value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Known secret values shorter than this are not searched for verbatim (replacing every
/// occurrence of a two-letter string would shred a message); their named fields still are.
pub const MIN_KNOWN_LEN: usize = 4;

/// The characters of a body an [`excerpt`] keeps, after redaction.
pub const EXCERPT_CHARS: usize = 500;

/// `text` with every secret in a shape this module knows replaced by [`REDACTED`].
pub fn redact(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    let mut out = Out::new(text);
    let mut i = 0;
    while i < b.len() {
        if !is_name_byte(b[i]) {
            i += 1;
            continue;
        }
        let end = run_end(b, i);
        i = rule_at(b, i..end, &mut out).unwrap_or(end);
    }
    out.finish()
}

/// [`redact`], after replacing every occurrence of the `known` secret values (the client secret
/// and refresh token a request posted, say) verbatim, JSON-escaped or form-encoded.
pub fn redact_known<'a>(text: &'a str, known: &[&str]) -> Cow<'a, str> {
    let mut current = Cow::Borrowed(text);
    for secret in known.iter().filter(|s| s.len() >= MIN_KNOWN_LEN && !REDACTED.contains(**s)) {
        for form in encodings(secret) {
            if current.contains(form.as_str()) {
                current = Cow::Owned(current.replace(form.as_str(), REDACTED));
            }
        }
    }
    if let Cow::Owned(redacted) = redact(&current) {
        return Cow::Owned(redacted);
    }
    current
}

/// `text` cut to its first `max_chars` characters, saying how many more there were.
pub fn truncate(text: &str, max_chars: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max_chars) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => {
            let more = text[cut..].chars().count();
            Cow::Owned(format!("{}… ({more} more characters)", &text[..cut]))
        }
    }
}

/// How much of a text [`excerpt`] reads at most, for an excerpt of [`EXCERPT_CHARS`].
const EXCERPT_SCAN_CHARS: usize = 64 * 1024;

/// A server's text fit for an error message or a log field: redacted (with the `known` secret
/// values too), on one line (runs of white space become one space), and at most
/// [`EXCERPT_CHARS`] characters. Redaction comes first, so that a cut never leaves part of a
/// secret unrecognised.
pub fn excerpt(text: &str, known: &[&str]) -> String {
    // Only the start can be shown: a hostile body of megabytes is not scanned whole.
    let text = text.char_indices().nth(EXCERPT_SCAN_CHARS).map_or(text, |(cut, _)| &text[..cut]);
    let redacted = redact_known(text, known);
    let one_line = redacted.split_ascii_whitespace().collect::<Vec<_>>().join(" ");
    truncate(&one_line, EXCERPT_CHARS).into_owned()
}

/// Whether a field of this name holds a secret: compared without case, `-` and `_`, so that
/// `client_secret`, `clientSecret` and `CLIENT-SECRET` are one name.
pub fn is_secret_name(name: &str) -> bool {
    Normal::of(name.as_bytes()).is_some_and(|n| n.is_secret())
}

// ---------------------------------------------------------------------------------------------
// The scan

/// The output being built: the text up to `copied` is settled, replacements are pushed as found.
struct Out<'a> {
    text: &'a str,
    out: String,
    copied: usize,
}

impl<'a> Out<'a> {
    fn new(text: &'a str) -> Out<'a> {
        Out { text, out: String::new(), copied: 0 }
    }

    /// Replaces `range` (after everything replaced so far) with [`REDACTED`], unless it already
    /// is the marker.
    fn redact(&mut self, range: Range<usize>) {
        if range.is_empty() || self.text[range.start..].starts_with(REDACTED) {
            return;
        }
        self.out.push_str(&self.text[self.copied..range.start]);
        self.out.push_str(REDACTED);
        self.copied = range.end;
    }

    fn finish(mut self) -> Cow<'a, str> {
        if self.copied == 0 {
            return Cow::Borrowed(self.text);
        }
        self.out.push_str(&self.text[self.copied..]);
        Cow::Owned(self.out)
    }
}

/// The bytes of a name (a field, a header, a word): ASCII letters, digits, `-` and `_`.
fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

fn run_end(b: &[u8], from: usize) -> usize {
    b[from..].iter().position(|&c| !is_name_byte(c)).map_or(b.len(), |n| from + n)
}

/// What ends a value written without quotes.
fn ends_bare_value(b: &[u8], i: usize) -> bool {
    matches!(b[i], b'"' | b'\'' | b'&' | b',' | b';' | b'\\' | b'<' | b'>' | b')' | b']' | b'}' | b'|')
        || b[i].is_ascii_whitespace()
        || starts_with_ci(b, i, b"%26")
}

fn starts_with_ci(b: &[u8], i: usize, with: &[u8]) -> bool {
    b.get(i..i + with.len()).is_some_and(|s| s.eq_ignore_ascii_case(with))
}

fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|&c| c == b' ' || c == b'\t') {
        i += 1;
    }
    i
}

/// A name compared without case, `-` and `_` (names longer than the buffer are no secret's).
struct Normal {
    buf: [u8; 48],
    len: usize,
}

impl Normal {
    fn of(name: &[u8]) -> Option<Normal> {
        let mut n = Normal { buf: [0; 48], len: 0 };
        for &c in name.iter().filter(|&&c| c != b'-' && c != b'_') {
            *n.buf.get_mut(n.len)? = c.to_ascii_lowercase();
            n.len += 1;
        }
        Some(n)
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn is(&self, name: &str) -> bool {
        self.as_bytes() == name.as_bytes()
    }

    fn ends(&self, suffix: &str) -> bool {
        self.as_bytes().ends_with(suffix.as_bytes())
    }

    fn is_secret(&self) -> bool {
        ["sig", "signature", "password", "passwd", "pwd", "secret", "token", "apikey", "assertion"]
            .iter()
            .any(|n| self.is(n))
            || ["secret", "token", "password", "assertion", "signature", "apikey", "accountkey", "accesskey"]
                .iter()
                .any(|s| self.ends(s))
            || self.ends("subscriptionkey")
    }

    fn is_authorization(&self) -> bool {
        self.ends("authorization")
    }

    /// A name whose value is a secret or an `Authorization` header.
    fn names_secret(&self) -> bool {
        self.is_secret() || self.is_authorization()
    }
}

/// A value: where its text is (inside any quotes) and where the scan goes on after it.
struct Value {
    content: Range<usize>,
    after: usize,
    quoted: bool,
}

/// After a name ending at `i`: its closing quote if quoted, then `=` or `:` (or `%3D`/`%3A`),
/// with blanks around. Returns where the value starts.
fn separator(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    if b.get(j..j + 2) == Some(b"\\\"") {
        j += 2;
    } else if matches!(b.get(j), Some(b'"' | b'\'')) {
        j += 1;
    }
    j = skip_blanks(b, j);
    match b.get(j) {
        Some(b'=' | b':') => j += 1,
        _ if starts_with_ci(b, j, b"%3d") || starts_with_ci(b, j, b"%3a") => j += 3,
        _ => return None,
    }
    Some(skip_blanks(b, j))
}

/// The value starting at `i`: triple-quoted, `\"`-quoted (JSON inside a string), `"`- or
/// `'`-quoted (a quote left open ends with its line), or bare up to a delimiter.
fn value_at(b: &[u8], i: usize) -> Option<Value> {
    let find = |from: usize, close: &[u8]| {
        let mut j = from;
        while j < b.len() && !b[j..].starts_with(close) && b[j] != b'\n' {
            j += if b[j] == b'\\' && close == b"\"" { 2 } else { 1 };
        }
        j.min(b.len())
    };
    let value = if b[i..].starts_with(b"\"\"\"") || b[i..].starts_with(b"'''") {
        let close = &b[i..i + 3];
        let end = memchr::memmem::find(&b[i + 3..], close).map_or(b.len(), |n| i + 3 + n);
        Value { content: i + 3..end, after: (end + 3).min(b.len()), quoted: true }
    } else if b[i..].starts_with(b"\\\"") {
        let end = find(i + 2, b"\\\"");
        Value { content: i + 2..end, after: if b[end..].starts_with(b"\\\"") { end + 2 } else { end }, quoted: true }
    } else if matches!(b.get(i), Some(b'"' | b'\'')) {
        let close = &b[i..=i];
        let end = find(i + 1, close);
        Value { content: i + 1..end, after: if b[end..].starts_with(close) { end + 1 } else { end }, quoted: true }
    } else {
        let mut end = i;
        while end < b.len() && !ends_bare_value(b, end) {
            end += 1;
        }
        Value { content: i..end, after: end, quoted: false }
    };
    (!value.content.is_empty()).then_some(value)
}

/// At `i`: an optionally quoted name, its separator and its value.
fn field_at(b: &[u8], i: usize) -> Option<(Normal, Value)> {
    let start = if b[i..].starts_with(b"\\\"") {
        i + 2
    } else if matches!(b.get(i), Some(b'"' | b'\'')) {
        i + 1
    } else {
        i
    };
    let end = run_end(b, start);
    if end == start {
        return None;
    }
    let name = Normal::of(&b[start..end])?;
    let value = value_at(b, separator(b, end)?)?;
    Some((name, value))
}

/// The next field of the same object, after a value ending at `i`: `, "name": value`.
fn next_field(b: &[u8], i: usize) -> Option<(Normal, Value)> {
    let j = skip_blanks(b, i);
    if b.get(j) != Some(&b',') {
        return None;
    }
    field_at(b, skip_blanks(b, j + 1))
}

/// Whether a quoted value names a secret (the `key` of a `key`/`value` pair).
fn value_names_secret(b: &[u8], v: &Value) -> bool {
    v.quoted && Normal::of(&b[v.content.clone()]).is_some_and(|n| n.names_secret())
}

/// Authentication schemes an `Authorization` value may start with (kept; the credential goes).
const SCHEMES: [&str; 9] =
    ["bearer", "basic", "digest", "negotiate", "ntlm", "pop", "sharedkey", "sharedkeylite", "sharedaccesssignature"];

/// After a scheme ending at `i`: the blanks (or `%20`, `+`) before its credential.
fn after_scheme(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    loop {
        match b.get(j) {
            Some(b' ' | b'\t' | b'+') => j += 1,
            _ if starts_with_ci(b, j, b"%20") => j += 3,
            _ => break,
        }
    }
    (j > i).then_some(j)
}

/// Lower-case words that follow "Bearer" in prose, not tokens.
const PROSE_AFTER_BEARER: [&str; 8] =
    ["token", "tokens", "authentication", "auth", "scheme", "realm", "error", "header"];

/// At `i`, after "Bearer" and its blanks: the credential, unless it is a word of prose.
fn credential(b: &[u8], i: usize, quoted_to: Option<usize>) -> Option<Range<usize>> {
    let end = match quoted_to {
        Some(end) => end,
        None => value_at(b, i).filter(|v| !v.quoted)?.content.end,
    };
    if end <= i {
        return None;
    }
    let word = &b[i..end];
    (!PROSE_AFTER_BEARER.iter().any(|p| p.as_bytes() == word)).then_some(i..end)
}

/// The end of a JWT (or JWE) starting at `i`, if `eyJ...` has at least three segments.
fn jwt_end(b: &[u8], i: usize) -> Option<usize> {
    let segment = |from: usize| {
        b[from..]
            .iter()
            .position(|&c| !(c.is_ascii_alphanumeric() || c == b'-' || c == b'_'))
            .map_or(b.len(), |n| from + n)
    };
    let mut end = segment(i);
    let mut segments = 1;
    while b.get(end) == Some(&b'.') {
        let next = segment(end + 1);
        if next == end + 1 && segments >= 3 {
            break;
        }
        end = next;
        segments += 1;
    }
    (segments >= 3).then_some(end)
}

/// The rules that may start at the name `name`; returns where the scan goes on when one applied.
fn rule_at(b: &[u8], name: Range<usize>, out: &mut Out<'_>) -> Option<usize> {
    if b[name.start..].starts_with(b"eyJ")
        && let Some(end) = jwt_end(b, name.start)
    {
        out.redact(name.start..end);
        return Some(end);
    }
    let n = Normal::of(&b[name.clone()])?;
    if n.is("bearer") {
        let at = after_scheme(b, name.end)?;
        let token = credential(b, at, None)?;
        out.redact(token.clone());
        return Some(token.end);
    }
    let value = separator(b, name.end).and_then(|at| value_at(b, at));
    if n.is_authorization() {
        let v = value?;
        let content = &b[v.content.clone()];
        let scheme = content.iter().position(|c| !c.is_ascii_alphabetic()).unwrap_or(content.len());
        let known = SCHEMES.iter().any(|s| s.as_bytes().eq_ignore_ascii_case(&content[..scheme]));
        let cred = match after_scheme(b, v.content.start + scheme).filter(|_| known) {
            Some(at) if v.quoted => credential(b, at, Some(v.content.end)),
            Some(at) => credential(b, at, None),
            None => Some(v.content.clone()),
        };
        let end = cred.as_ref().map_or(v.after, |c| c.end.max(v.after));
        if let Some(cred) = cred {
            out.redact(cred);
        }
        return Some(end);
    }
    if n.is_secret() {
        let v = value?;
        out.redact(v.content);
        return Some(v.after);
    }
    // `{"key":"MS-ContinuationToken","value":"..."}`, and the same pair the other way round.
    if n.is("key") || n.is("name") {
        let v = value.filter(|v| value_names_secret(b, v))?;
        let (field, secret) = next_field(b, v.after)?;
        if field.is("value") {
            out.redact(secret.content);
            return Some(secret.after);
        }
        return Some(v.after);
    }
    if n.is("value") {
        let v = value?;
        let (field, key) = next_field(b, v.after)?;
        if (field.is("key") || field.is("name")) && value_names_secret(b, &key) {
            out.redact(v.content);
            return Some(key.after);
        }
    }
    None
}

/// The shapes a known secret may be quoted in: verbatim, JSON-escaped, form-encoded (with
/// upper- or lower-case hex, `~` escaped or not, a space as `+` or `%20`); longest first.
fn encodings(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json = json.get(1..json.len().saturating_sub(1)).unwrap_or_default().to_owned();
    let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let mut forms = vec![secret.to_owned(), json, form.replace("%7E", "~"), form.replace('+', "%20"), form];
    let lower: Vec<String> = forms.iter().map(|f| lower_hex(f)).collect();
    forms.extend(lower);
    forms.retain(|f| !f.is_empty());
    forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    forms.dedup();
    forms
}

/// `%2B` → `%2b`: percent escapes in lower-case hex.
fn lower_hex(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3).unwrap_or(&rest[at..]);
        out.push_str(&escape.to_ascii_lowercase());
        rest = &rest[at + escape.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests;
