//! The end of a snapshot: the tie-out computed, the buffered master data and computed datasets
//! written, every line-item file moved into its billing period's partition, and `manifest.json`
//! (files, control totals, lineage, exports, drift) written.
//!
//! In: everything the stages kept. Out: the [`Manifest`] and its file. It publishes nothing
//! (that is the staging folder's rename, after it).

use sha2::Digest;

use crate::sink::manifest::{ExportData, ExportOperation, Provenance};

use super::*;

impl Snapshot {
    /// Per billing currency, what the charge lines FOCUS rows are made of add up to (each
    /// dataset's line-amount column, distinct lines), and Σ BilledCost of the FOCUS rows.
    fn focus_currency_sums(&self) -> Result<BTreeMap<String, reconcile::FocusCurrency>, StageError> {
        let mut sums: BTreeMap<String, reconcile::FocusCurrency> = BTreeMap::new();
        for (schema, _, report) in &self.done {
            let column = match schema.name {
                Dataset::Focus => Some("BilledCost"),
                dataset if crate::focus::is_source(dataset) => dataset.line_amount_column(),
                _ => None,
            };
            let Some(at) = column.and_then(|c| schema.totals.iter().position(|t| *t == c)) else { continue };
            for (currency, values) in &report.totals.distinct {
                let entry = sums.entry(currency.clone()).or_default();
                let sum = if schema.name == Dataset::Focus { &mut entry.focus } else { &mut entry.lines };
                *sum = sum.checked_add(values[at]).ok_or_else(|| {
                    StageError::Fx(format!("{} {currency}: the sums of the FOCUS tie-out overflow", schema.name))
                })?;
            }
        }
        Ok(sums)
    }

    fn write_dimension(
        &self,
        schema: &'static DatasetSchema,
        folder: &str,
        rows: Vec<&Vec<Cell>>,
    ) -> Result<PartReport, StageError> {
        let (mut writer, parquet) = self.part_writer(schema, folder, &layout::part_name(schema, ""))?;
        for row in rows {
            writer.push(row.clone()).map_err(io_at(&parquet))?;
        }
        writer.finish().map_err(io_at(&parquet))
    }

