//! Line items against what was sold: each row matched to its order, subscription and
//! entitlement, items served twice spotted, the match columns filled, exceptions kept for
//! `match_exceptions`, and each distinct line observed by the tie-out.
//!
//! In: the decoded rows of one page of a line-item dataset. Out: the rows with their match
//! columns, exception rows, the ledger's sums. It writes no file.

use rayon::prelude::*;

use super::*;

impl Snapshot {
    pub(super) fn check_lines(&mut self, schema: &'static DatasetSchema, page: &crate::model::page::Page) {
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
        let Some(index) = self.index.as_ref() else { return };
        let matches: Vec<Match> = self.rows.par_iter().map(|row| index.match_row(schema, row)).collect();
        let key = (schema.name, page.scope.clone());
        let mut exceptions = Vec::new();
        let observer = Observer::of(schema);
        let sums = self.ledger.sums_mut(schema.name, &page.scope);
        let lines = self.lines.entry(key).or_default();
        for ((row, mut m), item) in self.rows.iter_mut().zip(matches).zip(&self.row_items) {
            let position = lines.position;
            lines.position += 1;
            *lines.statuses.entry(m.status).or_default() += 1;
            let exceptional = m.is_exception();
            let duplicate = !lines.seen.insert(self.item_digests[*item]);
            let entitlement = if exceptional || duplicate { m.entitlement.clone() } else { None };
            for (i, column) in schema.columns.iter().enumerate() {
                let Source::Match(which) = column.source else { continue };
                // Each match column appears once: its value moves into the row.
                let value = match which {
                    MatchColumn::Status => Some(m.status.to_owned()),
                    MatchColumn::Rule => Some(m.rule.to_owned()),
                    MatchColumn::Order => m.order.take(),
                    MatchColumn::Subscription => m.subscription.take(),
                    MatchColumn::Entitlement => m.entitlement.take(),
                };
                row[i] = value.map_or(Cell::Null, Cell::Str);
            }
            let exception = |reason: &str, rule: &str, failed: Option<String>| {
                let subscription = match schema.column("syndication_partner_subscription_number") {
                    Some(_) => text(schema, row, "syndication_partner_subscription_number"),
                    None => text(schema, row, "subscription_id"),
                };
                vec![
                    Cell::Str(schema.name.name().to_owned()),
                    Cell::Str(page.scope.clone()),
                    Cell::Int(position as i64),
                    Cell::Str(reason.to_owned()),
                    Cell::Str(rule.to_owned()),
                    text(schema, row, "customer_id"),
                    text(schema, row, "order_id"),
                    subscription,
                    entitlement.clone().map_or(Cell::Null, Cell::Str),
                    failed.map_or(Cell::Null, Cell::Str),
                ]
            };
            if exceptional {
                exceptions.push(exception(m.status, m.rule, m.failed_key.take()));
            }
            if duplicate {
                exceptions.push(exception("duplicate_line", "item", None));
                continue;
            }
            observer.observe(sums, row);
        }
        if !exceptions.is_empty() {
            let bucket = format!("{}/{}", schema.name, page.scope);
            self.dims.entry(Dataset::MatchExceptions).or_default().entry(bucket).or_default().extend(exceptions);
        }
    }
}
