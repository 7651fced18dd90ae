//! (placeholder: filled in by the otlp work)
