//! Attribution models: how one conversion's credit is split over the touchpoints that led to
//! it. Every model gives weights that sum to 1 over a non-empty list.

use serde::{Deserialize, Serialize};

use crate::error::{QueryError, Result};

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// All credit to the last touchpoint (the default).
    LastTouch,
    /// All credit to the first touchpoint.
    FirstTouch,
    /// Equal shares.
    Linear,
    /// Weight `2^(-age / half_life)`, age measured back from the conversion, normalised.
    TimeDecay { half_life_ms: i64 },
    /// 40 % first, 40 % last, 20 % shared by the ones in between (50/50 for two).
    PositionBased,
}

impl Model {
    pub const NAMES: [&'static str; 5] = [
        "last_touch",
        "first_touch",
        "linear",
        "time_decay",
        "position_based",
    ];

    /// The model named `name`; `half_life_ms` is used by `time_decay` (default 7 days).
    pub fn parse(name: &str, half_life_ms: Option<i64>) -> Result<Self> {
        Ok(match name.trim() {
            "" | "last_touch" => Model::LastTouch,
            "first_touch" => Model::FirstTouch,
            "linear" => Model::Linear,
            "time_decay" => {
                let half_life_ms = half_life_ms.unwrap_or(7 * DAY_MS);
                if half_life_ms <= 0 {
                    return Err(QueryError::InvalidQuery(
                        "half_life must be positive".into(),
                    ));
                }
                Model::TimeDecay { half_life_ms }
            }
            "position_based" => Model::PositionBased,
            other => {
                return Err(QueryError::InvalidQuery(format!(
                    "unknown attribution model {other:?}; one of {}",
                    Self::NAMES.join(", ")
                )))
            }
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Model::LastTouch => "last_touch",
            Model::FirstTouch => "first_touch",
            Model::Linear => "linear",
            Model::TimeDecay { .. } => "time_decay",
            Model::PositionBased => "position_based",
        }
    }

    /// The weights of touchpoints at `times` (ascending, oldest first) for a conversion at
    /// `conversion_ms`. Empty in, empty out.
    pub fn weights(&self, times: &[i64], conversion_ms: i64) -> Vec<f64> {
        let n = times.len();
        let mut w = vec![0.0; n];
        if n == 0 {
            return w;
        }
        match self {
            Model::LastTouch => w[n - 1] = 1.0,
            Model::FirstTouch => w[0] = 1.0,
            Model::Linear => w.iter_mut().for_each(|x| *x = 1.0 / n as f64),
            Model::TimeDecay { half_life_ms } => {
                for (x, t) in w.iter_mut().zip(times) {
                    let age = (conversion_ms - t).max(0) as f64;
                    *x = (-age / *half_life_ms as f64).exp2();
                }
                let total: f64 = w.iter().sum();
                if total > 0.0 && total.is_finite() {
                    w.iter_mut().for_each(|x| *x /= total);
                } else {
                    // Every weight underflowed (ages of thousands of half-lives): the newest wins.
                    w.iter_mut().for_each(|x| *x = 0.0);
                    w[n - 1] = 1.0;
                }
            }
            Model::PositionBased => match n {
                1 => w[0] = 1.0,
                2 => {
                    w[0] = 0.5;
                    w[1] = 0.5;
                }
                _ => {
                    w[0] = 0.4;
                    w[n - 1] = 0.4;
                    let middle = 0.2 / (n - 2) as f64;
                    w[1..n - 1].iter_mut().for_each(|x| *x = middle);
                }
            },
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_by_model() {
        let t = [0, 10, 20, 30];
        assert_eq!(Model::LastTouch.weights(&t, 40), vec![0.0, 0.0, 0.0, 1.0]);
        assert_eq!(Model::FirstTouch.weights(&t, 40), vec![1.0, 0.0, 0.0, 0.0]);
        assert_eq!(Model::Linear.weights(&t, 40), vec![0.25; 4]);
        assert_eq!(
            Model::PositionBased.weights(&t, 40),
            vec![0.4, 0.1, 0.1, 0.4]
        );
        assert_eq!(Model::PositionBased.weights(&t[..2], 40), vec![0.5, 0.5]);
        // Ages 20 and 10 with a half-life of 10: weights 1/4 and 1/2, normalised 1/3 and 2/3.
        let w = Model::TimeDecay { half_life_ms: 10 }.weights(&[20, 30], 40);
        assert!((w[0] - 1.0 / 3.0).abs() < 1e-12 && (w[1] - 2.0 / 3.0).abs() < 1e-12);
        assert!(Model::Linear.weights(&[], 1).is_empty());
    }

    #[test]
    fn names_round_trip() {
        for n in Model::NAMES {
            assert_eq!(Model::parse(n, None).map(|m| m.name()).ok(), Some(n));
        }
        assert!(Model::parse("u_shaped", None).is_err());
        assert!(Model::parse("time_decay", Some(0)).is_err());
    }
}
