//! The pipeline's parts, one module each. Every part is a plain async component that owns
//! its state and talks only through the simulated network, its host's `Clock` and its disk
//! (DESIGN.md §1). Each part's config struct carries the real defaults of the software it
//! models.

pub mod redis;
