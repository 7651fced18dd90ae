//! (placeholder: the Redis 7 server model)
