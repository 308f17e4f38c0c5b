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
    fn from(e: datafusion::error::DataFusionError) -> Self {
        use datafusion::error::DataFusionError as D;
        match e.find_root() {
            D::SQL(..) | D::Plan(_) | D::SchemaError(..) | D::NotImplemented(_) => {
                QueryError::InvalidQuery(e.strip_backtrace().to_string())
            }
            D::ResourcesExhausted(m) => QueryError::ResourcesExhausted(m.clone()),
            _ => QueryError::Execution(e.strip_backtrace().to_string()),
        }
    }
}

impl From<arrow::error::ArrowError> for QueryError {
    fn from(e: arrow::error::ArrowError) -> Self {
        QueryError::Execution(e.to_string())
    }
}

pub type Result<T, E = QueryError> = std::result::Result<T, E>;
