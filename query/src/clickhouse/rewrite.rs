//! ClickHouse functions that are compositions of DataFusion built-ins, expanded in the parsed
//! SQL before planning: `toStartOfHour(t)` becomes `date_trunc('hour', t)`, `countIf(c)`
//! becomes `count(CASE WHEN c THEN 1 END)`, `quantile(0.9)(x)` becomes `quantile(x, 0.9)`, …
//! Expanding (rather than wrapping in opaque functions) keeps DataFusion's optimisations:
//! pruning on `date_trunc`, distinct-count plans, constant folding of `today()`.
//!
//! Each expansion is a SQL template whose `__0`, `__1`, … stand for the call's arguments.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::OnceLock;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, Expr as SqlExpr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident,
    Statement,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::{QueryError, Result};

/// `(ClickHouse name, arity, DataFusion template)`. Names match case-insensitively.
const EXPANSIONS: &[(&str, usize, &str)] = &[
    // Aggregates.
    ("count", 0, "count(*)"),
    ("uniq", 1, "uniq_exact(__0)"),
    ("uniqExact", 1, "uniq_exact(__0)"),
    ("uniqCombined", 1, "uniq_exact(__0)"),
    ("uniqCombined64", 1, "uniq_exact(__0)"),
    ("uniqHLL12", 1, "uniq_exact(__0)"),
    ("countIf", 1, "count(CASE WHEN __0 THEN 1 END)"),
    ("sumIf", 2, "coalesce(sum(CASE WHEN __1 THEN __0 END), 0)"),
    ("avgIf", 2, "avg(CASE WHEN __1 THEN __0 END)"),
    ("minIf", 2, "min(CASE WHEN __1 THEN __0 END)"),
    ("maxIf", 2, "max(CASE WHEN __1 THEN __0 END)"),
    ("any", 1, "first_value(__0)"),
    ("anyLast", 1, "last_value(__0)"),
    ("groupArray", 1, "array_agg(__0)"),
    ("groupUniqArray", 1, "array_agg(DISTINCT __0)"),
    // Dates and times (UTC). ClickHouse weeks start on Sunday (mode 0).
    ("toStartOfMinute", 1, "date_trunc('minute', __0)"),
    ("toStartOfFiveMinutes", 1, "date_bin(INTERVAL '5 minutes', __0, TIMESTAMP '1970-01-01T00:00:00Z')"),
    ("toStartOfFifteenMinutes", 1, "date_bin(INTERVAL '15 minutes', __0, TIMESTAMP '1970-01-01T00:00:00Z')"),
    ("toStartOfHour", 1, "date_trunc('hour', __0)"),
    ("toStartOfDay", 1, "date_trunc('day', __0)"),
    ("toStartOfWeek", 1, "CAST(date_trunc('week', CAST(__0 AS DATE) + INTERVAL '1 day') - INTERVAL '1 day' AS DATE)"),
    ("toMonday", 1, "CAST(date_trunc('week', CAST(__0 AS DATE)) AS DATE)"),
    ("toStartOfMonth", 1, "CAST(date_trunc('month', CAST(__0 AS DATE)) AS DATE)"),
    ("toStartOfQuarter", 1, "CAST(date_trunc('quarter', CAST(__0 AS DATE)) AS DATE)"),
    ("toStartOfYear", 1, "CAST(date_trunc('year', CAST(__0 AS DATE)) AS DATE)"),
    ("toYYYYMM", 1, "CAST(date_part('year', __0) * 100 + date_part('month', __0) AS INT)"),
    ("toYYYYMMDD", 1, "CAST(date_part('year', __0) * 10000 + date_part('month', __0) * 100 + date_part('day', __0) AS INT)"),
    ("toYear", 1, "CAST(date_part('year', __0) AS INT)"),
    ("toMonth", 1, "CAST(date_part('month', __0) AS INT)"),
    ("toDayOfMonth", 1, "CAST(date_part('day', __0) AS INT)"),
    ("toHour", 1, "CAST(date_part('hour', __0) AS INT)"),
    ("toDayOfWeek", 1, "CAST(date_part('isodow', __0) AS INT)"),
    ("toDate", 1, "CAST(__0 AS DATE)"),
    ("toDateTime", 1, "CAST(__0 AS TIMESTAMP)"),
    ("today", 0, "CAST(now() AS DATE)"),
    ("yesterday", 0, "CAST(now() AS DATE) - INTERVAL '1 day'"),
    ("toUnixTimestamp", 1, "CAST(date_part('epoch', __0) AS BIGINT)"),
    // Conversions: the `OrZero` / `OrNull` forms never fail.
    ("toFloat64OrZero", 1, "coalesce(try_cast(__0 AS DOUBLE), 0.0)"),
    ("toFloat64OrNull", 1, "try_cast(__0 AS DOUBLE)"),
    ("toInt64OrZero", 1, "coalesce(try_cast(__0 AS BIGINT), 0)"),
    ("toInt64OrNull", 1, "try_cast(__0 AS BIGINT)"),
    ("toFloat64", 1, "CAST(__0 AS DOUBLE)"),
    ("toInt64", 1, "CAST(__0 AS BIGINT)"),
    ("toString", 1, "CAST(__0 AS VARCHAR)"),
    // Strings and conditionals.
    // (`empty` stays DataFusion's array function.)
    ("notEmpty", 1, "(length(__0) > 0)"),
    ("if", 3, "CASE WHEN __0 THEN __1 ELSE __2 END"),
    ("ifNull", 2, "coalesce(__0, __1)"),
];

