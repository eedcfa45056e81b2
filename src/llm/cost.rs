//! Money and tokens: the price table, the cost of one call, the budgets, and
//! the token estimate used when a provider reports no usage.
//!
//! Prices are US dollars per million input and output tokens, as published
//! by the providers (list prices, no batch or cache discounts). A model is
//! found by its exact name or by the longest table name it starts with
//! followed by `-` (so dated snapshots such as `gpt-4o-2024-08-06` find
//! `gpt-4o`). A `--prices` TOML file adds or replaces entries:
//!
//! ```toml
//! "gpt-4o" = { input = 2.5, output = 10.0 }
//! "my-local-model" = { input = 0.0, output = 0.0 }
//! ```

use std::path::Path;

use serde::Deserialize;

use super::{LlmError, Message, Usage};

/// US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
}

impl Price {
    pub fn cost(&self, usage: &Usage) -> f64 {
        (usage.input_tokens as f64 * self.input + usage.output_tokens as f64 * self.output) / 1e6
    }
}

/// Built-in list prices (USD per million input / output tokens).
const BUILTIN: &[(&str, f64, f64)] = &[
    // OpenAI
    ("gpt-3.5-turbo", 0.50, 1.50),
    ("gpt-4", 30.0, 60.0),
    ("gpt-4-32k", 60.0, 120.0),
    ("gpt-4-turbo", 10.0, 30.0),
    ("gpt-4-1106-preview", 10.0, 30.0),
    ("gpt-4-0125-preview", 10.0, 30.0),
    ("gpt-4o", 2.50, 10.0),
    ("gpt-4o-2024-05-13", 5.0, 15.0),
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4.1", 2.0, 8.0),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("gpt-4.5-preview", 75.0, 150.0),
    ("gpt-5", 1.25, 10.0),
    ("gpt-5-mini", 0.25, 2.0),
    ("gpt-5-nano", 0.05, 0.40),
    ("o1", 15.0, 60.0),
    ("o1-preview", 15.0, 60.0),
    ("o1-mini", 1.10, 4.40),
    ("o1-pro", 150.0, 600.0),
    ("o3", 2.0, 8.0),
    ("o3-mini", 1.10, 4.40),
    ("o3-pro", 20.0, 80.0),
    ("o4-mini", 1.10, 4.40),
    // Anthropic
    ("claude-instant-1", 0.80, 2.40),
    ("claude-v1", 8.0, 24.0),
    ("claude-1", 8.0, 24.0),
    ("claude-2", 8.0, 24.0),
    ("claude-3-haiku", 0.25, 1.25),
    ("claude-3-sonnet", 3.0, 15.0),
    ("claude-3-opus", 15.0, 75.0),
    ("claude-3-5-haiku", 0.80, 4.0),
    ("claude-3-5-sonnet", 3.0, 15.0),
    ("claude-3-7-sonnet", 3.0, 15.0),
    ("claude-sonnet-4", 3.0, 15.0),
    ("claude-sonnet-4-5", 3.0, 15.0),
    ("claude-opus-4", 15.0, 75.0),
    ("claude-opus-4-1", 15.0, 75.0),
    ("claude-opus-4-5", 5.0, 25.0),
    ("claude-haiku-4-5", 1.0, 5.0),
];

/// Model name -> price.
#[derive(Debug, Clone)]
pub struct PriceTable {
    entries: Vec<(String, Price)>,
}

impl PriceTable {
    pub fn builtin() -> PriceTable {
        PriceTable {
            entries: BUILTIN
                .iter()
                .map(|&(m, input, output)| (m.to_string(), Price { input, output }))
                .collect(),
        }
    }

    /// This table with the entries of a TOML price file added or replaced.
    pub fn with_overrides(mut self, path: &Path) -> anyhow::Result<PriceTable> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read the price file {}: {e}", path.display()))?;
        let parsed: std::collections::BTreeMap<String, Price> =
            toml::from_str(&text).map_err(|e| {
                anyhow::anyhow!(
                    "the price file {} is not valid: {e}\nwrite one line per model: \
                     \"gpt-4o\" = {{ input = 2.5, output = 10.0 }} (USD per million tokens)",
                    path.display()
                )
            })?;
        for (model, price) in parsed {
            anyhow::ensure!(
                price.input >= 0.0 && price.output >= 0.0,
                "the price file {} gives '{model}' a negative price",
                path.display()
            );
            self.entries.retain(|(m, _)| *m != model);
            self.entries.push((model, price));
        }
        Ok(self)
    }

    /// Exact name first, then the longest table name that `model` starts
    /// with followed by `-`.
    pub fn lookup(&self, model: &str) -> Option<Price> {
        if let Some((_, p)) = self.entries.iter().find(|(m, _)| m == model) {
            return Some(*p);
        }
        self.entries
            .iter()
            .filter(|(m, _)| {
                model.len() > m.len()
                    && model.starts_with(m.as_str())
                    && model.as_bytes()[m.len()] == b'-'
            })
            .max_by_key(|(m, _)| m.len())
            .map(|(_, p)| *p)
    }
}

