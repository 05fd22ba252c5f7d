//! Error responses in the documented shapes (spec §6.2), and the token endpoint's checks.

use crate::helpers::{Emulator, samples};

fn sample_server() -> Emulator {
    Emulator::start(&["--world", samples().to_str().unwrap()])
}

#[tokio::test]
async fn requests_without_a_valid_bearer_token_get_401() {
    let e = sample_server();
    let client = e.client().await;
    let anonymous = client.http.get(format!("{}/v1/invoices", e.base)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers()["www-authenticate"].to_str().unwrap().starts_with("OAuth realm=urn:cpsvc:cpid:"));
    let forged = client.http.get(format!("{}/v1/invoices", e.base)).bearer_auth("pcemu.forged").send().await.unwrap();
    assert_eq!(forged.status(), 401);
}

#[tokio::test]
async fn unknown_ids_get_404_with_the_canonical_body() {
    let e = sample_server();
    let client = e.client().await;
    for path in [
        "/v1/invoices/G999999999",
        "/v1/invoices/G999999999/lineitems?provider=onetime&invoicelineitemtype=billinglineitems",
        "/v1/customers/00000000-0000-0000-0000-000000000000",
    ] {
        let reply = client.get(path, &[]).await;
        assert_eq!(reply.status, 404, "{path}");
        let body = reply.json();
        assert!(body["code"].is_string() && body["description"].is_string() && body["data"].is_array(), "{body}");
    }
}

#[tokio::test]
async fn response_spellings_in_requests_get_the_framework_400() {
    let e = sample_server();
    let client = e.client().await;
    for path in [
        "/v1/invoices/unbilled/lineitems?provider=one_time&invoicelineitemtype=billinglineitems&currencycode=USD&period=current",
        "/v1/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype=billing_line_items&currencycode=USD&period=current",
        "/v1/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype=billinglineitems&currencycode=USD&period=last",
        "/v1/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype=billinglineitems&period=current",
    ] {
        let reply = client.get(path, &[]).await;
        assert_eq!(reply.status, 400, "{path}");
        assert_eq!(reply.json()["message"], "The request is invalid.");
    }
    let mixed_case = client.get("/v1/invoices/Unbilled/lineitems?Provider=OneTime&InvoiceLineItemType=BillingLineItems&CurrencyCode=usd&Period=Current", &[]).await;
    assert_eq!(mixed_case.status, 200, "names and values are case-insensitive");
}

#[tokio::test]
async fn continuation_tokens_are_bound_to_their_query() {
    let e = Emulator::start(&["--world", samples().to_str().unwrap(), "--page-size", "5"]);
    let client = e.client().await;
    let page = client.json("/v1/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype=usagelineitems&currencycode=EUR&period=previous").await;
    let token = page["continuationToken"].as_str().unwrap();
    assert_eq!(page["links"]["next"]["headers"][0]["value"], token, "the token comes in both places");
    let other = "/v1/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype=usagelineitems&currencycode=EUR&period=current&seekOperation=Next";
    assert_eq!(client.get(other, &[("MS-ContinuationToken", token)]).await.status, 400);
    let missing = "/v1/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype=usagelineitems&currencycode=EUR&period=previous&seekOperation=Next";
    assert_eq!(client.get(missing, &[]).await.status, 400);
    let rebuilt = client.get(missing, &[("MS-ContinuationToken", token)]).await;
    assert_eq!(rebuilt.status, 200, "rebuilding the request from the original parameters works");
    let second = rebuilt.json();
    assert_ne!(second["items"][0], page["items"][0]);
}

#[tokio::test]
async fn customers_follow_up_pages_need_only_the_seek_operation() {
    let e = sample_server();
    let client = e.client().await;
    let page = client.json("/v1/customers?size=5").await;
    let token = page["links"]["next"]["headers"][0]["value"].as_str().unwrap();
    let next = client.get("/v1/customers?seekOperation=Next", &[("MS-ContinuationToken", token)]).await;
    assert_eq!(next.status, 200);
    assert_eq!(next.json()["items"].as_array().unwrap().len(), 5, "the token remembers the page size");
    let filtered = client.json("/v1/customers?size=10&filter=%7B%22Field%22%3A%22CompanyName%22%2C%22Value%22%3A%22m%C3%BC%22%2C%22Operator%22%3A%22starts_with%22%7D").await;
    let names: Vec<&str> = filtered["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["companyProfile"]["companyName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Müller Logistik GmbH"]);
}

#[tokio::test]
async fn a_pinned_client_secret_is_enforced_and_never_taken_from_argv() {
    let e = Emulator::start_with_env(
        &["--world", samples().to_str().unwrap(), "--client-id", "app-1"],
        &[("PCRECON_EMULATOR_CLIENT_SECRET", "s3cret")],
    );
    let http = crate::helpers::http_client();
    let token = |body: &'static str| {
        let http = http.clone();
        let url = format!("{}/t/oauth2/v2.0/token", e.base);
        async move {
            http.post(url).header("content-type", "application/x-www-form-urlencoded").body(body).send().await.unwrap()
        }
    };
    let wrong = token("grant_type=client_credentials&client_id=app-1&client_secret=nope").await;
    assert_eq!(wrong.status(), 400);
    let body: serde_json::Value = serde_json::from_slice(&wrong.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(token("grant_type=client_credentials&client_id=other&client_secret=s3cret").await.status(), 400);
    assert_eq!(token("grant_type=password&client_id=app-1&client_secret=s3cret").await.status(), 400);
    let ok = token("grant_type=client_credentials&client_id=app-1&client_secret=s3cret").await;
    assert_eq!(ok.status(), 200);
    let body: serde_json::Value = serde_json::from_slice(&ok.bytes().await.unwrap()).unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    let v1 = http
        .post(format!("{}/t/oauth2/token", e.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&client_id=app-1&client_secret=s3cret&resource=https%3A%2F%2Fapi.partnercenter.microsoft.com")
        .send()
        .await
        .unwrap();
    let v1: serde_json::Value = serde_json::from_slice(&v1.bytes().await.unwrap()).unwrap();
    assert!(v1["expires_in"].is_string(), "the v1 endpoint sends expires_in as a string");
    assert_eq!(v1["resource"], "https://api.partnercenter.microsoft.com");
}

#[tokio::test]
async fn statements_are_pdfs_and_entitlement_expiry_needs_show_expiry() {
    let e = sample_server();
    let client = e.client().await;
    let customers = client.json("/v1/customers").await;
    let first = customers["items"][0]["id"].as_str().unwrap();
    let plain = client.json(&format!("/v1/customers/{first}/entitlements")).await;
    let shown = client.json(&format!("/v1/customers/{first}/entitlements?showExpiry=true")).await;
    let reservations = |v: &serde_json::Value, key: &str| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["entitlementType"] == "reservedinstance" && e.get(key).is_some())
            .count()
    };
    assert!(reservations(&shown, "expiryDate") >= 2);
    assert_eq!(reservations(&plain, "expiryDate"), 0);
    let filtered = client.json(&format!("/v1/customers/{first}/entitlements?entitlementType=software")).await;
    assert!(filtered["items"].as_array().unwrap().iter().all(|e| e["entitlementType"] == "software"));
}
