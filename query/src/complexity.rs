//! How complex a statement may be: its size in bytes, the depth and number of its expression
//! nodes, the length of an `IN (…)` list and the number of queries a `UNION` chain joins.
//! Checked on the parsed statement before anything else looks at it, so planning never meets
//! a statement whose recursion could outgrow a thread's stack or whose planning time grows
//! without bound (a 3,000-term `OR` chain is 3,000 levels deep: each level costs stack in
//! every recursive pass and time in every optimizer rule).
//!
//! The walk stops at the first limit it passes, so it never descends further than the depth
//! limit itself. Statements are dropped on a stack sized for their depth ([`drop_deep`]):
//! a left-deep chain of 100,000 `+` is 100,000 nested boxes, and dropping it recurses.

use std::ops::ControlFlow;

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Expr, Query, SetExpr, Visit, Visitor};

use crate::error::{QueryError, Result};

/// The limits (`[query]` in the config file: `max_statement_bytes`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComplexityLimits {
    /// Most bytes of SQL text in one statement.
    pub max_statement_bytes: usize,
    /// Deepest nesting of expressions (`a OR b OR c` is 3 levels deep; so is `f(g(h(x)))`).
    pub max_expression_depth: usize,
    /// Most expression nodes in one statement (every column, literal, operator and call).
    pub max_expression_nodes: usize,
    /// Most items of one `IN (…)` list.
    pub max_in_list: usize,
    /// Most queries one chain of `UNION` / `INTERSECT` / `EXCEPT` combines.
    pub max_union_arity: usize,
    /// Deepest nesting of queries in queries (subqueries, CTE bodies, derived tables).
    pub max_subquery_depth: usize,
}

impl Default for ComplexityLimits {
    fn default() -> Self {
        Self {
            max_statement_bytes: 256 << 10,
            max_expression_depth: 500,
            max_expression_nodes: 50_000,
            max_in_list: 20_000,
            max_union_arity: 256,
            max_subquery_depth: 16,
        }
    }
}

impl ComplexityLimits {
    /// Refuses SQL text over `max_statement_bytes` before it is parsed.
    pub(crate) fn check_text(&self, sql: &str) -> Result<()> {
        if sql.len() > self.max_statement_bytes {
            return Err(too_complex(format!(
                "the statement has {} bytes, more than query.max_statement_bytes = {}",
                sql.len(),
                self.max_statement_bytes
            )));
        }
        Ok(())
    }

    /// Refuses a parsed statement over any of the limits, naming the one it passed.
    pub(crate) fn check(&self, statement: &DfStatement) -> Result<()> {
        let mut walk = Walk {
            limits: self,
            depth: 0,
            nodes: 0,
            queries: 0,
        };
        let outcome = self.with_stack(|| match statement {
            DfStatement::Statement(s) => s.visit(&mut walk),
            DfStatement::Explain(e) => match e.statement.as_ref() {
                DfStatement::Statement(s) => s.visit(&mut walk),
                _ => ControlFlow::Continue(()),
            },
            _ => ControlFlow::Continue(()),
        });
        match outcome {
            ControlFlow::Break(message) => Err(too_complex(message)),
            ControlFlow::Continue(()) => Ok(()),
        }
    }

    /// Runs `f`, a recursive pass over a statement within these limits, on a stack large
    /// enough for the deepest statement they allow (a fresh segment if the thread's own stack
    /// has less left). sqlparser's visitors take up to ~18 KiB a nesting level in a debug
    /// build (well under 1 KiB optimised); this gives 32 KiB a level.
    pub(crate) fn with_stack<R>(&self, f: impl FnOnce() -> R) -> R {
        const PER_LEVEL: usize = 32 << 10;
        let levels = self.max_expression_depth + 8 * self.max_subquery_depth + 16;
        let need = levels.saturating_mul(PER_LEVEL) + (1 << 20);
        stacker::maybe_grow(need, need, f)
    }

    /// The SQL parser's own nesting limit (parentheses, subqueries, prefix operators), kept
    /// in step with the expression depth limit.
    pub(crate) fn parser_recursion_limit(&self) -> usize {
        self.max_expression_depth.max(16)
    }
}

pub(crate) fn too_complex(message: impl Into<String>) -> QueryError {
    QueryError::TooComplex(message.into())
}

struct Walk<'a> {
    limits: &'a ComplexityLimits,
    depth: usize,
    nodes: usize,
    /// Queries entered and not yet left.
    queries: usize,
}