/// Limits over all calls of a run; checked before each call.
#[derive(Debug, Clone, Copy, Default)]
pub struct Budget {
    pub max_cost: Option<f64>,
    pub max_total_tokens: Option<u64>,
}

impl Budget {
    pub fn check(&self, spent: &Usage, cost: f64) -> Result<(), LlmError> {
        if let Some(max) = self.max_cost {
            if cost >= max {
                return Err(LlmError::Budget(format!(
                    "${cost:.4} spent, --max-cost is ${max:.4}"
                )));
            }
        }
        if let Some(max) = self.max_total_tokens {
            if spent.total() >= max {
                return Err(LlmError::Budget(format!(
                    "{} tokens used, --max-total-tokens is {max}",
                    spent.total()
                )));
            }
        }
        Ok(())
    }
}

/// A rough token count (about four characters a token for English and
/// code), used only when a provider reports none.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

pub fn estimate_usage(messages: &[Message], reply: &str) -> Usage {
    Usage {
        input_tokens: messages.iter().map(|m| estimate_tokens(&m.content)).sum(),
        output_tokens: estimate_tokens(reply),
        estimated: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dated_snapshots_find_their_family_and_longer_names_win() {
        let t = PriceTable::builtin();
        assert_eq!(t.lookup("gpt-4o-2024-08-06").unwrap().input, 2.5);
        assert_eq!(t.lookup("gpt-4o-mini-2024-07-18").unwrap().input, 0.15);
        assert_eq!(t.lookup("gpt-4-0613").unwrap().input, 30.0);
        assert_eq!(t.lookup("claude-3-5-sonnet-20241022").unwrap().output, 15.0);
        assert_eq!(t.lookup("claude-sonnet-4-5-20250929").unwrap().input, 3.0);
        assert_eq!(t.lookup("o1-mini").unwrap().input, 1.10);
        // "gpt-4o" must not be priced as "gpt-4".
        assert_ne!(t.lookup("gpt-4o").unwrap().input, 30.0);
        assert!(t.lookup("llama3").is_none());
        assert!(t.lookup("o1x").is_none());
    }

    #[test]
    fn price_file_overrides_and_adds_models() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("prices.toml");
        std::fs::write(
            &f,
            "\"gpt-4o\" = { input = 1.0, output = 2.0 }\n\"llama3\" = { input = 0.5, output = 0.5 }\n",
        )
        .unwrap();
        let t = PriceTable::builtin().with_overrides(&f).unwrap();
        assert_eq!(
            t.lookup("gpt-4o-2024-08-06"),
            Some(Price {
                input: 1.0,
                output: 2.0
            })
        );
        assert_eq!(t.lookup("llama3").unwrap().output, 0.5);
        std::fs::write(&f, "\"x\" = { input = 1.0, outptu = 2.0 }\n").unwrap();
        let err = PriceTable::builtin()
            .with_overrides(&f)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not valid") && err.contains("USD per million"),
            "{err}"
        );
    }

    #[test]
    fn cost_is_per_million_tokens() {
        let p = Price {
            input: 2.5,
            output: 10.0,
        };
        let u = Usage {
            input_tokens: 1_000_000,
            output_tokens: 100_000,
            estimated: false,
        };
        assert!((p.cost(&u) - 3.5).abs() < 1e-9);
    }

    #[test]
    fn budget_stops_once_a_limit_is_reached() {
        let b = Budget {
            max_cost: Some(1.0),
            max_total_tokens: Some(100),
        };
        let u = |n| Usage {
            input_tokens: n,
            output_tokens: 0,
            estimated: false,
        };
        assert!(b.check(&u(99), 0.5).is_ok());
        assert!(matches!(b.check(&u(100), 0.5), Err(LlmError::Budget(_))));
        assert!(matches!(b.check(&u(0), 1.0), Err(LlmError::Budget(_))));
    }
}
