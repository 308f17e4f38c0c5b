#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The SQL does not parse, names something unknown, or uses a forbidden statement.
    #[error("{0}")]
    InvalidQuery(String),
    /// The statement is over a complexity limit (`query.max_expression_depth`, …); the
    /// message names it.
    #[error("{0}")]
    TooComplex(String),
    /// The query ran out of a resource limit.
    #[error("query exceeded a resource limit: {0}")]
    ResourcesExhausted(String),
    /// Too many queries are running (for this user or on this node).
    #[error("too many queries: {0}")]
    Busy(String),
    /// The query ran longer than its time limit and was stopped.
    #[error("{0}")]
    Timeout(String),
    #[error("storage error: {0}")]
    Engine(#[from] engine::EngineError),
    #[error("query execution failed: {0}")]
    Execution(String),
    /// A defect: the query's code panicked. The panic was caught at the query boundary, the
    /// node keeps serving; `query_id` finds it in the log.
    #[error("query {query_id} failed with an internal error ({message}); it was stopped and the node keeps serving")]
    Panicked { query_id: String, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidInput,
    ResourcesExhausted,
    Busy,
    Timeout,
    Internal,
}

impl QueryError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            QueryError::InvalidQuery(_) | QueryError::TooComplex(_) => ErrorKind::InvalidInput,
            QueryError::ResourcesExhausted(_) => ErrorKind::ResourcesExhausted,
            QueryError::Busy(_) => ErrorKind::Busy,
            QueryError::Timeout(_) => ErrorKind::Timeout,
            QueryError::Engine(_) | QueryError::Execution(_) | QueryError::Panicked { .. } => {
                ErrorKind::Internal
            }
        }
    }

    /// Stable machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            QueryError::InvalidQuery(_) => "invalid_query",
            QueryError::ResourcesExhausted(_) => "resources_exhausted",
            QueryError::Busy(_) => "too_many_queries",
            QueryError::Timeout(_) => "query_timeout",
            QueryError::Engine(_) => "storage_error",
            QueryError::Execution(_) => "execution_error",
            QueryError::TooComplex(_) => "query_too_complex",
            QueryError::Panicked { .. } => "internal_error",
        }
    }
}

impl From<datafusion::error::DataFusionError> for QueryError {
    /// What the statement or its data caused is the caller's error (400): bad SQL, and the
    /// errors DataFusion and Arrow raise while evaluating it (a string that is not a
    /// timestamp, an unsupported `date_trunc` unit, an arithmetic overflow). A panic in one of
    /// DataFusion's own tasks is a caught panic. The rest (I/O, DataFusion's internal
    /// errors while executing) is ours (500).
    fn from(e: datafusion::error::DataFusionError) -> Self {
        use arrow::error::ArrowError as A;
        use datafusion::error::DataFusionError as D;
        // The storage's own error (a damaged segment the scan refused) keeps its kind.
        let e = match engine_error(e) {
            Ok(engine) => return QueryError::Engine(engine),
            Err(e) => e,
        };
        let message = || e.strip_backtrace().to_string();
        match e.find_root() {
            D::SQL(..) | D::Plan(_) | D::SchemaError(..) | D::NotImplemented(_) => {
                QueryError::InvalidQuery(message())
            }
            D::ResourcesExhausted(m) => QueryError::ResourcesExhausted(m.clone()),
            D::Execution(_) => QueryError::InvalidQuery(message()),
            D::ArrowError(a, _)
                if matches!(
                    a,
                    A::ParseError(_)
                        | A::CastError(_)
                        | A::ComputeError(_)
                        | A::DivideByZero
                        | A::ArithmeticOverflow(_)
                        | A::InvalidArgumentError(_)
                ) =>
            {
                QueryError::InvalidQuery(message())
            }
            // The same errors, raised inside the Parquet reader's filter (wrapped as External).
            D::ArrowError(A::ExternalError(_), _) | D::External(_) if caused_by_data(&message()) => {
                QueryError::InvalidQuery(message())
            }
            D::ExecutionJoin(j) if j.is_panic() => QueryError::Panicked {
                query_id: String::new(),
                message: message(),
            },
            D::External(x)
                if x.downcast_ref::<tokio::task::JoinError>()
                    .is_some_and(|j| j.is_panic()) =>
            {
                QueryError::Panicked {
                    query_id: String::new(),
                    message: message(),
                }
            }
            // A panicked task's JoinError, however it was wrapped on its way here.
            _ if message().contains(" panicked with message ") => QueryError::Panicked {
                query_id: String::new(),
                message: message(),
            },
            _ => QueryError::Execution(message()),
        }
    }
}

/// The engine's error, when that is what `e` carries (directly or under context).
fn engine_error(
    e: datafusion::error::DataFusionError,
) -> Result<engine::EngineError, datafusion::error::DataFusionError> {
    use datafusion::error::DataFusionError as D;
    match e {
        D::External(b) => b
            .downcast::<engine::EngineError>()
            .map(|b| *b)
            .map_err(D::External),
        D::Context(c, inner) => engine_error(*inner).map_err(|e| D::Context(c, Box::new(e))),
        other => Err(other),
    }
}

/// Whether an error that reached us wrapped (as text) was an evaluation error of the data.
fn caused_by_data(message: &str) -> bool {
    [
        "CastError(",
        "ParseError(",
        "DivideByZero",
        "ArithmeticOverflow(",
    ]
    .iter()
    .any(|k| message.contains(k))
}

impl QueryError {
    /// An error met while planning: the statement cannot be planned, which is the caller's
    /// error even where DataFusion calls it internal (type coercion of mismatched operands).
    pub(crate) fn while_planning(self) -> Self {
        match self {
            QueryError::Execution(m) => {
                QueryError::InvalidQuery(format!("the statement cannot be planned: {m}"))
            }
            other => other,
        }
    }

    /// Names the query a caught panic happened in.
    pub(crate) fn in_query(self, id: &str) -> Self {
        match self {
            QueryError::Panicked { query_id, message } if query_id.is_empty() => {
                tracing::error!(query_id = id, panic = %message, "a query task panicked; it was stopped and the node keeps serving");
                QueryError::Panicked {
                    query_id: id.to_string(),
                    message,
                }
            }
            other => other,
        }
    }
}

impl From<arrow::error::ArrowError> for QueryError {
    fn from(e: arrow::error::ArrowError) -> Self {
        QueryError::Execution(e.to_string())
    }
}

pub type Result<T, E = QueryError> = std::result::Result<T, E>;
