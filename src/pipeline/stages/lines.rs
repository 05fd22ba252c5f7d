//! Line items against what was sold: each row matched to its order, subscription and
//! entitlement, items served twice spotted, the match arrays added, exceptions kept for
//! `match_exceptions`, and each distinct line observed by the tie-out.
//!
//! In: the batch of one page of a line-item dataset and the item each row came from. Out: the
//! batch with its match columns, exception rows, the ledger's sums. It writes no file.

use rayon::prelude::*;

use super::*;

impl Snapshot {
    pub(super) fn check_lines(
        &mut self,
        schema: &'static DatasetSchema,
        page: &crate::model::page::Page,
        batch: &RecordBatch,
        items: &[u32],
    ) -> Result<RecordBatch, arrow_schema::ArrowError> {
        if self.index.is_none() {
            // Master data arrives first: by the first line item, the index can be complete.
            let mut index = MatchIndex::default();
            for name in [Dataset::Orders, Dataset::Subscriptions, Dataset::Entitlements] {
                if let (Some(s), Some(by_scope)) = (name.schema(), self.dims.get(&name)) {
                    for rows in by_scope.values() {
                        index.add(s, rows);
                    }
                }
            }
            self.index = Some(index);
        }
        let Some(index) = self.index.as_ref() else { return Ok(batch.clone()) };
        let columns = Columns::of(batch);
        let matches: Vec<Match> = {
            let keys = LineKeys::of(schema);
            (0..columns.rows()).into_par_iter().map(|r| index.match_row(&keys, &columns.row(r))).collect()
        };
        let key = (schema.name, page.scope.clone());
        let mut exceptions = Vec::new();
        let observer = Observer::of(schema);
        let sums = self.ledger.sums_mut(schema.name, &page.scope);
        let lines = self.lines.entry(key).or_default();
        let targets: Vec<(usize, MatchColumn)> = schema
            .columns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c.source {
                Source::Match(which) => Some((i, which)),
                _ => None,
            })
            .collect();
        let mut builders: Vec<ColumnBuilder> =
            targets.iter().map(|(i, _)| ColumnBuilder::new(schema.columns[*i].ty, columns.rows())).collect();
        let text = |r: usize, column: &str| match schema.column(column).map(|i| columns.value(i, r)) {
            Some(Value::Str(s)) => Cell::Str(s.into_owned()),
            _ => Cell::Null,
        };
        for ((r, m), item) in matches.into_iter().enumerate().zip(items) {
            let position = lines.position;
            lines.position += 1;
            *lines.statuses.entry(m.status).or_default() += 1;
            let exceptional = m.is_exception();
            let duplicate = !lines.seen.insert(self.item_digests[*item as usize]);
            for (builder, (_, which)) in builders.iter_mut().zip(&targets) {
                builder.append_str(match which {
                    MatchColumn::Status => Some(m.status),
                    MatchColumn::Rule => Some(m.rule),
                    MatchColumn::Order => m.order.as_deref(),
                    MatchColumn::Subscription => m.subscription.as_deref(),
                    MatchColumn::Entitlement => m.entitlement.as_deref(),
                });
            }
            let entitlement = if exceptional || duplicate { m.entitlement.clone() } else { None };
            let exception = |reason: &str, rule: &str, failed: Option<String>| {
                let subscription = match schema.column("syndication_partner_subscription_number") {
                    Some(_) => text(r, "syndication_partner_subscription_number"),
                    None => text(r, "subscription_id"),
                };
                vec![
                    Cell::Str(schema.name.name().to_owned()),
                    Cell::Str(page.scope.clone()),
                    Cell::Int(position as i64),
                    Cell::Str(reason.to_owned()),
                    Cell::Str(rule.to_owned()),
                    text(r, "customer_id"),
                    text(r, "order_id"),
                    subscription,
                    entitlement.clone().map_or(Cell::Null, Cell::Str),
                    failed.map_or(Cell::Null, Cell::Str),
                ]
            };
            if exceptional {
                exceptions.push(exception(m.status, m.rule, m.failed_key.clone()));
            }
            if duplicate {
                exceptions.push(exception("duplicate_line", "item", None));
                continue;
            }
            observer.observe(sums, &columns.row(r));
        }
        if !exceptions.is_empty() {
            let bucket = format!("{}/{}", schema.name, page.scope);
            self.dims.entry(Dataset::MatchExceptions).or_default().entry(bucket).or_default().extend(exceptions);
        }
        let mut replaced = Vec::with_capacity(targets.len());
        for (builder, (i, _)) in builders.iter_mut().zip(&targets) {
            replaced.push((*i, builder.finish()?));
        }
        with_columns(batch, replaced)
    }
}
