//! Multi-factor authentication on App+User calls (spec §17.10): once Partner Center enforces it,
//! an App+User token without an MFA claim is refused with 401 and error code 900421. A new token
//! from the same refresh token cannot help, so the run stops at once with the credentials exit
//! code and says what the operator has to do; a refresh token from a sign-in with MFA works.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::helpers::{Emulator, V1_ONLY, extract, http_client, log_lines, samples};

/// The partner-consent step: redeems an authorization code for a refresh token, written to a
/// file only its owner can read.
pub fn consent(emulator: &Emulator, dir: &Path, code: &str) -> (std::path::PathBuf, String) {
    let body = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let response = http_client()
            .post(format!("{}/partner-tenant/oauth2/v2.0/token", emulator.base))
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", "pcrecon-app"),
                ("client_secret", "test-secret"),
                ("code", code),
            ])
            .send()
            .await
            .unwrap();
        serde_json::from_slice::<Value>(&response.bytes().await.unwrap()).unwrap()
    });
    let token = body["refresh_token"].as_str().unwrap().to_owned();
    let file = dir.join(format!("{code}.refresh_token"));
    std::fs::write(&file, &token).unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    (file, token)
}

#[test]
fn an_app_user_token_without_mfa_stops_the_run_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let world = samples();
    let emulator =
        Emulator::start(&["--world", world.to_str().unwrap(), "--require-mfa", "--request-log", log.to_str().unwrap()]);

    // A refresh token from a sign-in without MFA.
    let (file, refresh_token) = consent(&emulator, dir.path(), "consent-code");
    let config = format!("refresh_token_file = {:?}\n{V1_ONLY}", file.to_str().unwrap());
    let refused = extract(&emulator, dir.path(), &config, &[], &[]);
    assert_eq!(refused.code, 3, "the credentials exit code: {}", refused.stderr);
    let message = refused.stderr.lines().last().unwrap();
    for part in [
        "requires multi-factor authentication for App+User calls",
        "900421",
        "interactive sign-in with MFA",
        "api.refresh_token_file",
        "PCRECON_REFRESH_TOKEN",
    ] {
        assert!(message.contains(part), "{part:?} missing from {message}");
    }
    for secret in [refresh_token.as_str(), "test-secret", "pcemu."] {
        assert!(!refused.stderr.contains(secret), "a secret reached the output");
        assert!(!refused.stdout.contains(secret), "a secret reached the output");
    }
    assert!(!dir.path().join("out/extract").exists(), "nothing is published");

    // No call was retried with a fresh token: each refused request was sent once.
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    for line in log_lines(&log).iter().filter(|l| l["status"] == 401) {
        *refusals.entry(line["request_id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    assert!(!refusals.is_empty(), "the emulator refused the token");
    assert!(refusals.values().all(|n| *n == 1), "a refused call was retried: {refusals:?}");

    // The remedy: a refresh token from an interactive sign-in that passed MFA.
    let (file, _) = consent(&emulator, dir.path(), "mfa-consent-code");
    let config = format!("refresh_token_file = {:?}\n{V1_ONLY}", file.to_str().unwrap());
    let accepted = extract(&emulator, dir.path(), &config, &[], &[]);
    assert_eq!(accepted.code, 0, "{}", accepted.stderr);
    assert!(dir.path().join("out/extract/summary.json").exists());
}
