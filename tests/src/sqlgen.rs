//! TESTPLAN FZ-03: a grammar-based random SQL generator (in the manner of sqlsmith) over the
//! `events` schema and the ClickHouse functions analysts use. Most statements are valid or
//! nearly valid (so they reach the planner and the executor, not only the parser); a share
//! are deliberately hostile: deep nesting, long operator chains, huge literals and lists,
//! odd types and casts, window functions, joins, set operations, values built to be huge.
//!
//! Deterministic per seed: a failing statement is reproduced by its seed and index.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Columns of `events` with a rough type: `s` string, `n` number, `t` timestamp, `m` map.
const COLUMNS: &[(&str, char)] = &[
    ("timestamp", 't'),
    ("received_at", 't'),
    ("created_at", 't'),
    ("app_id", 's'),
    ("event_type", 's'),
    ("user_id", 's'),
    ("session_id", 's'),
    ("device_id", 's'),
    ("platform", 's'),
    ("app_version", 's'),
    ("attribution_campaign", 's'),
    ("attribution_source", 's'),
    ("attribution_medium", 's'),
    ("attribution_content", 's'),
    ("attribution_term", 's'),
    ("currency", 's'),
    ("ip", 's'),
    ("user_agent", 's'),
    ("event_id", 's'),
    ("revenue", 'n'),
    ("log_index", 'n'),
    ("event_data", 'm'),
    ("attribution", 'm'),
];

const STRING_FNS: &[(&str, usize)] = &[
    ("upper", 1),
    ("lower", 1),
    ("length", 1),
    ("reverse", 1),
    ("trim", 1),
    ("md5", 1),
    ("sha256", 1),
    ("to_hex", 1),
    ("initcap", 1),
    ("ascii", 1),
    ("btrim", 2),
    ("split_part", 3),
    ("substr", 2),
    ("substr", 3),
    ("left", 2),
    ("right", 2),
    ("strpos", 2),
    ("starts_with", 2),
    ("ends_with", 2),
    ("replace", 3),
    ("translate", 3),
    ("regexp_replace", 3),
    ("regexp_like", 2),
    ("regexp_match", 2),
    ("concat", 2),
    ("concat", 3),
    ("concat_ws", 3),
    ("lpad", 2),
    ("rpad", 3),
    ("repeat", 2),
    ("overlay", 3),
    ("coalesce", 2),
    ("nullif", 2),
    ("toString", 1),
    ("empty", 1),
    ("notEmpty", 1),
    ("chr", 1),
    ("string_to_array", 2),
    ("levenshtein", 2),
    ("uuid", 0),
];

const NUMBER_FNS: &[(&str, usize)] = &[
    ("abs", 1),
    ("ceil", 1),
    ("floor", 1),
    ("round", 2),
    ("sqrt", 1),
    ("ln", 1),
    ("log10", 1),
    ("exp", 1),
    ("power", 2),
    ("greatest", 2),
    ("least", 2),
    ("gcd", 2),
    ("lcm", 2),
    ("factorial", 1),
    ("signum", 1),
    ("toFloat64OrZero", 1),
    ("toInt64OrZero", 1),
    ("if", 3),
    ("cardinality", 1),
    ("array_length", 1),
    ("trunc", 1),
];

const TIME_FNS: &[&str] = &[
    "toStartOfHour",
    "toStartOfDay",
    "toStartOfWeek",
    "toStartOfMonth",
    "toStartOfMinute",
    "toStartOfFiveMinutes",
    "toMonday",
    "toYYYYMM",
    "toYYYYMMDD",
    "toDate",
    "toHour",
    "toDayOfWeek",
    "toUnixTimestamp",
];

const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "uniq",
    "uniqExact",
    "countIf",
    "sumIf",
    "argMax",
    "argMin",
    "any",
    "anyLast",
    "groupArray",
    "groupUniqArray",
    "string_agg",
    "array_agg",
    "stddev",
    "var_pop",
    "median",
    "approx_distinct",
    "bit_and",
    "bool_or",
    "first_value",
    "quantile",
    "quantileExact",
];

