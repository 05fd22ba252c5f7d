//! One page through the stages of its dataset: its items decoded into one record batch (rejects
//! kept aside when the run allows them), the reporting-currency arrays added, and then buffered
//! (master data, written at the end) or matched and streamed into the sequence's part file.
//!
//! In: a page and the schema of one dataset it fills. Out: rows in the snapshot's buffers, batches
//! in its part files. It does not decide what the page is (that is `Snapshot::handle`).

use rayon::prelude::*;

use super::*;

impl Snapshot {
    /// Decodes a page into one dataset's batch and routes it to its file or its buffer; with
    /// `digest`, also digests its items into `item_digests`.
    pub(super) fn take_page(
        &mut self,
        schema: &'static DatasetSchema,
        page: &crate::model::page::Page,
        digest: bool,
    ) -> Result<(), StageError> {
        let origin = Origin { scope: &page.scope, page: page.number };
        let at_page = |e: &dyn std::fmt::Display| {
            format!("dataset {}, scope {}, page {}: {e}", schema.name, page.scope, page.number)
        };
        let started = std::time::Instant::now();
        if digest {
            self.item_digests = page.items.par_iter().map(|span| short_digest(&page.body[span.clone()])).collect();
        }
        let digested_at = std::time::Instant::now();
        self.stages.digest += digested_at - started;
        // Unread members are looked for once per item: in the first dataset that decodes the page.
        let keep = self.options.keep_unknown_fields;
        let known = &*self.known.entry(page.dataset).or_insert_with(|| KnownFields::of(page.dataset, keep));
        let promised = match page.paging {
            crate::model::page::Paging::Lines => promised_attributes(page.dataset),
            _ => &[],
        };
        let names_invoice = page.paging == crate::model::page::Paging::Lines
            && page.dataset.scope_kind() == crate::tabular::ScopeKind::Invoice;
        let checks = digest.then_some(Checks { known, promised, names_invoice });
        let decoded =
            decode_page(schema, &page.body, &page.items, origin, checks).map_err(|e| StageError::Batch(at_page(&e)))?;
        // Notes and errors in item order, as the items came: drift is counted and warned about,
        // and the first error fails the page unless the run keeps rejects.
        let mut errors = decoded.errors.into_iter().peekable();
        let mut notes = decoded.notes.into_iter().peekable();
        loop {
            let error_first = match (notes.peek(), errors.peek()) {
                (None, None) => break,
                (Some((n, _)), Some((e, _))) => e < n,
                (None, Some(_)) => true,
                (Some(_), None) => false,
            };
            if error_first {
                let Some((index, error)) = errors.next() else { break };
                if !self.options.rejects {
                    return Err(error.into());
                }
                self.rejected.insert((page.dataset, page.scope.clone()));
                self.reject(&error, &page.body[page.items[index].clone()]);
                continue;
            }
            let Some((index, item)) = notes.next() else { break };
            for field in item.unknown {
                let seen = self.drift.entry((page.dataset, page.scope.clone())).or_default();
                if !seen.unknown.contains_key(&field) {
                    tracing::warn!(event = "unknown_field", field = %field, record = index);
                }
                *seen.unknown.entry(field).or_default() += 1;
            }
            // Judged against the attribute set when the sequence ends and names it.
            for attribute in item.missing {
                let seen = self.drift.entry((page.dataset, page.scope.clone())).or_default();
                *seen.missing.entry(attribute.to_owned()).or_default() += 1;
            }
        }
        let mut batch = decoded.batch;
        if schema.name == Dataset::Invoices {
            self.remember_invoices(schema, &batch);
        }
        let decoded_at = std::time::Instant::now();
        self.stages.decode += decoded_at - digested_at;
        let invoice = self.invoice_dates.get(&page.scope.to_uppercase()).copied();
        if let Some(normalizer) = self.normalizer.as_mut() {
            batch = normalizer.apply(schema, &batch, invoice).map_err(|e| StageError::Fx(at_page(&e)))?;
        }
        let normalized_at = std::time::Instant::now();
        self.stages.normalize += normalized_at - decoded_at;
        if is_dimension(schema) {
            let rows = rows_of(&batch);
            self.dims.entry(schema.name).or_default().entry(page.scope.clone()).or_default().extend(rows);
            return Ok(());
        }
        if schema.name.is_line_item() {
            batch = self
                .check_lines(schema, page, &batch, &decoded.row_items)
                .map_err(|e| StageError::Batch(at_page(&e)))?;
            self.charges.observe(schema, &page.scope, &batch)?;
            if crate::focus::is_source(schema.name) {
                self.write_focus(schema, &page.scope, &batch)?;
            }
        }
        let matched_at = std::time::Instant::now();
        self.stages.matching += matched_at - normalized_at;
        let key = (schema.name, page.scope.clone());
        if !self.open.contains_key(&key) {
            let part = layout::part_name(schema, &page.scope);
            let (writer, _) = self.part_writer(schema, layout::STREAMING, &part)?;
            self.open.insert(key.clone(), writer);
        }
        if let Some(writer) = self.open.get_mut(&key) {
            writer.push_batch(batch).map_err(io_at(&self.root))?;
        }
        self.stages.write += matched_at.elapsed();
        Ok(())
    }

