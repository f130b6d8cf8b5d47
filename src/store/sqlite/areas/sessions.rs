//! SQLite side of web sessions and failed-login counts: the shared implementation
//! (`store::sessions::session_store!`) on the writer and reader pools.

use super::super::*;
use crate::domain::session::{Failures, NewSession, SessionRow, StashedUpload, WebSession};
use crate::store::sessions::*;

session_store!(SqliteStore, writer: writer, reader: reader);