const WINDOW_FNS: &[&str] = &[
    "row_number()",
    "rank()",
    "dense_rank()",
    "percent_rank()",
    "cume_dist()",
    "ntile(3)",
    "lag(revenue)",
    "lead(event_type, 2)",
    "first_value(user_id)",
    "last_value(timestamp)",
    "nth_value(platform, 2)",
    "sum(revenue)",
    "count(*)",
];

const TYPES: &[&str] = &[
    "INT",
    "BIGINT",
    "SMALLINT",
    "TINYINT",
    "DOUBLE",
    "FLOAT",
    "DECIMAL(38,10)",
    "DECIMAL(5,2)",
    "VARCHAR",
    "DATE",
    "TIMESTAMP",
    "BOOLEAN",
    "BYTEA",
    "INTERVAL",
];

const WEIRD_LITERALS: &[&str] = &[
    "NULL",
    "''",
    "'\u{0}'",
    "'ü✓😀'",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "1e308",
    "-1e308",
    "1e400",
    "0.0",
    "-0.0",
    "'NaN'",
    "'inf'",
    "TRUE",
    "FALSE",
    "DATE '1970-01-01'",
    "DATE '9999-12-31'",
    "TIMESTAMP '2262-04-11T23:47:16Z'",
    "TIMESTAMP '1677-09-21T00:12:44Z'",
    "INTERVAL '1 day'",
    "INTERVAL '-100000 years'",
    "X'DEADBEEF'",
    "[1, 2, 3]",
    "[]",
    "make_array('a', NULL)",
    "now()",
    "today()",
    "'2026-01-01T00:00:00Z'",
    "2147483648",
    "-2147483649",
    "1.7976931348623157e308",
    "0.000000000000000000000000000001",
];

/// Knobs of one generator run.
#[derive(Debug, Clone, Copy)]
pub struct SqlGenConfig {
    /// Share (0-100) of statements that are hostile by construction.
    pub hostile_percent: u32,
    /// Deepest ordinary (non-hostile) expression nesting.
    pub max_depth: u32,
}

impl Default for SqlGenConfig {
    fn default() -> Self {
        Self {
            hostile_percent: 15,
            max_depth: 5,
        }
    }
}

/// The generator. `next()` gives one statement.
pub struct SqlGen {
    rng: StdRng,
    cfg: SqlGenConfig,
    apps: Vec<String>,
}

