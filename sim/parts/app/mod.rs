//! (app: in progress)
