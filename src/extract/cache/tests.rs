//! Unit tests of the parent module.

use super::*;
use crate::api::auth::TokenKind;
use crate::api::paging::item_spans;

fn seq(scope: &str) -> Sequence {
    Sequence {
        dataset: Dataset::BilledRecon,
        scope: scope.into(),
        first: "http://h/v1/x".into(),
        paging: Paging::Seek,
        token: TokenKind::App,
        export: None,
    }
}

fn page(scope: &str, attempt: u32, number: u32, body: &'static [u8]) -> Event {
    let body = Bytes::from_static(body);
    Event::Page(Page {
        dataset: Dataset::BilledRecon,
        scope: scope.into(),
        attempt,
        number,
        request_id: format!("r{number}"),
        url: "/v1/x".into(),
        fetched_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        items: item_spans(Paging::Seek, &body).unwrap(),
        body,
        paging: Paging::Seek,
    })
}

fn record(cache: &PageCache, scope: &str, reuse: &Reuse) {
    let mut r = cache.recorder(&seq(scope), "/v1/x", reuse).unwrap();
    r.record(&page(scope, 1, 1, br#"{"items":[{"a":1}]}"#)).unwrap();
    r.record(&Event::Restart { dataset: Dataset::BilledRecon, scope: scope.into(), attempt: 2, reason: "x".into() })
        .unwrap();
    r.record(&page(scope, 2, 1, br#"{"items":[{"a":1.50}]}"#)).unwrap();
    r.record(&page(scope, 2, 2, br#"{"items":[{"b":2},{"c":3}]}"#)).unwrap();
    let done = Event::Done {
        dataset: Dataset::BilledRecon,
        scope: scope.into(),
        attempt: 2,
        pages: 2,
        items: 3,
        export: None,
    };
    r.record(&done).unwrap();
    assert!(cache.reusable(&seq(scope), "/v1/x", reuse).is_none(), "not decoded yet: not reusable");
    assert!(cache.confirm(Dataset::BilledRecon, scope).unwrap());
    assert!(!cache.confirm(Dataset::BilledRecon, scope).unwrap(), "confirmed once");
}

async fn replayed(cache: &PageCache, cached: Cached) -> (bool, Vec<Event>) {
    let (tx, mut rx) = mpsc::channel(16);
    let ok = cache.replay(&seq("G1"), cached, &tx).await.unwrap();
    drop(tx);
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    (ok, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_recorded_sequence_replays_as_its_last_attempt() {
    let out = tempfile::tempdir().unwrap();
    let cache = PageCache::open(out.path(), "R1", false, Duration::from_secs(3600), chrono::Utc::now()).unwrap();
    let invoice = Reuse::Invoice { fingerprint: "f1".into() };
    record(&cache, "G1", &invoice);
    let files: Vec<_> = fs::read_dir(cache.dir(Dataset::BilledRecon, "G1")).unwrap().flatten().collect();
    assert_eq!(files.len(), 3, "two pages and the marker; the first attempt's page is gone");
    let cached = cache.reusable(&seq("G1"), "/v1/x", &invoice).unwrap();
    assert!(!cached.carried);
    let (ok, events) = replayed(&cache, cached).await;
    assert!(ok);
    let texts: Vec<Vec<u8>> = events
        .iter()
        .filter_map(|e| match e {
            Event::Page(p) => Some(p.item_texts().flat_map(|t| t.iter().copied().chain([b'|'])).collect()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, [b"{\"a\":1.50}|".to_vec(), b"{\"b\":2}|{\"c\":3}|".to_vec()]);
    assert!(matches!(events.last(), Some(Event::Done { items: 3, pages: 2, .. })));

    // Another fingerprint, another first URL, or another kind of reuse: not reusable.
    assert!(cache.reusable(&seq("G1"), "/v1/x", &Reuse::Invoice { fingerprint: "f2".into() }).is_none());
    assert!(cache.reusable(&seq("G1"), "/v1/y", &invoice).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_later_run_carries_invoices_but_not_attempt_data() {
    let out = tempfile::tempdir().unwrap();
    let first = PageCache::open(out.path(), "R1", false, Duration::from_secs(3600), chrono::Utc::now()).unwrap();
    let invoice = Reuse::Invoice { fingerprint: "f1".into() };
    record(&first, "G1", &invoice);
    record(&first, "EUR/current", &Reuse::Attempt);
    // Not published: the next run resumes the attempt and may reuse both.
    let resumed = PageCache::open(out.path(), "R2", false, Duration::from_secs(3600), chrono::Utc::now()).unwrap();
    assert_eq!(resumed.attempt().id, first.attempt().id);
    assert!(resumed.reusable(&seq("EUR/current"), "/v1/x", &Reuse::Attempt).is_some());
    // Published: the attempt ends and only the billed invoice stays.
    fs::create_dir_all(out.path().join("R2")).unwrap();
    fs::write(out.path().join("R2/manifest.json"), "{}").unwrap();
    resumed.finish_attempt().unwrap();
    let next = PageCache::open(out.path(), "R3", false, Duration::from_secs(3600), chrono::Utc::now()).unwrap();
    assert_ne!(next.attempt().id, first.attempt().id);
    assert!(next.reusable(&seq("EUR/current"), "/v1/x", &Reuse::Attempt).is_none());
    let carried = next.reusable(&seq("G1"), "/v1/x", &invoice).unwrap();
    assert!(carried.carried);
    let refresh = PageCache::open(out.path(), "R4", true, Duration::from_secs(3600), chrono::Utc::now()).unwrap();
    assert!(refresh.reusable(&seq("G1"), "/v1/x", &invoice).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn an_altered_page_is_refetched_after_a_restart() {
    let out = tempfile::tempdir().unwrap();
    let cache = PageCache::open(out.path(), "R1", false, Duration::from_secs(3600), chrono::Utc::now()).unwrap();
    let invoice = Reuse::Invoice { fingerprint: "f1".into() };
    record(&cache, "G1", &invoice);
    let second = cache.dir(Dataset::BilledRecon, "G1").join("a2-p00002.json.zst");
    let mut encoder = zstd::stream::Encoder::new(fs::File::create(&second).unwrap(), LEVEL).unwrap();
    encoder.write_all(br#"{"items":[{"b":2},{"c":4}]}"#).unwrap();
    encoder.finish().unwrap();
    let cached = cache.reusable(&seq("G1"), "/v1/x", &invoice).unwrap();
    let (ok, events) = replayed(&cache, cached).await;
    assert!(!ok);
    assert!(matches!(events.last(), Some(Event::Restart { .. })));
}
