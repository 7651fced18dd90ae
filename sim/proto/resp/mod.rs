//! (placeholder: filled in by the resp work)