    /// Writes the dimensions, places every file in its partition and writes `manifest.json`.
    pub fn finish(mut self, source: BTreeMap<String, String>, provenance: Provenance) -> Result<Manifest, StageError> {
        let finishing = std::time::Instant::now();
        if let Some(missing) = self.normalizer.as_ref().and_then(Normalizer::missing_rates) {
            return Err(StageError::Fx(missing));
        }
        let mut placed: Vec<(&'static DatasetSchema, PartReport)> = Vec::new();
        let mut invoice_months: BTreeMap<String, String> = BTreeMap::new();
        if let Some(invoices) = self.dims.get(&Dataset::Invoices) {
            let summaries = self.dims.get(&Dataset::InvoiceSummaries).into_iter().flat_map(|s| s.values().flatten());
            let mut checks =
                reconcile::tie_out(&self.ledger, invoices.values().flatten(), summaries, &self.options.rules);
            checks.extend(reconcile::focus_checks(
                &self.ledger,
                invoices.values().flatten(),
                &self.focus.invoice_sums()?,
                &self.focus_currency_sums()?,
                &self.options.rules,
            ));
            // One bucket, in the tie-out's own order.
            let rows: Vec<Vec<Cell>> = checks.iter().map(reconcile::Check::cells).collect();
            self.dims.insert(Dataset::Reconciliation, BTreeMap::from([(String::new(), rows)]));
        }
        let mut checks: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for ((dataset, _), lines) in &self.lines {
            let counts = checks.entry(format!("match:{dataset}")).or_default();
            for (status, n) in &lines.statuses {
                *counts.entry((*status).to_owned()).or_default() += n;
            }
        }
        if let (Some(rows), Some(schema)) = (self.dims.get(&Dataset::Reconciliation), Dataset::Reconciliation.schema())
        {
            let (status_at, kind_at) = (schema.column("status").unwrap_or(0), schema.column("kind").unwrap_or(0));
            for row in rows.values().flatten() {
                if let (Cell::Str(status), Cell::Str(kind)) = (&row[status_at], &row[kind_at]) {
                    let counts = checks.entry(reconcile::CheckGroup::of_kind(kind).name().into()).or_default();
                    *counts.entry(status.clone()).or_default() += 1;
                }
            }
        }
        let dims = std::mem::take(&mut self.dims);
        for (name, by_scope) in &dims {
            let Some(schema) = name.schema() else { continue };
            // Scope order, then arrival order: the same input gives the same file.
            let rows: Vec<&Vec<Cell>> = by_scope.values().flatten().collect();
            match schema.partition {
                Partition::RowMonth(column) => {
                    let at = schema.column(column).unwrap_or(0);
                    let id = schema.column("id");
                    let mut by_month: BTreeMap<String, Vec<&Vec<Cell>>> = BTreeMap::new();
                    for row in rows {
                        let month =
                            month_of(&row[at].value(), schema.columns[at].ty).unwrap_or_else(|| "unknown".into());
                        if let Some(Cell::Str(invoice)) = id.map(|i| &row[i]) {
                            invoice_months.insert(invoice.to_uppercase(), month.clone());
                        }
                        by_month.entry(month).or_default().push(row);
                    }
                    for (month, rows) in by_month {
                        placed.push((schema, self.write_dimension(schema, &layout::partition(&month), rows)?));
                    }
                }
                _ => placed.push((schema, self.write_dimension(schema, "", rows)?)),
            }
        }
        // Each customer's charges in its invoice's billing month, as the line files are filed.
        if let Some(schema) = Dataset::CustomerCharges.schema() {
            let rows = self.charges.rows(schema, self.options.markup.as_ref(), &invoice_months)?;
            placed.push((schema, self.write_dimension(schema, "", rows.iter().collect())?));
            if self.options.statements {
                for statement in crate::rebill::statements(schema, &rows)? {
                    let path = self.root.join(layout::statement_file(&statement.customer_key, &statement.period));
                    let scope = format!("{}/{}", statement.customer_key, statement.period);
                    self.keep_file(&path, &statement.bytes, scope, Dataset::Statements)?;
                }
            }
        }
        for (schema, scope, mut report) in std::mem::take(&mut self.done) {
            let month = match schema.partition {
                Partition::Invoice => invoice_months.get(&scope.to_uppercase()).cloned(),
                _ => report.month.clone(),
            };
            // A sequence without a row has no billing month to file it under, and nothing to
            // publish: its files go (the manifest's lineage and exports still record it).
            if month.is_none() && report.rows == 0 {
                for file in &report.files {
                    std::fs::remove_file(&file.path).map_err(io_at(Path::new(&file.path)))?;
                }
                continue;
            }
            let month = month.unwrap_or_else(|| "unknown".into());
            for file in &mut report.files {
                let from = PathBuf::from(&file.path);
                let to =
                    from.parent().and_then(Path::parent).map(|d| d.join(layout::partition(&month))).unwrap_or_default();
                std::fs::create_dir_all(&to).map_err(io_at(&to))?;
                let target = to.join(from.file_name().unwrap_or_default());
                std::fs::rename(&from, &target).map_err(io_at(&target))?;
                file.path = target.to_string_lossy().into_owned();
            }
            placed.push((schema, report));
        }
        // Only line items and their FOCUS rows stream into parts; their folders are empty by now.
        for schema in registry().iter().filter(|s| matches!(s.partition, Partition::Invoice | Partition::ScopeMonth(_)))
        {
            for dir in layout::part_dirs(schema.name, layout::STREAMING) {
                let _ = std::fs::remove_dir(self.root.join(dir));
            }
        }

        let mut datasets: BTreeMap<String, DatasetEntry> = BTreeMap::new();
        let mut sums: BTreeMap<Dataset, Totals> = BTreeMap::new();
        let mut files = Vec::new();
        for (schema, report) in placed {
            let entry = datasets.entry(schema.name.to_string()).or_insert_with(|| DatasetEntry::of(schema));
            entry.rows += report.rows;
            sums.entry(schema.name)
                .or_default()
                .merge(report.totals)
                .map_err(|e| StageError::Fx(format!("dataset {}: {e}", schema.name)))?;
            for mut file in report.files {
                file.path = relative(&self.root, &file.path);
                files.push(file);
            }
        }
        for (name, totals) in sums {
            let Some(schema) = name.schema() else { continue };
            let entry = datasets.entry(name.to_string()).or_insert_with(|| DatasetEntry::of(schema));
            entry.control_totals.extend(crate::sink::totals::control_totals(schema, &totals.distinct));
            entry.served_twice_totals.extend(crate::sink::totals::control_totals(schema, &totals.served_twice));
            entry.served_twice_rows += totals.served_twice_rows;
        }
        for ((dataset, _), report) in self.kept {
            datasets
                .entry(dataset.to_string())
                .or_insert_with(|| DatasetEntry { rows: 0, ..DatasetEntry::new(1) })
                .rows += 1;
            files.push(report);
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        // By name: the content digest reads the datasets in that order.
        let mut by_invoice: BTreeMap<String, BTreeMap<&str, String>> = BTreeMap::new();
        for ((dataset, invoice), hasher) in std::mem::take(&mut self.content) {
            by_invoice.entry(invoice).or_default().insert(dataset.name(), crate::model::hex(&hasher.finalize()));
        }
        let exports = std::mem::take(&mut self.exports);
        let lineage = by_invoice
            .into_iter()
            .map(|(invoice, parts)| {
                let mut hasher = sha2::Sha256::new();
                let mut etags = BTreeMap::new();
                for (dataset, digest) in parts {
                    hasher.update(format!("{dataset}={digest}\n"));
                    if let Some(export) = exports.get(&format!("{dataset}/{invoice}")) {
                        etags.insert(dataset.to_owned(), export.etag.clone());
                    }
                }
                (invoice, InvoiceLineage { content_sha256: crate::model::hex(&hasher.finalize()), etags })
            })
            .collect();
        let not_ready = self.ledger.not_ready_list();
        let mut schema_drift: BTreeMap<String, Drift> = BTreeMap::new();
        for ((dataset, _), drift) in std::mem::take(&mut self.drift) {
            schema_drift.entry(dataset.to_string()).or_default().add(&drift);
        }
        schema_drift.retain(|_, d| *d != Drift::default());
        let operations = exports
            .iter()
            .map(|(key, e)| {
                let operation = ExportOperation {
                    operation_id: e.operation_id.clone(),
                    manifest_id: e.manifest_id.clone(),
                    blobs: e.blobs.clone(),
                };
                (key.clone(), operation)
            })
            .collect();
        let exports = exports
            .into_iter()
            .map(|(key, e)| (key, ExportData { etag: e.etag, attribute_set: e.attribute_set }))
            .collect();
        let manifest = Manifest {
            format: crate::sink::manifest::MANIFEST_FORMAT,
            source,
            provenance,
            datasets,
            checks,
            files,
            lineage,
            exports,
            operations,
            not_ready,
            schema_drift,
        };
        let t = self.stages;
        tracing::info!(
            event = "stage_ms",
            digest = t.digest.as_millis() as u64,
            decode = t.decode.as_millis() as u64,
            normalize = t.normalize.as_millis() as u64,
            matching = t.matching.as_millis() as u64,
            write = t.write.as_millis() as u64,
            finish = finishing.elapsed().as_millis() as u64
        );
        let path = self.root.join("manifest.json");
        let mut text = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| StageError::Io { path: path.clone(), source: io::Error::other(e) })?;
        text.push(b'\n');
        std::fs::write(&path, text).map_err(io_at(&path))?;
        if let Some(key) = &self.options.signing_key {
            key.sign(&path).map_err(|e| StageError::Io { path: e.path.clone(), source: io::Error::other(e.reason) })?;
        }
        Ok(manifest)
    }
}
