//! One `impl` per store area for SQLite (schedules and receipts are in `sqlite/schedule.rs` and
//! `sqlite/receipts.rs`, beside their SQL); the others still call SQL kept in `sqlite/` (`import`, ...).

mod campaigns;
mod contacts;
mod deliveries;
mod sessions;
mod tree;
mod users;
