//! Unit tests of the parent module.

use super::*;
use proptest::prelude::*;

fn r(text: &str) -> String {
    redact(text).into_owned()
}

#[test]
fn bearer_tokens_lose_their_credential_and_keep_their_scheme() {
    assert_eq!(r("Authorization: Bearer pcemu.abc-DEF_123; next"), "Authorization: Bearer [redacted]; next");
    assert_eq!(r(r#"{"Authorization":"Bearer abc def"}"#), r#"{"Authorization":"Bearer [redacted]"}"#);
    assert_eq!(r(r#""authorization": "bearer x.y.z""#), r#""authorization": "bearer [redacted]""#);
    assert_eq!(r("sent BEARER eyJ0eXAiOiJKV1Qi.eyJzdWIiOiIxIn0.c2ln to it"), "sent BEARER [redacted] to it");
    assert_eq!(r("Authorization=Bearer%20a1b2c3"), "Authorization=Bearer%20[redacted]");
    assert_eq!(r("Proxy-Authorization: Basic dXNlcjpwYXNz"), "Proxy-Authorization: Basic [redacted]");
    assert_eq!(r("authorization: s3cr3t"), "authorization: [redacted]");
    assert_eq!(r(r#"{\"Authorization\":\"Bearer abc\"}"#), r#"{\"Authorization\":\"Bearer [redacted]\"}"#);
}

#[test]
fn secret_fields_lose_their_values_in_every_shape() {
    let form = "grant_type=refresh_token&client_id=app&client_secret=a~b.c_d&refresh_token=0.AAA-x%2By&scope=s";
    assert_eq!(
        r(form),
        "grant_type=refresh_token&client_id=app&client_secret=[redacted]&refresh_token=[redacted]&scope=s"
    );
    assert_eq!(r(r#"{"access_token":"abc","expires_in":3599}"#), r#"{"access_token":"[redacted]","expires_in":3599}"#);
    assert_eq!(r(r#"{"id_token" : "abc"}"#), r#"{"id_token" : "[redacted]"}"#);
    assert_eq!(r("CLIENT_ASSERTION=abc"), "CLIENT_ASSERTION=[redacted]");
    assert_eq!(r("clientSecret: abc"), "clientSecret: [redacted]");
    assert_eq!(r("password='p@ss word'"), "password='[redacted]'");
    assert_eq!(r("MS-ContinuationToken: a+b/c==\r\nX-Next: 1"), "MS-ContinuationToken: [redacted]\r\nX-Next: 1");
    assert_eq!(r("continuationToken=tok-0-SECRET"), "continuationToken=[redacted]");
    assert_eq!(r(r#""continuation_token":"a\"b""#), r#""continuation_token":"[redacted]""#);
    assert_eq!(r("x%3Fclient_secret%3Dabc%26scope%3Ds"), "x%3Fclient_secret%3D[redacted]%26scope%3Ds");
}

#[test]
fn toml_lines_lose_their_secret_values_even_when_broken() {
    assert_eq!(r("4 | client_secret = \"s3cr3t-XYZ\" oops\n  |"), "4 | client_secret = \"[redacted]\" oops\n  |");
    assert_eq!(r("client_secret = \"s3cr3t-XYZ\n5 | x"), "client_secret = \"[redacted]\n5 | x");
    assert_eq!(r("refresh_token = 's3cr3t'"), "refresh_token = '[redacted]'");
    assert_eq!(r("client_secret = \"\"\"a\nb\"\"\""), "client_secret = \"\"\"[redacted]\"\"\"");
    assert_eq!(r("api = { client_secret = \"abc\" }"), "api = { client_secret = \"[redacted]\" }");
}

#[test]
fn signatures_of_shared_access_urls_are_redacted() {
    let url = "https://acct.blob.core.windows.net/c/b.json.gz?sv=2021-08-06&se=2026-01-01T00%3A00%3A00Z&sr=b&sp=r&sig=Ab%2Fc%3D";
    let redacted = r(url);
    assert!(redacted.ends_with("&sp=r&sig=[redacted]"), "{redacted}");
    assert!(redacted.contains("sv=2021-08-06&se=2026-01-01T00%3A00%3A00Z"), "{redacted}");
    assert_eq!(r("design=a&signature=xyz"), "design=a&signature=[redacted]");
}

#[test]
fn continuation_tokens_in_key_value_pairs_are_redacted_in_either_order() {
    let next = r#"{"headers":[{"key":"MS-ContinuationToken","value":"a+b/c=="}],"uri":"/v1/x?seekOperation=Next"}"#;
    assert_eq!(
        r(next),
        r#"{"headers":[{"key":"MS-ContinuationToken","value":"[redacted]"}],"uri":"/v1/x?seekOperation=Next"}"#
    );
    assert_eq!(
        r(r#"{"value": "abc", "key": "ms-continuationtoken"}"#),
        r#"{"value": "[redacted]", "key": "ms-continuationtoken"}"#
    );
    assert_eq!(
        r(r#"{"name":"Authorization","value":"Bearer abc"}"#),
        r#"{"name":"Authorization","value":"[redacted]"}"#
    );
    let plain = r#"{"key":"MS-RequestId","value":"5c7e2a7e"}"#;
    assert_eq!(r(plain), plain);
}

#[test]
fn jwts_are_redacted_wherever_they_stand() {
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.sig_-AZ09";
    assert_eq!(r(&format!("token {jwt} refused")), "token [redacted] refused");
    assert_eq!(r(&format!("({jwt})")), "([redacted])");
    assert_eq!(r("eyJhbGciOiJub25lIn0.eyJhIjoxfQ."), "[redacted]");
    assert_eq!(r("eyJhbGciOiJub25lIn0.only-two"), "eyJhbGciOiJub25lIn0.only-two");
}

#[test]
fn ordinary_text_is_left_alone() {
    for text in [
        "",
        "400: Invalid continuation token",
        "The continuation token has expired. Start again from the first page.",
        "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent is the one configured.",
        "AADSTS70000: The provided value for the 'refresh_token' is not valid.",
        "1000: Not found",
        "invoice G000123456, amount 1234.5600 EUR, customer 3f2e1d0c-aaaa-bbbb-cccc-000000000001",
        r#"{"code":"2000","description":"seekOperation=Next needs the MS-ContinuationToken header"}"#,
        r#"{"token_type":"Bearer","expires_in":"3599","ext_expires_in":3599}"#,
        "Bearer token expired; Bearer authentication failed",
        "HTTP 429, Retry-After 5s",
        "/v1/invoices/G000123/lineitems?provider=onetime&invoicelineitemtype=billinglineitems&size=2000",
        "TOML parse error at line 4, column 1\n  |\n4 | base_uri = \"x\"\n  | ^\nunknown field `base_uri`",
        "désolé: échec — ünïcode ok",
    ] {
        assert!(matches!(redact(text), Cow::Borrowed(_)), "changed: {text:?} -> {:?}", r(text));
    }
}

#[test]
fn known_secrets_are_caught_in_any_shape() {
    let secret = "Ab8Q~x y+z/\"w";
    let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let json = serde_json::to_string(secret).unwrap();
    let text = format!("raw {secret} | form {form} | json {json} | lower {}", lower_hex(&form));
    let redacted = redact_known(&text, &[secret]).into_owned();
    for shape in ["Ab8Q", "x y", "y+z", "%7E", "%7e", "x+y"] {
        assert!(!redacted.contains(shape), "{shape} in {redacted}");
    }
    assert_eq!(redact_known("short s here", &["s"]), "short s here");
    assert_eq!(redact_known("nothing", &["not-in-it"]), "nothing");
}

#[test]
fn excerpts_are_redacted_one_line_and_capped() {
    let tokens: String = (0..70).map(|n| format!("MS-ContinuationToken: tok-{n}-SECRET\n")).collect();
    let text = excerpt(&format!("{tokens}{}", "x".repeat(1000)), &[]);
    assert!(!text.contains("SECRET") && !text.contains('\n'), "{text}");
    assert!(text.chars().count() < EXCERPT_CHARS + 40, "{}", text.len());
    assert!(text.ends_with("more characters)"), "{text}");
    assert_eq!(truncate("abcdef", 3), "abc… (3 more characters)");
    assert_eq!(truncate("abc", 3), "abc");
}

#[test]
fn redacting_twice_changes_nothing_more() {
    for text in [
        "client_secret=[redacted]&x=1",
        "Authorization: Bearer [redacted]",
        r#"{"key":"MS-ContinuationToken","value":"[redacted]"}"#,
    ] {
        assert_eq!(r(text), text);
    }
}

/// A secret as a server might send one: base64, base64url, JWT-ish and Entra-style characters.
fn secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9+/=._~-]{7,40}"
}

/// The shapes a secret travels in, `{}` standing for it.
const SHAPES: [&str; 22] = [
    "Authorization: Bearer {}",
    "authorization: bearer {}; then",
    r#"{"Authorization":"Bearer {}"}"#,
    r#"{"headers":{"Authorization": "Bearer {}"}}"#,
    "WWW: BEARER {} rest",
    "grant_type=client_credentials&client_secret={}&scope=x",
    "refresh_token={}",
    r#"{"access_token":"{}","expires_in":1}"#,
    r#"{"id_token": "{}"}"#,
    "client_assertion={}&x",
    "Password: {}",
    "MS-ContinuationToken: {}",
    r#"{"continuationToken":"{}"}"#,
    "continuation_token={}",
    r#"[{"key":"MS-ContinuationToken","value":"{}"}]"#,
    r#"[{"value":"{}","key":"MS-ContinuationToken"}]"#,
    "https://a.blob.core.windows.net/c/b?sv=1&sig={}&sp=r",
    "4 | client_secret = \"{}\" oops",
    "4 | client_secret = \"{}",
    "refresh_token = '{}'",
    r#"{\"client_secret\":\"{}\"}"#,
    "description: continuationToken={}; more",
];

proptest! {
    #[test]
    fn a_secret_in_any_known_shape_never_survives(secret in secret(), shape in 0..SHAPES.len(), prefix in "[ -~]{0,20}") {
        // `; ` ends whatever bare value the prefix may start.
        let text = format!("{prefix}; {}", SHAPES[shape].replace("{}", &secret));
        let redacted = redact(&text).into_owned();
        prop_assert!(!redacted.contains(&secret), "{} -> {}", text, redacted);
        prop_assert_eq!(redact(&redacted).into_owned(), redacted.clone());
    }

    #[test]
    fn a_jwt_never_survives(a in "[A-Za-z0-9_-]{4,30}", b in "[A-Za-z0-9_-]{4,30}", c in "[A-Za-z0-9_-]{0,30}", around in "[ ,;:()]") {
        let jwt = format!("eyJ{a}.{b}.{c}");
        let redacted = redact(&format!("x{around}{jwt}{around}y")).into_owned();
        prop_assert!(!redacted.contains(&jwt), "{}", redacted);
    }

    // No brackets in the secret: one spanning the marker and its neighbours is an artefact.
    #[test]
    fn a_known_secret_never_survives_anywhere(secret in "[ -Z^-~]{4,30}", before in "[ -~]{0,20}", after in "[ -~]{0,20}") {
        let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let text = format!("{before}{secret}{after} / {form}");
        prop_assume!(!REDACTED.contains(secret.as_str()));
        let redacted = redact_known(&text, &[&secret]).into_owned();
        prop_assert!(!redacted.contains(&secret), "{} -> {}", text, redacted);
    }
}

#[test]
fn a_huge_body_is_read_only_as_far_as_an_excerpt_can_show() {
    let body = format!("{{\"client_secret\":\"{}\"}}", "s".repeat(200_000));
    let shown = excerpt(&body, &[]);
    assert!(!shown.contains("sss"), "{shown}");
    let noise = "a=a&".repeat(500_000);
    let cut = excerpt(&noise, &[]);
    assert!(cut.starts_with("a=a&a=a&") && cut.contains("more characters)"), "{cut}");
    assert!(cut.chars().count() < EXCERPT_CHARS + 40, "{cut}");
}
