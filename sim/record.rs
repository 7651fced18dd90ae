//! (placeholder: the pipeline's record types)
