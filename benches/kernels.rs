//! Per-stage kernels of the pipeline, one criterion group each: decode (JSON items → a record
//! batch), match (row → order, subscription, entitlement), encode (a batch → Parquet and CSV
//! files).
//! Input: the bundled sample world's daily rated usage and master data.
//!
//! `cargo bench --bench kernels`; the whole pipeline is measured by `benches/pipeline.sh`.

// A failing unwrap in a benchmark is a failing benchmark.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use arrow_array::RecordBatch;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pcrecon::matching::Match;
use pcrecon::matching::{LineKeys, MatchIndex};
use pcrecon::normalize::items::{Origin, decode_page};
use pcrecon::sink::part::PartWriter;
use pcrecon::tabular::Dataset;
use pcrecon::tabular::batch::{Columns, rows_of};

const DATASET: Dataset = Dataset::BilledUsage;

fn world() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/samples/world"))
}

/// The usage items of the sample world's first invoice with any, as served (one per line).
fn usage_items() -> Vec<Vec<u8>> {
    let invoices = world().join("invoices");
    let mut folders: Vec<_> = std::fs::read_dir(invoices).unwrap().map(|e| e.unwrap().path()).collect();
    folders.sort();
    folders
        .iter()
        .filter_map(|f| std::fs::read(f.join("onetime-usagelineitems.jsonl")).ok())
        .find(|text| !text.is_empty())
        .unwrap()
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// Items as a page holds them: one body, a span per item.
fn page_of(items: &[Vec<u8>]) -> (Vec<u8>, Vec<std::ops::Range<usize>>) {
    let mut body = Vec::new();
    let mut spans = Vec::new();
    for item in items {
        spans.push(body.len()..body.len() + item.len());
        body.extend_from_slice(item);
        body.push(b',');
    }
    (body, spans)
}

fn decode_all(dataset: Dataset, items: &[Vec<u8>]) -> RecordBatch {
    let schema = dataset.schema().unwrap();
    let (body, spans) = page_of(items);
    let page = decode_page(schema, &body, &spans, Origin { scope: "bench", page: 1 }, None).unwrap();
    assert!(page.errors.is_empty());
    page.batch
}

/// The match index of the sample world's master data.
fn index() -> MatchIndex {
    let mut index = MatchIndex::default();
    let customers = world().join("customers");
    for dataset in [Dataset::Orders, Dataset::Subscriptions, Dataset::Entitlements] {
        let schema = dataset.schema().unwrap();
        for folder in std::fs::read_dir(&customers).unwrap() {
            let text = std::fs::read(folder.unwrap().path().join(format!("{dataset}.jsonl"))).unwrap();
            let items: Vec<Vec<u8>> =
                text.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect();
            index.add(schema, &rows_of(&decode_all(dataset, &items)));
        }
    }
    index
}

fn kernels(c: &mut Criterion) {
    let items = usage_items();
    let bytes: usize = items.iter().map(Vec::len).sum();
    let schema = DATASET.schema().unwrap();

    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function(DATASET.name(), |b| b.iter(|| decode_all(DATASET, &items)));
    group.finish();

    let batch = decode_all(DATASET, &items);
    let index = index();
    let mut group = c.benchmark_group("match");
    group.throughput(Throughput::Elements(batch.num_rows() as u64));
    group.bench_function(DATASET.name(), |b| {
        b.iter(|| {
            let (columns, keys) = (Columns::of(&batch), LineKeys::of(schema));
            (0..columns.rows()).map(|r| index.match_row(&keys, &columns.row(r))).collect::<Vec<Match>>()
        })
    });
    group.finish();

    // A file of about 20,000 rows, so that creating and syncing it weighs little.
    let copies = 20_000 / batch.num_rows().max(1) + 1;
    let batches: Vec<RecordBatch> = std::iter::repeat_n(batch, copies).collect();
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("encode");
    group.sample_size(10);
    group.throughput(Throughput::Elements(rows as u64));
    group.bench_function(DATASET.name(), |b| {
        b.iter(|| {
            let (parquet, csv) = (dir.path().join("part.parquet"), dir.path().join("part.csv"));
            let mut writer =
                PartWriter::create(schema, &parquet, Some((&csv, pcrecon::sink::writer::CsvFormat::default())))
                    .unwrap();
            for batch in &batches {
                writer.push_batch(batch.clone()).unwrap();
            }
            writer.finish().unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