/// Parametric aggregates, `name(params)(args)`: the parameters become trailing arguments of
/// the UDAF named here.
const PARAMETRIC: &[(&str, &str)] = &[
    ("quantile", "quantile"),
    ("quantileExact", "quantile_exact"),
    ("quantileTiming", "quantile"),
    ("quantileTDigest", "quantile"),
];

struct Template {
    arity: usize,
    expr: SqlExpr,
}

fn templates() -> &'static HashMap<String, Template> {
    static T: OnceLock<HashMap<String, Template>> = OnceLock::new();
    T.get_or_init(|| {
        EXPANSIONS
            .iter()
            .map(|(name, arity, sql)| {
                let expr = Parser::new(&GenericDialect)
                    .try_with_sql(sql)
                    .and_then(|mut p| p.parse_expr())
                    .unwrap_or_else(|e| panic!("expansion of {name} does not parse: {e}"));
                (
                    name.to_ascii_lowercase(),
                    Template {
                        arity: *arity,
                        expr,
                    },
                )
            })
            .collect()
    })
}

/// The plain positional arguments of a call, or `None` if it has other forms (named
/// arguments, `*`, clauses, DISTINCT) that a template cannot carry.
fn plain_args(args: &FunctionArguments) -> Option<Vec<SqlExpr>> {
    match args {
        FunctionArguments::None => Some(Vec::new()),
        FunctionArguments::List(l) if l.duplicate_treatment.is_none() && l.clauses.is_empty() => l
            .args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

fn substitute(template: &SqlExpr, args: &[SqlExpr]) -> SqlExpr {
    let mut out = template.clone();
    let _ = visit_expressions_mut(&mut out, |e| {
        if let SqlExpr::Identifier(Ident { value, .. }) = e {
            if let Some(i) = value
                .strip_prefix("__")
                .and_then(|n| n.parse::<usize>().ok())
            {
                if let Some(a) = args.get(i) {
                    *e = a.clone();
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    out
}

/// Expands the ClickHouse functions of `stmt` in place.
pub(crate) fn rewrite(stmt: &mut Statement) -> Result<()> {
    let templates = templates();
    let flow = visit_expressions_mut(stmt, |e| {
        let SqlExpr::Function(f) = e else {
            return ControlFlow::Continue(());
        };
        let name = f.name.to_string();
        let lower = name.to_ascii_lowercase();
        if !matches!(f.parameters, FunctionArguments::None) {
            let Some((_, udaf)) = PARAMETRIC
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&name))
            else {
                return ControlFlow::Break(format!(
                    "{name}(…)(…): the parametric form is not supported for this function"
                ));
            };
            let (Some(params), Some(args)) = (plain_args(&f.parameters), plain_args(&f.args))
            else {
                return ControlFlow::Break(format!("{name}: unsupported arguments"));
            };
            if params.len() != 1 || args.len() != 1 {
                return ControlFlow::Break(format!(
                    "{name}(level)(x) takes one level and one expression"
                ));
            }
            let call = format!("{udaf}(__0, __1)");
            let template = match Parser::new(&GenericDialect)
                .try_with_sql(&call)
                .and_then(|mut p| p.parse_expr())
            {
                Ok(t) => t,
                Err(err) => return ControlFlow::Break(err.to_string()),
            };
            *e = substitute(&template, &[args[0].clone(), params[0].clone()]);
            return ControlFlow::Continue(());
        }
        let Some(t) = templates.get(&lower) else {
            return ControlFlow::Continue(());
        };
        // A window call (OVER) or a FILTER clause keeps DataFusion's own meaning.
        if f.over.is_some() || f.filter.is_some() {
            return ControlFlow::Continue(());
        }
        let Some(args) = plain_args(&f.args) else {
            return ControlFlow::Continue(());
        };
        if args.len() != t.arity {
            // `count(x)`, `lower(s)` etc. with DataFusion's own arities stay as they are.
            return ControlFlow::Continue(());
        }
        *e = substitute(&t.expr, &args);
        ControlFlow::Continue(())
    });
    match flow {
        ControlFlow::Break(msg) => Err(QueryError::InvalidQuery(msg)),
        ControlFlow::Continue(()) => Ok(()),
    }
}
