//! (placeholder: filled in by the forward work)
