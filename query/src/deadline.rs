//! Planning counts toward a query's time limit. DataFusion's planner cannot be interrupted
//! from outside, so a check of the query's deadline (and of its caller still waiting) runs
//! between every two analyzer, optimizer and physical-optimizer rules: a query whose planning
//! overruns stops at the next rule boundary and answers 504 like one whose execution did. The
//! caller does not wait for that boundary: it stops waiting at the deadline itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::LogicalPlan;
use datafusion::optimizer::{AnalyzerRule, OptimizerConfig, OptimizerRule};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

/// When a query's planning must stop: its deadline, or its caller going away.
#[derive(Debug, Clone)]
pub(crate) struct PlanningBudget {
    deadline: Instant,
    abandoned: Arc<AtomicBool>,
}

impl PlanningBudget {
    pub(crate) fn new(deadline: Instant) -> Self {
        Self {
            deadline,
            abandoned: Arc::default(),
        }
    }

    /// Marks the query as no longer awaited (its caller timed out or went away).
    pub(crate) fn abandon(&self) {
        self.abandoned.store(true, Ordering::Relaxed);
    }

    /// True once planning should stop.
    pub(crate) fn expired(&self) -> bool {
        self.abandoned.load(Ordering::Relaxed) || Instant::now() >= self.deadline
    }

    fn check(&self) -> Result<()> {
        if self.expired() {
            return Err(DataFusionError::ResourcesExhausted(
                "planning stopped: the query's time limit passed or its caller went away".into(),
            ));
        }
        Ok(())
    }

    /// `rules` with a deadline check before each of them and after the last.
    pub(crate) fn interleave_optimizer(
        &self,
        rules: &[Arc<dyn OptimizerRule + Send + Sync>],
    ) -> Vec<Arc<dyn OptimizerRule + Send + Sync>> {
        let check: Arc<dyn OptimizerRule + Send + Sync> = Arc::new(Check(self.clone()));
        interleave(rules, check)
    }

    pub(crate) fn interleave_analyzer(
        &self,
        rules: &[Arc<dyn AnalyzerRule + Send + Sync>],
    ) -> Vec<Arc<dyn AnalyzerRule + Send + Sync>> {
        let check: Arc<dyn AnalyzerRule + Send + Sync> = Arc::new(Check(self.clone()));
        interleave(rules, check)
    }

    pub(crate) fn interleave_physical(
        &self,
        rules: &[Arc<dyn PhysicalOptimizerRule + Send + Sync>],
    ) -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
        let check: Arc<dyn PhysicalOptimizerRule + Send + Sync> = Arc::new(Check(self.clone()));
        interleave(rules, check)
    }
}

fn interleave<T: ?Sized>(rules: &[Arc<T>], check: Arc<T>) -> Vec<Arc<T>> {
    let mut out = Vec::with_capacity(rules.len() * 2 + 1);
    for r in rules {
        out.push(check.clone());
        out.push(r.clone());
    }
    out.push(check);
    out
}

/// The check, as a rule of each of DataFusion's three kinds. It changes nothing.
#[derive(Debug)]
struct Check(PlanningBudget);

impl AnalyzerRule for Check {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        self.0.check()?;
        Ok(plan)
    }
    fn name(&self) -> &str {
        "planning_deadline"
    }
}

impl OptimizerRule for Check {
    fn name(&self) -> &str {
        "planning_deadline"
    }
    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        self.0.check()?;
        Ok(Transformed::no(plan))
    }
}

impl PhysicalOptimizerRule for Check {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.0.check()?;
        Ok(plan)
    }
    fn name(&self) -> &str {
        "planning_deadline"
    }
    fn schema_check(&self) -> bool {
        true
    }
}