impl Visitor for Walk<'_> {
    type Break = String;

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<String> {
        let l = self.limits;
        self.depth += 1;
        self.nodes += 1;
        if self.depth > l.max_expression_depth {
            return ControlFlow::Break(format!(
                "expressions are nested more than query.max_expression_depth = {} levels deep \
                 (long chains of AND, OR, || or + count one level per operator; an IN list \
                 or a CASE counts once)",
                l.max_expression_depth
            ));
        }
        if self.nodes > l.max_expression_nodes {
            return ControlFlow::Break(format!(
                "the statement has more than query.max_expression_nodes = {} expression nodes",
                l.max_expression_nodes
            ));
        }
        if let Expr::InList { list, .. } = expr {
            if list.len() > l.max_in_list {
                return ControlFlow::Break(format!(
                    "an IN list has {} items, more than query.max_in_list = {}",
                    list.len(),
                    l.max_in_list
                ));
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<String> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<String> {
        self.queries -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<String> {
        self.queries += 1;
        // The statement itself is the first query.
        if self.queries > self.limits.max_subquery_depth + 1 {
            return ControlFlow::Break(format!(
                "queries are nested more than query.max_subquery_depth = {} levels deep",
                self.limits.max_subquery_depth
            ));
        }
        // Set operations nest to the left (`(a UNION b) UNION c`); count their operands
        // without recursion, before the visitor descends into them.
        let mut arity = 0usize;
        let mut pending: Vec<&SetExpr> = vec![query.body.as_ref()];
        while let Some(s) = pending.pop() {
            match s {
                SetExpr::SetOperation { left, right, .. } => {
                    pending.push(left);
                    pending.push(right);
                }
                _ => arity += 1,
            }
            if arity > self.limits.max_union_arity {
                return ControlFlow::Break(format!(
                    "a UNION / INTERSECT / EXCEPT chain combines more than \
                     query.max_union_arity = {} queries",
                    self.limits.max_union_arity
                ));
            }
        }
        ControlFlow::Continue(())
    }
}

/// Stack one nesting level of a parsed statement may need while it is dropped (measured:
/// well under 200 bytes a level; twice that for margin).
const DROP_STACK_PER_BYTE_OF_SQL: usize = 512;

/// Drops a parsed statement on a stack sized for the deepest nesting its text allows (one
/// level per byte at most), so a rejected 100,000-level chain cannot overflow the thread.
pub(crate) fn drop_deep(statement: DfStatement, sql_bytes: usize) {
    let need = sql_bytes.saturating_mul(DROP_STACK_PER_BYTE_OF_SQL);
    if need <= 256 << 10 {
        drop(statement);
    } else {
        stacker::grow(need, move || drop(statement));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParserBuilder;

    fn parse(sql: &str) -> DfStatement {
        DFParserBuilder::new(sql)
            .with_recursion_limit(1000)
            .build()
            .unwrap()
            .parse_statements()
            .unwrap()
            .pop_front()
            .unwrap()
    }

    fn check(sql: &str) -> std::result::Result<(), String> {
        let limits = ComplexityLimits {
            max_statement_bytes: 1 << 20,
            max_expression_depth: 100,
            max_expression_nodes: 1000,
            max_in_list: 50,
            max_union_arity: 10,
            max_subquery_depth: 4,
        };
        limits.check_text(sql).map_err(|e| e.to_string())?;
        let s = parse(sql);
        let r = limits.check(&s).map_err(|e| e.to_string());
        drop_deep(s, sql.len());
        r
    }

    fn chain(op: &str, n: usize) -> String {
        let terms: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
        format!("SELECT {} FROM t", terms.join(op))
    }

    #[test]
    fn each_limit_is_named_when_passed() {
        assert!(check(&chain(" OR ", 90)).is_ok());
        let e = check(&chain(" OR ", 120)).unwrap_err();
        assert!(e.contains("query.max_expression_depth = 100"), "{e}");
        let many: Vec<String> = (0..400).map(|i| format!("c{i} + 1")).collect();
        let e = check(&format!("SELECT {} FROM t", many.join(", "))).unwrap_err();
        assert!(e.contains("query.max_expression_nodes = 1000"), "{e}");
        let list: Vec<String> = (0..60).map(|i| i.to_string()).collect();
        let e = check(&format!("SELECT 1 FROM t WHERE a IN ({})", list.join(","))).unwrap_err();
        assert!(e.contains("query.max_in_list = 50"), "{e}");
        let u = vec!["SELECT 1"; 11].join(" UNION ALL ");
        let e = check(&u).unwrap_err();
        assert!(e.contains("query.max_union_arity = 10"), "{e}");
        assert!(check(&vec!["SELECT 1"; 10].join(" UNION ALL ")).is_ok());
        let nest = |k: usize| format!("SELECT {}1{}", "(SELECT ".repeat(k), ")".repeat(k));
        assert!(check(&nest(4)).is_ok());
        let e = check(&nest(5)).unwrap_err();
        assert!(e.contains("query.max_subquery_depth = 4"), "{e}");
    }

    #[test]
    fn a_very_deep_chain_is_refused_and_dropped_without_overflowing() {
        // 200,000 levels: parsing is iterative for left-deep chains, the walk stops at the
        // depth limit, and the drop runs on a grown stack.
        let sql = format!("SELECT 1{}", "+1".repeat(200_000));
        let handle = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || check(&sql))
            .unwrap();
        let e = handle.join().unwrap().unwrap_err();
        assert!(e.contains("max_expression_depth"), "{e}");
    }

    #[test]
    fn statement_bytes_are_checked_before_parsing() {
        let limits = ComplexityLimits {
            max_statement_bytes: 10,
            ..Default::default()
        };
        let e = limits.check_text("SELECT 1 + 2 + 3").unwrap_err();
        assert!(e.to_string().contains("query.max_statement_bytes = 10"));
    }
}
