//! The local executor (filled in after the plan milestone).