impl SqlGen {
    pub fn new(seed: u64, cfg: SqlGenConfig, apps: &[&str]) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            cfg,
            apps: apps.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.rng.gen_range(0..xs.len())]
    }

    fn chance(&mut self, percent: u32) -> bool {
        self.rng.gen_range(0..100) < percent
    }

    /// One statement.
    pub fn next_statement(&mut self) -> String {
        if self.chance(self.cfg.hostile_percent) {
            return self.hostile();
        }
        match self.rng.gen_range(0..100) {
            0..=49 => self.select(0),
            50..=64 => self.aggregate_query(),
            65..=74 => self.window_query(),
            75..=82 => self.join_query(),
            83..=89 => self.set_query(),
            90..=94 => format!("EXPLAIN {}", self.select(0)),
            _ => self.with_query(),
        }
    }

    fn column(&mut self, kind: Option<char>) -> String {
        loop {
            let (name, k) = *self.pick(COLUMNS);
            if kind.is_none_or(|want| want == k) {
                if k == 'm' {
                    let key = self
                        .pick(&[
                            "revenue", "currency", "sku", "campaign", "source", "nope", "",
                        ])
                        .to_string();
                    return format!("{name}['{key}']");
                }
                return name.to_string();
            }
        }
    }

    fn literal(&mut self, kind: char) -> String {
        if self.chance(15) {
            return self.pick(WEIRD_LITERALS).to_string();
        }
        match kind {
            'n' => match self.rng.gen_range(0..3) {
                0 => self.rng.gen_range(-1000i64..1000).to_string(),
                1 => format!("{:.3}", self.rng.gen_range(-1e6f64..1e6)),
                _ => self.rng.gen_range(0u32..100).to_string(),
            },
            't' => format!(
                "TIMESTAMP '2026-0{}-{:02}T{:02}:00:00Z'",
                self.rng.gen_range(1..10),
                self.rng.gen_range(1..28),
                self.rng.gen_range(0..24)
            ),
            _ => {
                let app = if self.apps.is_empty() || self.chance(50) {
                    self.pick(&["install", "purchase", "ios", "web", "x", "%a%", "ad_click"])
                        .to_string()
                } else {
                    let i = self.rng.gen_range(0..self.apps.len());
                    self.apps[i].clone()
                };
                format!("'{}'", app.replace('\'', "''"))
            }
        }
    }

    /// An expression of roughly `kind` (`s`, `n`, `t`, `b` boolean).
    fn expr(&mut self, kind: char, depth: u32) -> String {
        if depth >= self.cfg.max_depth || self.chance(30) {
            return match kind {
                'b' => format!(
                    "{} {} {}",
                    self.column(Some('s')),
                    self.pick(&["=", "<>", "<", ">=", "LIKE", "ILIKE", "IS DISTINCT FROM"]),
                    self.literal('s')
                ),
                k => {
                    if self.chance(50) {
                        let want = if k == 'n' && self.chance(30) { 'm' } else { k };
                        self.column(Some(want))
                    } else {
                        self.literal(k)
                    }
                }
            };
        }
        let d = depth + 1;
        match kind {
            'b' => match self.rng.gen_range(0..9) {
                0 => format!("({} AND {})", self.expr('b', d), self.expr('b', d)),
                1 => format!("({} OR {})", self.expr('b', d), self.expr('b', d)),
                2 => format!("NOT {}", self.expr('b', d)),
                3 => format!(
                    "{} IN ({})",
                    self.expr('s', d),
                    (0..self.rng.gen_range(1..6))
                        .map(|_| self.literal('s'))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                4 => format!(
                    "{} BETWEEN {} AND {}",
                    self.expr('n', d),
                    self.literal('n'),
                    self.literal('n')
                ),
                5 => format!("{} IS NULL", self.expr('s', d)),
                6 => format!(
                    "{} {} {}",
                    self.expr('t', d),
                    self.pick(&["<", ">=", "="]),
                    self.expr('t', d)
                ),
                7 => format!(
                    "EXISTS (SELECT 1 FROM events WHERE {} LIMIT 1)",
                    self.expr('b', d)
                ),
                _ => format!(
                    "{} {} {}",
                    self.expr('n', d),
                    self.pick(&["=", "<", ">", "<>"]),
                    self.expr('n', d)
                ),
            },
            'n' => match self.rng.gen_range(0..8) {
                0 | 1 => format!(
                    "({} {} {})",
                    self.expr('n', d),
                    self.pick(&["+", "-", "*", "/", "%"]),
                    self.expr('n', d)
                ),
                2 => {
                    let (f, arity) = *self.pick(NUMBER_FNS);
                    let args: Vec<String> = (0..arity).map(|_| self.expr('n', d)).collect();
                    format!("{f}({})", args.join(", "))
                }
                3 => format!("CAST({} AS {})", self.expr('n', d), self.pick(TYPES)),
                4 => format!("length({})", self.expr('s', d)),
                5 => format!(
                    "CASE WHEN {} THEN {} ELSE {} END",
                    self.expr('b', d),
                    self.expr('n', d),
                    self.expr('n', d)
                ),
                6 => format!("toFloat64OrZero({})", self.expr('s', d)),
                _ => format!("-{}", self.expr('n', d)),
            },
            't' => match self.rng.gen_range(0..5) {
                0 => format!("{}({})", self.pick(TIME_FNS), self.expr('t', d)),
                1 => format!(
                    "{} {} INTERVAL '{} {}'",
                    self.expr('t', d),
                    self.pick(&["+", "-"]),
                    self.rng.gen_range(0..1000),
                    self.pick(&["second", "hour", "day", "month", "year"])
                ),
                2 => format!(
                    "date_trunc('{}', {})",
                    self.pick(&["hour", "day", "week", "month", "year", "century"]),
                    self.expr('t', d)
                ),
                3 => format!("CAST({} AS TIMESTAMP)", self.expr('s', d)),
                _ => format!("to_timestamp({})", self.expr('n', d)),
            },
            _ => match self.rng.gen_range(0..6) {
                0..=2 => {
                    let (f, arity) = *self.pick(STRING_FNS);
                    let args: Vec<String> = (0..arity)
                        .map(|i| {
                            if i > 0 && self.chance(40) {
                                self.expr('n', d)
                            } else {
                                self.expr('s', d)
                            }
                        })
                        .collect();
                    format!("{f}({})", args.join(", "))
                }
                3 => format!("({} || {})", self.expr('s', d), self.expr('s', d)),
                4 => {
                    let k = *self.pick(&['n', 't']);
                    format!("CAST({} AS VARCHAR)", self.expr(k, d))
                }
                _ => format!(
                    "CASE {} WHEN {} THEN {} ELSE {} END",
                    self.expr('s', d),
                    self.literal('s'),
                    self.expr('s', d),
                    self.expr('s', d)
                ),
            },
        }
    }

    fn any_expr(&mut self) -> String {
        let k = *self.pick(&['s', 'n', 't', 'b']);
        self.expr(k, 0)
    }

    fn where_clause(&mut self) -> String {
        if self.chance(60) {
            format!(" WHERE {}", self.expr('b', 0))
        } else {
            String::new()
        }
    }

    fn tail(&mut self) -> String {
        let mut t = String::new();
        if self.chance(30) {
            t.push_str(&format!(" ORDER BY 1 {}", self.pick(&["ASC", "DESC"])));
        }
        if self.chance(70) {
            t.push_str(&format!(
                " LIMIT {}",
                self.pick(&["0", "1", "10", "100", "1000"])
            ));
        }
        if self.chance(10) {
            t.push_str(" OFFSET 5");
        }
        t
    }

    fn select(&mut self, depth: u32) -> String {
        let n = self.rng.gen_range(1..5);
        let items: Vec<String> = (0..n)
            .map(|i| format!("{} AS c{i}", self.any_expr()))
            .collect();
        let from = if depth < 2 && self.chance(15) {
            format!("(SELECT * FROM events{}) AS sub", self.where_clause())
        } else if self.chance(10) {
            format!(
                "generate_series(1, {}) AS g(value)",
                self.rng.gen_range(0..2000)
            )
        } else {
            "events".to_string()
        };
        let distinct = if self.chance(10) { "DISTINCT " } else { "" };
        format!(
            "SELECT {distinct}{} FROM {from}{}{}",
            items.join(", "),
            self.where_clause(),
            self.tail()
        )
    }

    fn aggregate_call(&mut self) -> String {
        let f = *self.pick(AGGREGATES);
        match f {
            "count" => self
                .pick(&["count()", "count(*)", "count(DISTINCT user_id)"])
                .to_string(),
            "countIf" => format!("countIf({})", self.expr('b', 2)),
            "sumIf" => format!("sumIf(revenue, {})", self.expr('b', 2)),
            "argMax" | "argMin" => format!("{f}({}, timestamp)", self.column(Some('s'))),
            "string_agg" => format!("string_agg({}, ',')", self.expr('s', 2)),
            "quantile" | "quantileExact" => {
                format!(
                    "{f}({})({})",
                    self.pick(&["0.5", "0.9", "0", "1", "1.5", "-1"]),
                    self.expr('n', 2)
                )
            }
            "bit_and" => format!("bit_and(CAST({} AS BIGINT))", self.expr('n', 2)),
            "bool_or" => format!("bool_or({})", self.expr('b', 2)),
            "sum" | "avg" | "stddev" | "var_pop" | "median" => {
                format!("{f}({})", self.expr('n', 2))
            }
            _ => format!("{f}({})", self.any_expr()),
        }
    }

    fn aggregate_query(&mut self) -> String {
        let key = match self.rng.gen_range(0..5) {
            0 => format!("{}(timestamp)", self.pick(TIME_FNS)),
            1 => self.column(Some('s')),
            2 => self.column(Some('m')),
            3 => self.expr('s', 2),
            _ => "platform".into(),
        };
        let n = self.rng.gen_range(1..4);
        let aggs: Vec<String> = (0..n)
            .map(|i| format!("{} AS a{i}", self.aggregate_call()))
            .collect();
        let having = if self.chance(25) {
            " HAVING count() > 1".to_string()
        } else {
            String::new()
        };
        if self.chance(15) {
            return format!(
                "SELECT {} FROM events{}",
                aggs.join(", "),
                self.where_clause()
            );
        }
        format!(
            "SELECT {key} AS k, {} FROM events{} GROUP BY k{having}{}",
            aggs.join(", "),
            self.where_clause(),
            self.tail()
        )
    }

    fn window_query(&mut self) -> String {
        let f = *self.pick(WINDOW_FNS);
        let part = self.column(Some('s'));
        let frame = if self.chance(30) {
            self.pick(&[
                " ROWS BETWEEN 2 PRECEDING AND CURRENT ROW",
                " ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING",
                " RANGE BETWEEN INTERVAL '1 hour' PRECEDING AND CURRENT ROW",
                " ROWS BETWEEN 9223372036854775807 PRECEDING AND 5 FOLLOWING",
            ])
            .to_string()
        } else {
            String::new()
        };
        format!(
            "SELECT {part}, {f} OVER (PARTITION BY {part} ORDER BY timestamp{frame}) AS w FROM events{}{}",
            self.where_clause(),
            self.tail()
        )
    }

    fn join_query(&mut self) -> String {
        let kind = *self.pick(&["JOIN", "LEFT JOIN", "FULL JOIN", "CROSS JOIN", "RIGHT JOIN"]);
        let on = if kind == "CROSS JOIN" {
            String::new()
        } else {
            let c = self.column(Some('s'));
            format!(" ON a.{c} = b.{c}")
        };
        format!(
            "SELECT a.event_type, b.{} FROM (SELECT * FROM events LIMIT {}) a {kind} (SELECT * FROM events LIMIT {}) b{on}{}",
            self.column(Some('s')),
            self.rng.gen_range(0..300),
            self.rng.gen_range(0..300),
            self.tail()
        )
    }

    fn set_query(&mut self) -> String {
        let op = *self.pick(&["UNION ALL", "UNION", "INTERSECT", "EXCEPT"]);
        let a = format!("SELECT {} AS x FROM events", self.expr('s', 2));
        let b = format!("SELECT {} AS x FROM events", self.expr('s', 2));
        format!("{a} {op} {b}{}", self.tail())
    }

    fn with_query(&mut self) -> String {
        format!(
            "WITH t AS ({}) SELECT * FROM t{}",
            self.aggregate_query(),
            self.tail()
        )
    }

    /// Statements built to hurt: the crashers of issue 22 and their relatives.
    fn hostile(&mut self) -> String {
        let n = |r: &mut StdRng, lo: usize, hi: usize| r.gen_range(lo..hi);
        match self.rng.gen_range(0..16) {
            0 => {
                let k = n(&mut self.rng, 100, 5000);
                format!("SELECT {}", vec!["'x'"; k].join(" || "))
            }
            1 => {
                let k = n(&mut self.rng, 100, 5000);
                format!(
                    "SELECT count(*) FROM events WHERE 1=1{}",
                    " OR app_id = chr(120)".repeat(k)
                )
            }
            2 => {
                let k = n(&mut self.rng, 10, 3000);
                format!("SELECT {}1{}", "(".repeat(k), ")".repeat(k))
            }
            3 => {
                let k = n(&mut self.rng, 10, 400);
                format!("SELECT {}1{}", "(SELECT ".repeat(k), ")".repeat(k))
            }
            4 => {
                let k = n(&mut self.rng, 10, 5000);
                format!("SELECT {}", vec!["1"; k].join(" + "))
            }
            5 => {
                let k = n(&mut self.rng, 100, 40_000);
                let items: Vec<String> = (0..k).map(|i| format!("'v{i}'")).collect();
                format!(
                    "SELECT count(*) FROM events WHERE user_id IN ({})",
                    items.join(",")
                )
            }
            6 => {
                let k = n(&mut self.rng, 2, 600);
                vec!["SELECT event_type FROM events"; k].join(" UNION ALL ")
            }
            7 => format!(
                "SELECT length(repeat('a', {}))",
                self.pick(&[
                    "2000000000",
                    "100000000",
                    "67108865",
                    "1000",
                    "-5",
                    "9223372036854775807"
                ])
            ),
            8 => format!(
                "SELECT length(string_agg(repeat('a', {}), '')) FROM generate_series(1, {})",
                self.pick(&["200000000", "10000000", "1000"]),
                self.pick(&["20", "200", "2000"])
            ),
            9 => format!(
                "SELECT length({}('x', {}))",
                self.pick(&["lpad", "rpad"]),
                self.pick(&["1000000000", "9223372036854775807", "70000000", "-1"])
            ),
            10 => format!(
                "SELECT cardinality({})",
                self.pick(&[
                    "array_repeat(1, 1000000000)",
                    "range(1, 10000000000)",
                    "generate_series(1, 100000000000)",
                    "range(DATE '1970-01-01', DATE '9999-01-01', INTERVAL '1 second')",
                    "array_resize([1], 1000000000, 0)",
                    "make_array(1, 2, 3)",
                ])
            ),
            11 => {
                let k = n(&mut self.rng, 2, 40);
                format!(
                    "SELECT length({})",
                    vec!["repeat('ab', 10000000)"; k].join(" || ")
                )
            }
            12 => {
                let k = n(&mut self.rng, 2, 40);
                format!(
                    "SELECT length(concat({}))",
                    vec!["repeat('ab', 10000000)"; k].join(", ")
                )
            }
            13 => format!(
                "SELECT length(replace(repeat('a', 100000), 'a', repeat('b', {})))",
                self.pick(&["1000", "10", "100000"])
            ),
            14 => format!(
                "SELECT length(regexp_replace(repeat('a', 100000), '', repeat('b', {}), 'g'))",
                self.pick(&["1000", "10"])
            ),
            _ => {
                let k = n(&mut self.rng, 1_000, 400_000);
                format!("SELECT '{}'", "a".repeat(k))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_statements_and_every_kind_appears() {
        let mut a = SqlGen::new(7, SqlGenConfig::default(), &["shop"]);
        let mut b = SqlGen::new(7, SqlGenConfig::default(), &["shop"]);
        let xs: Vec<String> = (0..2000).map(|_| a.next_statement()).collect();
        let ys: Vec<String> = (0..2000).map(|_| b.next_statement()).collect();
        assert_eq!(xs, ys);
        for needle in [
            "OVER (",
            "JOIN",
            "UNION",
            "GROUP BY",
            "EXPLAIN",
            "WITH t AS",
            " || ",
        ] {
            assert!(xs.iter().any(|s| s.contains(needle)), "no {needle}");
        }
    }
}
