//! Studies: many runs planned together. (Placeholder until the study
//! module lands; only the Slurm executor lives here for now.)

pub mod slurm;