    /// Writes the FOCUS rows of a charge batch into its sequence's `focus` part.
    fn write_focus(&mut self, schema: &DatasetSchema, scope: &str, batch: &RecordBatch) -> Result<(), StageError> {
        if !self.focus.knows_documents() {
            let invoices = self.dims.get(&Dataset::Invoices).into_iter().flat_map(|d| d.values().flatten());
            self.focus.learn_documents(invoices);
        }
        let Some(rows) = self.focus.rows(schema, scope, batch)? else { return Ok(()) };
        let Some(focus) = Dataset::Focus.schema() else { return Ok(()) };
        let key = (Dataset::Focus, crate::focus::part_scope(schema.name, scope));
        if !self.open.contains_key(&key) {
            let (writer, _) = self.part_writer(focus, layout::STREAMING, &layout::part_name(focus, &key.1))?;
            self.open.insert(key.clone(), writer);
        }
        if let Some(writer) = self.open.get_mut(&key) {
            writer.push_batch(rows).map_err(io_at(&self.root))?;
        }
        Ok(())
    }

    /// Keeps a record that could not be decoded, with where it was and why.
    fn reject(&mut self, error: &RowError, item: &[u8]) {
        tracing::warn!(event = "record_rejected", dataset = %error.dataset, scope = %error.scope, page = error.page, record = error.record, field = %error.field, reason = %error.reason);
        let row = vec![
            Cell::Str(error.dataset.clone()),
            Cell::Str(error.scope.clone()),
            Cell::Int(i64::from(error.page)),
            Cell::Int(error.record as i64),
            Cell::Str(error.field.clone()),
            Cell::Str(error.column.clone()),
            Cell::Str(error.reason.clone()),
            Cell::Str(String::from_utf8_lossy(item).into_owned()),
        ];
        let key = format!("{}/{}", error.dataset, error.scope);
        self.dims.entry(Dataset::Rejects).or_default().entry(key).or_default().push(row);
    }

    /// Notes each invoice's dates, which the rows of its line items are converted with.
    fn remember_invoices(&mut self, schema: &DatasetSchema, batch: &RecordBatch) {
        let (Some(id), Some(date), Some(end)) =
            (schema.column("id"), schema.column("invoice_date"), schema.column("billing_period_end_date"))
        else {
            return;
        };
        let columns = Columns::of(batch);
        for r in 0..columns.rows() {
            if let Value::Str(invoice) = columns.value(id, r) {
                let dates = InvoiceDates {
                    invoice_date: day_of(&columns.value(date, r), schema.columns[date].ty),
                    period_end: day_of(&columns.value(end, r), schema.columns[end].ty),
                };
                self.invoice_dates.insert(invoice.to_uppercase(), dates);
            }
        }
    }
}
