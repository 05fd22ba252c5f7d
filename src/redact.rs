//! Redaction of secrets (bearer tokens, client secrets, refresh tokens, continuation tokens, SAS
//! signatures) from text a server or a file sent, before it reaches an error or a log.
