//! Per-stage kernels of the pipeline, one criterion group each: decode (JSON item → typed row),
//! match (row → order, subscription, entitlement), encode (rows → Parquet and CSV files).
//! Input: the bundled sample world's daily rated usage and master data.
//!
//! `cargo bench --bench kernels`; the whole pipeline is measured by `benches/pipeline.sh`.

// A failing unwrap in a benchmark is a failing benchmark.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pcrecon::matching::MatchIndex;
use pcrecon::normalize::rows::{Origin, decode_item};
use pcrecon::sink::part::PartWriter;
use pcrecon::tabular::{Cell, Dataset};

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

fn decode_all(items: &[Vec<u8>]) -> Vec<Vec<Cell>> {
    let schema = DATASET.schema().unwrap();
    let origin = Origin { scope: "bench", page: 1 };
    items.iter().enumerate().flat_map(|(i, item)| decode_item(schema, item, origin, i, None).unwrap().rows).collect()
}

/// The match index of the sample world's master data.
fn index() -> MatchIndex {
    let mut index = MatchIndex::default();
    let customers = world().join("customers");
    for dataset in [Dataset::Orders, Dataset::Subscriptions, Dataset::Entitlements] {
        let schema = dataset.schema().unwrap();
        let origin = Origin { scope: "bench", page: 1 };
        for folder in std::fs::read_dir(&customers).unwrap() {
            let text = std::fs::read(folder.unwrap().path().join(format!("{dataset}.jsonl"))).unwrap();
            let rows: Vec<Vec<Cell>> = text
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .enumerate()
                .flat_map(|(i, item)| decode_item(schema, item, origin, i, None).unwrap().rows)
                .collect();
            index.add(schema, &rows);
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
    group.bench_function(DATASET.name(), |b| b.iter(|| decode_all(&items)));
    group.finish();

    let rows = decode_all(&items);
    let index = index();
    let mut group = c.benchmark_group("match");
    group.throughput(Throughput::Elements(rows.len() as u64));
    group.bench_function(DATASET.name(), |b| {
        b.iter(|| rows.iter().map(|r| index.match_row(schema, r)).collect::<Vec<_>>())
    });
    group.finish();

    // A file of about 20,000 rows, so that creating and syncing it weighs little.
    let rows: Vec<Vec<Cell>> = rows.iter().cycle().take(20_000).cloned().collect();
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("encode");
    group.sample_size(10);
    group.throughput(Throughput::Elements(rows.len() as u64));
    group.bench_function(DATASET.name(), |b| {
        b.iter(|| {
            let (parquet, csv) = (dir.path().join("part.parquet"), dir.path().join("part.csv"));
            let mut writer = PartWriter::create(schema, &parquet, &csv, false).unwrap();
            writer.push_all(rows.clone()).unwrap();
            writer.finish().unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
